"""``reconcile keys generate|list|export`` for ed25519 keys: the secret in the private keystore
(``reconcile.trust.ed25519_keys``), the public key inline in the manifest's ``[[key]]``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import tomlkit

from reconcile.errors import ReconcileError
from reconcile.manifest.model import Key, ManifestFile
from reconcile.trust.ed25519 import Ed25519SecretKey
from reconcile.trust.ed25519_keys import secret_key_path, secret_keys, store_secret_key
from reconcile.trust.key_files import write_secret_key
from reconcile.trust.keystore import generation_home, refuse_inside_mirror, signing_homes


def _note(text: str) -> None:
    print(text, file=sys.stderr)


def key_entry(*, name: str, public_key: str) -> str:
    """The ``[[key]]`` table that declares an ed25519 key, as TOML ready to paste."""
    return "\n".join(
        [
            "[[key]]",
            f"name = {tomlkit.string(name).as_string()}",
            'kind = "ed25519"',
            f"public_key = {tomlkit.string(public_key).as_string()}",
        ]
    )


def generate(name: str, *, home: Path | None, loaded: ManifestFile | None) -> str:
    """Make the key, store its secret privately, and return its ``[[key]]`` entry."""
    signing_home = generation_home(home)
    refuse_inside_mirror(signing_home.path, manifest_file=loaded, what="the key home")
    try:
        key = Ed25519SecretKey.generate(name)
    except ValueError as exc:
        raise ReconcileError(
            f"{exc}: an ed25519 key name is 1 to 128 letters, digits and . _ + -",
            hint="choose a shorter name",
            reference="bad-key-name",
        ) from None
    path = store_secret_key(signing_home, name, key)
    public = key.public_key().text()
    _note(f"Generated the ed25519 signing key {public}; its secret key is in {path} (mode 0600).")
    _note(
        "In CI, you can instead put the secret key text into $RECONCILE_ED25519_SECRET_KEY. "
        f"Back it up with: reconcile keys export {name} --secret --out FILE"
    )
    return key_entry(name=name, public_key=public)


def listed(home: Path | None, manifest_keys: tuple[Key, ...]) -> list[dict[str, Any]]:
    """Every ed25519 secret key in the signing homes, with the [[key]] entries it serves."""
    found = []
    for signing_home in signing_homes(home):
        for name, key in secret_keys(signing_home.path).items():
            public = key.public_key().text()
            found.append(
                {
                    "name": name,
                    "scheme": "ed25519",
                    "public_key": public,
                    "path": str(secret_key_path(signing_home.path, name)),
                    "manifest_keys": [
                        k.name
                        for k in manifest_keys
                        if k.kind == "ed25519" and (k.public_key == public or k.name == name)
                    ],
                }
            )
    return found


def render(found: list[dict[str, Any]]) -> list[str]:
    lines = []
    for item in found:
        lines.append(f"  ed25519 {item['public_key']}  ({item['path']})")
        names = item["manifest_keys"]
        lines.append(
            "      declared by the manifest as " + ", ".join(f"'{n}'" for n in names)
            if names
            else "      not declared by the manifest"
        )
    return lines


def export(
    name: str, *, home: Path | None, secret: bool, out: Path | None, loaded: ManifestFile | None
) -> bool:
    """Export the ed25519 key ``name`` (its public key, or with ``secret`` its secret key to
    ``out``); False when no ed25519 key has that name (the caller tries GnuPG)."""
    declared = next((k for k in (loaded.manifest.keys if loaded else ()) if k.name == name), None)
    for signing_home in signing_homes(home):
        key = secret_keys(signing_home.path).get(name)
        if key is None:
            continue
        if secret:
            assert out is not None, "the caller requires --out with --secret"
            refuse_inside_mirror(out, manifest_file=loaded, what="the secret key file")
            write_secret_key(out, (key.text() + "\n").encode())
            _note(
                f"warning: {out} holds the SECRET ed25519 key '{name}' (mode 0600): anyone who "
                "reads it can sign binaries that every manifest declaring this key trusts; keep "
                "it offline, never in a mirror or a repository"
            )
            return True
        _write_public(key.public_key().text(), out)
        return True
    if declared is not None and declared.kind == "ed25519":
        if secret:
            raise ReconcileError(
                f"no secret key for the ed25519 [[key]] '{name}' in the signing homes",
                hint="only the machine that generated it (or CI) holds it",
                reference="signing-key-not-found",
            )
        if declared.public_key is not None:
            _write_public(declared.public_key, out)
            return True
    return False


def _write_public(text: str, out: Path | None) -> None:
    if out is None:
        print(text)
        return
    if out.exists():
        raise ReconcileError(
            f"{out} already exists: expected a new file for the public key",
            hint="choose another file name",
            reference="key-file-conflict",
        )
    out.write_text(text + "\n", encoding="ascii")
    _note(f"Wrote the public key {text} to {out}.")
