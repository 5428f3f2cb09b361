"""A GnuPG home that may hold signing keys, and the check that it can be read."""

from __future__ import annotations

import os
from pathlib import Path

import attrs

from reconcile.errors import ReconcileError
from reconcile.reprs import fields_repr


@attrs.frozen(kw_only=True)
class SigningHome:
    """A GnuPG home that may hold signing keys."""

    __repr__ = fields_repr

    path: Path  # absolute
    origin: str  # how it was chosen, for messages: "--home", "$GNUPGHOME", ...
    explicit: bool = False  # named by the user: a missing folder is an error, not skipped

    def describe(self) -> str:
        return f"{self.path} ({self.origin})"


def check_readable_home(home: SigningHome) -> None:
    """An existing home must be a folder this user can list."""
    if not home.path.is_dir():
        what = "is not a folder" if home.path.exists() else "does not exist"
        raise ReconcileError(
            f"the signing key home {home.describe()} {what}: expected a GnuPG home folder",
            hint="pass the folder that holds the key with --home, or make a key with "
            "'reconcile keys generate NAME'",
            reference="signing-home-missing",
        )
    if not os.access(home.path, os.R_OK | os.X_OK):
        raise ReconcileError(
            f"the signing key home {home.describe()} is not readable by this user",
            hint="run as the key's owner, or fix the folder's permissions (chmod 700)",
            reference="signing-home-unreadable",
        )
