"""``reconcile keys generate | list | export``: the keys that sign binary caches.

Secret keys live in a private GnuPG home (see ``reconcile.trust.keystore``), never in a mirror
or a manifest; what goes into the manifest is the public part, as a ``[[key]]`` entry.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tomlkit

from reconcile.cli import keys_ed25519, keys_sigstore, keys_usage
from reconcile.errors import ManifestError, ReconcileError
from reconcile.manifest.checks import check_name
from reconcile.manifest.kinds import GENERATED_KEY_KINDS
from reconcile.manifest.load import load_manifest
from reconcile.manifest.model import Key, ManifestFile
from reconcile.trust.key_files import (
    refuse_existing_public_key,
    write_public_key,
    write_secret_key,
)
from reconcile.trust.keygen import create_signing_key, default_email
from reconcile.trust.keystore import (
    ORIGIN_OPTION,
    generation_home,
    is_within,
    refuse_inside_mirror,
    require_gpg,
    signing_homes,
)
from reconcile.trust.secret_keys import (
    SigningKey,
    export_public_key,
    export_secret_key,
    find_signing_key,
    list_signing_keys,
)
from reconcile.trust.signing_home import SigningHome
from reconcile.trust.verify import normalize_fingerprint
from reconcile.userpath import expand_user

EXIT_OK = 0


def run_keys(args: argparse.Namespace, manifest: Path) -> int:
    if args.keys_command == "generate":
        return _generate(args, manifest)
    if args.keys_command == "list":
        return _list(args, manifest)
    if args.keys_command == "export":
        return _export(args, manifest)
    raise AssertionError(args.keys_command)


def _optional_manifest(path: Path) -> ManifestFile | None:
    """The manifest when there is one: keys can be made before the manifest is written."""
    return load_manifest(path) if path.exists() else None


def _manifest_awaiting_key(path: Path, name: str) -> ManifestFile | None:
    """The manifest, for ``keys generate NAME``. A manifest whose only problems are that
    ``sign_with`` or ``[[publish]] key`` already name the key about to be made is the usual
    order of work, not an error: it is treated as if there were no manifest yet."""
    try:
        return _optional_manifest(path)
    except ManifestError as exc:
        awaited = f"names key {name!r}, which is not declared"
        if exc.problems and all(awaited in problem.message for problem in exc.problems):
            return None
        raise


def _note(text: str) -> None:
    print(text, file=sys.stderr)


def _warn_if_next_to_manifest(path: Path, manifest: Path, what: str) -> None:
    if is_within(path, manifest.absolute().parent):
        _note(
            f"warning: {what} {path} is inside the manifest's folder: make sure it is never "
            "committed (add it to .gitignore)"
        )


# --- generate ------------------------------------------------------------------------------


def _toml_string(text: str) -> str:
    return tomlkit.string(text).as_string()


def key_entry(*, name: str, fingerprint: str, file: str) -> str:
    """The ``[[key]]`` table that pins a gpg key, as TOML ready to paste."""
    return "\n".join(
        [
            "[[key]]",
            f"name = {_toml_string(name)}",
            'kind = "gpg"',
            f"fingerprint = {_toml_string(fingerprint)}",
            f"file = {_toml_string(file)}",
        ]
    )


def _manifest_relative(path: Path, folder: Path) -> str:
    """How the manifest names ``path``: relative to its folder when inside it."""
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return str(path)


def _check_kind(kind: str) -> None:
    if kind not in GENERATED_KEY_KINDS:
        raise ReconcileError(
            f"unsupported key kind {kind!r}: expected one of {', '.join(GENERATED_KEY_KINDS)}"
            + (
                " (a sigstore identity has no secret to generate: declare its identity and issuer)"
                if kind == "sigstore"
                else ""
            ),
            hint="use --kind gpg or --kind ed25519",
            reference="unsupported-key-kind",
        )


def _print_json(document: dict[str, Any]) -> None:
    print(json.dumps(document, indent=1))


def _generate(args: argparse.Namespace, manifest: Path) -> int:
    if args.public_out_deprecated is not None:
        _note("warning: --public-out is deprecated; use --out FILE")
        args.public_out = args.public_out or args.public_out_deprecated
    _check_kind(args.kind)
    problem = check_name(args.name, "key")
    if problem is not None:
        raise ReconcileError(
            problem,
            hint="it names the key in the manifest and its public key file",
            reference="bad-key-name",
        )
    loaded = _manifest_awaiting_key(manifest, args.name)
    folder = loaded.folder if loaded is not None else manifest.absolute().parent
    if loaded is not None and any(key.name == args.name for key in loaded.manifest.keys):
        raise ReconcileError(
            f"{loaded.path} already has a [[key]] named {args.name!r}: expected a new name",
            hint="choose another name, or remove that entry first if the key is retired",
            reference="signing-key-exists",
        )
    if args.kind == "ed25519":
        target = loaded.path if loaded is not None else manifest.absolute()
        entry = keys_ed25519.generate(args.name, home=args.home, loaded=loaded)
        if args.json:
            _print_json({"name": args.name, "kind": "ed25519", "entry": entry})
            return EXIT_OK
        _note(f"Add this entry to {target}:\n")
        print(entry)
        return EXIT_OK
    public_out = (
        expand_user(args.public_out).absolute()
        if args.public_out is not None
        else folder / "keys" / f"{args.name}.pub"
    )
    refuse_existing_public_key(public_out)
    home = generation_home(args.home)
    key = create_signing_key(
        home,
        name=args.name,
        email=args.email or default_email(),
        algorithm=args.algorithm,
        manifest_file=loaded,
    )
    write_public_key(public_out, export_public_key(home.path, key.fingerprint), key.fingerprint)
    _note(
        f"Generated the {key.algorithm} signing key {key.fingerprint} ({key.uids[0]}) in "
        f"{home.describe()}."
    )
    _note(f"Wrote its public key to {public_out}.")
    _note(
        "The secret key has NO passphrase, so that CI can sign without a prompt; to add one: "
        f"gpg --homedir {home.path} --passwd {key.fingerprint}"
    )
    home_option = f" --home {home.path}" if home.origin == ORIGIN_OPTION else ""
    _note(
        f"Back it up with: reconcile keys export {key.fingerprint}{home_option} --secret --out FILE"
    )
    _warn_if_next_to_manifest(home.path, manifest, "the key home")
    target = loaded.path if loaded is not None else manifest.absolute()
    _note(f"Add this entry to {target}:\n")
    entry = key_entry(
        name=args.name,
        fingerprint=key.fingerprint,
        file=_manifest_relative(public_out, folder),
    )
    if args.json:
        _print_json(
            {
                "name": args.name,
                "kind": "gpg",
                "fingerprint": key.fingerprint,
                "algorithm": key.algorithm,
                "public_key_file": str(public_out),
                "home": str(home.path),
                "entry": entry,
            }
        )
        return EXIT_OK
    print(entry)
    return EXIT_OK


# --- list ------------------------------------------------------------------------------------


def _pinned_names(key: SigningKey, manifest_keys: Sequence[Key]) -> list[str]:
    return [
        k.name for k in manifest_keys if normalize_fingerprint(k.fingerprint) == key.fingerprint
    ]


def _key_dict(key: SigningKey, manifest_keys: Sequence[Key]) -> dict[str, Any]:
    return {
        "fingerprint": key.fingerprint,
        "key_id": key.key_id,
        "uids": list(key.uids),
        "created": key.created.isoformat(),
        "algorithm": key.algorithm,
        "status": key.status,
        "can_sign": key.can_sign,
        "manifest_keys": _pinned_names(key, manifest_keys),
    }


def _render_key(key: SigningKey, manifest_keys: Sequence[Key], *, has_manifest: bool) -> list[str]:
    status = "" if key.can_sign else f"  [{key.status}]"
    uid = key.uids[0] if key.uids else "(no user id)"
    lines = [f"  {key.fingerprint}  {key.algorithm}  created {key.created:%Y-%m-%d}  {uid}{status}"]
    lines.extend(f"      also {other}" for other in key.uids[1:])
    names = _pinned_names(key, manifest_keys)
    if names:
        lines.append("      pinned by the manifest as " + ", ".join(f"'{n}'" for n in names))
    elif has_manifest:
        lines.append("      not pinned by the manifest")
    return lines


def _list(args: argparse.Namespace, manifest: Path) -> int:
    loaded = _optional_manifest(manifest)
    manifest_keys = loaded.manifest.keys if loaded is not None else ()
    homes = signing_homes(args.home)
    require_gpg()
    listings: list[tuple[SigningHome, tuple[SigningKey, ...] | None]] = [
        (home, list_signing_keys(home) if home.explicit or home.path.exists() else None)
        for home in homes
    ]
    ed25519 = keys_ed25519.listed(args.home, manifest_keys)
    available = {key.fingerprint for _, keys in listings for key in keys or ()}
    available |= {identity for item in ed25519 for identity in item["manifest_keys"]}
    unmatched = [
        k
        for k in manifest_keys
        if k.kind != "sigstore"  # keyless: there is never a secret to find
        and (normalize_fingerprint(k.fingerprint) if k.kind == "gpg" else k.name) not in available
    ]
    if args.json:
        document = {
            "manifest": str(loaded.path) if loaded is not None else None,
            "homes": [
                {
                    "path": str(home.path),
                    "origin": home.origin,
                    "exists": keys is not None,
                    "keys": [_key_dict(key, manifest_keys) for key in keys or ()],
                }
                for home, keys in listings
            ],
            "ed25519_keys": ed25519,
            "declared_keys": keys_usage.declared_keys(loaded) if loaded is not None else [],
            "manifest_keys_without_secret": [
                {"name": k.name, "fingerprint": normalize_fingerprint(k.fingerprint)}
                if k.kind == "gpg"
                else {"name": k.name, "scheme": k.kind, "public_key": k.public_key}
                for k in unmatched
            ],
        }
        print(json.dumps(document, indent=1))
        return EXIT_OK
    lines: list[str] = []
    for home, keys in listings:
        if keys is None:
            lines.append(f"{home.describe()}: does not exist")
            continue
        lines.append(f"{home.describe()}:" if keys else f"{home.describe()}: no secret keys")
        for key in keys:
            lines.extend(_render_key(key, manifest_keys, has_manifest=loaded is not None))
    if ed25519:
        lines.append("ed25519 secret keys:")
        lines.extend(keys_ed25519.render(ed25519))
    if loaded is not None:
        lines.extend(keys_usage.render(keys_usage.declared_keys(loaded)))
    if loaded is None:
        lines.append(f"(no manifest at {manifest}: keys not matched against [[key]] entries)")
    elif unmatched:
        lines.append(
            "Pinned by the manifest, with no secret key here (they can verify, not sign): "
            + ", ".join(f"'{k.name}' {_shown_identity(k)}" for k in unmatched)
        )
    count = len({key.fingerprint for _, keys in listings for key in keys or ()}) + len(ed25519)
    lines.append(f"{count} signing key{'s' if count != 1 else ''}.")
    if count == 0:
        lines.append("Make one with: reconcile keys generate NAME")
    print("\n".join(lines))
    return EXIT_OK


def _shown_identity(key: Key) -> str:
    if key.kind == "gpg":
        return normalize_fingerprint(key.fingerprint)
    if key.kind == "sigstore":
        return f"sigstore {keys_sigstore.identity_text(key)}"
    return f"{key.kind} {key.public_key or key.file}"


# --- export -----------------------------------------------------------------------------------


def _export(args: argparse.Namespace, manifest: Path) -> int:
    if not args.json:
        return _export_key(args, manifest)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        _export_key(args, manifest)
    if args.out is not None:
        out = str(expand_user(args.out).absolute())
        _print_json({"key": args.key, "secret": args.secret, "out": out})
    else:
        _print_json({"key": args.key, "secret": False, "public_key": printed.getvalue()})
    return EXIT_OK


def _export_key(args: argparse.Namespace, manifest: Path) -> int:
    if args.secret and args.out is None:
        raise ReconcileError(
            "--secret needs --out FILE: a secret key is never printed to standard output",
            hint="pass --out FILE (created with mode 0600), somewhere private and outside "
            "every mirror and repository",
            reference="secret-out-required",
        )
    loaded = _optional_manifest(manifest)
    out: Path | None = expand_user(args.out).absolute() if args.out is not None else None
    if args.secret and out is not None:
        refuse_inside_mirror(out, manifest_file=loaded, what="the secret key file")
    keys_sigstore.refuse_export(args.key, loaded)
    if keys_ed25519.export(args.key, home=args.home, secret=args.secret, out=out, loaded=loaded):
        return EXIT_OK
    require_gpg()
    found = find_signing_key(
        args.key,
        homes=signing_homes(args.home),
        manifest_keys=loaded.manifest.keys if loaded is not None else (),
    )
    fingerprint, home = found.key.fingerprint, found.home.path
    if args.secret and out is not None:
        write_secret_key(out, export_secret_key(home, fingerprint))
        _note(
            f"warning: {out} holds the SECRET key {found.key.label()}, readable only by you "
            "(mode 0600). Anyone who reads it can sign binaries that every manifest pinning "
            "this key trusts: keep it offline (a password manager or an encrypted backup), "
            f"never in a mirror or a repository. Restore it with: gpg --homedir DIR --import {out}"
        )
        _warn_if_next_to_manifest(out, manifest, "the secret key file")
        return EXIT_OK
    armored = export_public_key(home, fingerprint)
    if out is None:
        sys.stdout.write(armored.decode("ascii"))
        return EXIT_OK
    if write_public_key(out, armored, fingerprint):
        _note(f"Wrote the public key {found.key.label()} to {out}.")
    else:
        _note(f"{out} already holds the public key {fingerprint}; left as it is.")
    return EXIT_OK
