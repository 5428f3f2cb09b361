"""Writing exported keys to files: a public key never replaces a different key, and a secret
key is private (0600) from the moment its file exists and never replaces anything."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from reconcile.errors import ReconcileError
from reconcile.trust.keystore import PRIVATE_FILE_MODE
from reconcile.trust.verify import key_fingerprints

PUBLIC_FILE_MODE = 0o644  # a public key is meant to be read, committed and published


def _held_keys(path: Path) -> tuple[str, ...]:
    try:
        return key_fingerprints(path.read_bytes())
    except OSError as exc:
        raise ReconcileError(
            f"cannot read {path}: {exc.strerror or exc}",
            hint="check the path and its permissions",
            reference="key-file-unreadable",
        ) from None


def _conflict(path: Path, held: tuple[str, ...], expected: str) -> ReconcileError:
    shown = f"key {', '.join(held)}" if held else "no OpenPGP key"
    return ReconcileError(
        f"{path} already exists and holds {shown}: expected a new file, or one holding only "
        f"{expected}",
        hint="choose another file, or remove this one first if its key is no longer wanted "
        "(and the [[key]] entry that pins it)",
        reference="key-file-conflict",
    )


def refuse_existing_public_key(path: Path, *, new_key: str = "the new key") -> None:
    """Before making a key: its public file must not exist yet (a fresh key always differs
    from whatever the file holds)."""
    if path.exists() or path.is_symlink():
        raise _conflict(path, _held_keys(path) if path.is_file() else (), new_key)


def _link_new_file(path: Path, data: bytes, *, mode: int) -> None:
    """Write ``data`` to a temporary file in ``path``'s folder, then link it to ``path``: the
    link fails rather than replace a file that appeared meanwhile."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temp = Path(temp_name)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.link(temp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def write_public_key(path: Path, armored: bytes, fingerprint: str) -> bool:
    """Write ``armored`` (the public key ``fingerprint``) to ``path``; False when the file
    already holds exactly that key. Refuses a file holding anything else."""
    if path.exists() or path.is_symlink():
        held = _held_keys(path) if path.is_file() else ()
        if held == (fingerprint,):
            return False
        raise _conflict(path, held, fingerprint)
    try:
        _link_new_file(path, armored, mode=PUBLIC_FILE_MODE)
    except FileExistsError:
        return write_public_key(path, armored, fingerprint)
    except OSError as exc:
        raise ReconcileError(
            f"cannot write the public key to {path}: {exc.strerror or exc}",
            hint="choose a writable place",
            reference="key-file-unwritable",
        ) from None
    return True


def write_secret_key(path: Path, armored: bytes) -> None:
    """Write a secret key to a new file of mode 0600; never over an existing file."""
    if str(path) == "-":
        raise ReconcileError(
            "a secret key is never written to standard output: expected a file name",
            hint="pass --out FILE (it is created with mode 0600)",
            reference="secret-out-required",
        )
    if path.exists() or path.is_symlink():
        raise ReconcileError(
            f"{path} already exists: expected a new file for the secret key",
            hint="choose another file name; a backup is never overwritten",
            reference="key-file-conflict",
        )
    try:
        _link_new_file(path, armored, mode=PRIVATE_FILE_MODE)
    except FileExistsError:
        raise ReconcileError(
            f"{path} appeared while the secret key was being written: it was left as it is",
            hint="choose another file name",
            reference="key-file-conflict",
        ) from None
    except OSError as exc:
        raise ReconcileError(
            f"cannot write the secret key to {path}: {exc.strerror or exc}",
            hint="choose a writable, private place",
            reference="key-file-unwritable",
        ) from None
