"""Making a signing key in a private home, ready to pin in a manifest."""

from __future__ import annotations

import getpass
import socket

from reconcile.errors import ReconcileError
from reconcile.manifest.model import ManifestFile
from reconcile.trust.key_algorithms import ALGORITHMS as ALGORITHMS
from reconcile.trust.keystore import (
    prepare_private_home,
    refuse_inside_mirror,
    require_gpg,
    tighten_private_home,
)
from reconcile.trust.secret_keys import SigningKey, list_signing_keys, uid_name
from reconcile.trust.sign import generate_key
from reconcile.trust.signing_home import SigningHome


def default_email() -> str:
    """``user@host``, as git and gpg fall back to when no address is given."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "reconcile"
    return f"{user}@{socket.gethostname() or 'localhost'}"


def create_signing_key(
    home: SigningHome,
    *,
    name: str,
    email: str,
    algorithm: str = "ed25519",
    manifest_file: ManifestFile | None = None,
) -> SigningKey:
    """A new passphrase-less signing key with user id ``name <email>`` in ``home``.

    The home is made private (folder 0700, files 0600) and must not be inside one of
    ``manifest_file``'s mirrors. A second key with the same name in one home is refused: it
    would make lookups by name ambiguous.
    """
    refuse_inside_mirror(home.path, manifest_file=manifest_file, what="the signing key home")
    require_gpg()
    prepare_private_home(home)
    same_name = [
        key for key in list_signing_keys(home) if any(uid_name(uid) == name for uid in key.uids)
    ]
    if same_name:
        raise ReconcileError(
            f"{home.describe()} already holds a signing key named {name!r}: "
            f"{same_name[0].label()}; expected a new name",
            hint=f"use that key ('reconcile keys export {same_name[0].fingerprint}'), or give "
            "the new key another name (for example with a year: NAME-2025)",
            reference="signing-key-exists",
        )
    fingerprint = generate_key(home.path, name, email, algorithm=algorithm)
    tighten_private_home(home.path)
    made = [key for key in list_signing_keys(home) if key.fingerprint == fingerprint]
    if not made:
        raise ReconcileError(
            f"gpg reported the new key {fingerprint}, but {home.describe()} does not list it",
            hint=f"check the home with 'gpg --homedir {home.path} --list-secret-keys'",
            reference="key-generation-failed",
        )
    return made[0]
