"""Where ed25519 secret keys live: ``ed25519/<NAME>.secret`` (Nix's secret key text, mode
0600) inside a private signing home (see ``reconcile.trust.keystore``), or, in CI, the
environment variable ``RECONCILE_ED25519_SECRET_KEY``. Never in a mirror or a manifest."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from reconcile.errors import ReconcileError
from reconcile.trust.ed25519 import Ed25519SecretKey, Ed25519StatementSigner
from reconcile.trust.key_files import write_secret_key
from reconcile.trust.keystore import prepare_private_home, signing_homes
from reconcile.trust.signing_home import SigningHome

FOLDER = "ed25519"
SUFFIX = ".secret"
# One or more Nix secret keys (one a line); the one whose public key is declared signs.
ENV_SECRET = "RECONCILE_ED25519_SECRET_KEY"  # noqa: S105 (a variable name)


def secret_key_path(home: Path, name: str) -> Path:
    return home / FOLDER / f"{name}{SUFFIX}"


def store_secret_key(home: SigningHome, name: str, key: Ed25519SecretKey) -> Path:
    """Write ``key`` as the secret of [[key]] ``name`` into the private ``home`` (refusing to
    replace an existing secret)."""
    prepare_private_home(home)
    folder = home.path / FOLDER
    folder.mkdir(mode=0o700, exist_ok=True)
    folder.chmod(0o700)
    path = secret_key_path(home.path, name)
    if path.exists():
        raise ReconcileError(
            f"{path} already holds a secret key: expected a new name",
            hint="choose another name, or move the old secret away if the key is retired",
            reference="signing-key-exists",
        )
    write_secret_key(path, (key.text() + "\n").encode())
    return path


def secret_keys(home: Path) -> dict[str, Ed25519SecretKey]:
    """[[key]] name -> secret key, for every readable secret in ``home`` (others skipped)."""
    found: dict[str, Ed25519SecretKey] = {}
    folder = home / FOLDER
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        try:
            found[path.name.removesuffix(SUFFIX)] = Ed25519SecretKey.parse(
                path.read_text(encoding="ascii")
            )
        except (OSError, UnicodeDecodeError, ValueError):
            continue
    return found


def ed25519_signer(
    name: str,
    public_key: str,
    *,
    home: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Ed25519StatementSigner:
    """The signer for [[key]] ``name`` whose declared public key is ``public_key``: a secret
    from ``$RECONCILE_ED25519_SECRET_KEY`` or from the signing homes, whose public half must be
    the declared one (a different key would sign what no consumer accepts)."""
    env = os.environ if environ is None else environ
    for line in env.get(ENV_SECRET, "").splitlines():
        try:
            key = Ed25519SecretKey.parse(line)
        except ValueError:
            continue
        if key.public_key().text() == public_key:
            return Ed25519StatementSigner(key)
    searched = []
    for signing_home in signing_homes(home, env):
        searched.append(str(secret_key_path(signing_home.path, name)))
        key_found = secret_keys(signing_home.path).get(name)
        if key_found is None:
            continue
        if key_found.public_key().text() != public_key:
            raise ReconcileError(
                f"the secret key {secret_key_path(signing_home.path, name)} is "
                f"{key_found.public_key().text()}, but the manifest declares key '{name}' as "
                f"{public_key}",
                hint="fix the [[key]] entry (reconcile keys export NAME prints the public key), "
                "or sign with the secret key that belongs to it",
                reference="signing-key-not-found",
            )
        return Ed25519StatementSigner(key_found)
    raise ReconcileError(
        f"no ed25519 secret key for [[key]] '{name}' (looked in ${ENV_SECRET} and "
        f"{', '.join(searched)})",
        hint=f"make one with `reconcile keys generate --kind ed25519 {name}`, or set "
        f"{ENV_SECRET} to its secret key in CI",
        reference="signing-key-not-found",
    )
