"""Reading a text file a ``[[key]]`` entry names (an ed25519 public key, a Sigstore trusted
root or signing config): regular files only, bounded, and each failure worded for the key."""

from __future__ import annotations

from pathlib import Path

from reconcile.errors import VerificationError
from reconcile.manifest.bounded import MAX_KEY_FILE_BYTES, NotReadableError, read_bounded
from reconcile.manifest.model import Key


def read_key_text(
    key: Key,
    path: Path,
    *,
    what: str,
    encoding: str,
    missing_hint: str,
    unreadable_hint: str,
) -> str:
    """The text of ``path`` (``what`` it is, for messages), decoded as ``encoding``."""
    try:
        # regular files only, bounded: a FIFO would hang, /dev/zero never ends
        return read_bounded(path, MAX_KEY_FILE_BYTES).decode(encoding)
    except FileNotFoundError:
        raise VerificationError(
            f"key '{key.name}': {what} {path} does not exist",
            hint=missing_hint,
            reference="key-file-missing",
        ) from None
    except (NotReadableError, OSError, UnicodeDecodeError) as exc:
        reason = exc.message if isinstance(exc, NotReadableError) else str(exc)
        raise VerificationError(
            f"key '{key.name}': {what} not read: {reason}",
            hint=unreadable_hint,
            reference="key-file-unreadable",
        ) from None
