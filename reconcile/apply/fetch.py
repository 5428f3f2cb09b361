"""Downloading a tarball and checking it against the checksum from verified metadata."""

from __future__ import annotations

import hashlib
from pathlib import Path

from reconcile.errors import VerificationError
from reconcile.plan.model import InstallAction
from reconcile.transport.registry import TransportPool

CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_tarball(action: InstallAction, dest: Path, pool: TransportPool) -> int:
    """Download ``action``'s tarball to ``dest`` and verify it; returns the bytes fetched.

    Nothing is unpacked from a file whose sha256 differs from the signed metadata's value.
    """
    size = pool.for_url(action.tarball_url).download(action.tarball_url, dest)
    actual = sha256_of(dest)
    if actual != action.tarball_sha256:
        dest.unlink(missing_ok=True)
        raise VerificationError(
            f"tarball of {action.label} from mirror '{action.mirror}' does not match its "
            f"signed metadata: sha256 {actual}, expected {action.tarball_sha256} "
            f"({action.tarball_url})",
            hint="the mirror's copy is corrupt or was tampered with; nothing was installed",
            reference="checksum-mismatch",
        )
    return size
