"""Installs whose signer the manifest has revoked: ``[[key]] revoked = true`` refuses every
signature by the key, ``revoked_after`` those that reconcile verified from then on (the time
in the install record, never the signer's own claim). ``plan`` re-verifies them from a mirror
with a signature that still counts, or reinstalls them; until then drift reports them."""

from __future__ import annotations

from collections.abc import Mapping

from reconcile.manifest.model import ManifestFile
from reconcile.state.records import InstallRecord
from reconcile.trust.revocation import GoneSigner, gone_signer


def revoked_installs(
    manifest_file: ManifestFile, records: Mapping[str, InstallRecord]
) -> list[GoneSigner]:
    """The records whose recorded signer is a key revoked for the time they were verified
    (a signer no [[key]] declares any more is reported as unpinned instead)."""
    keys = manifest_file.manifest.keys
    found = []
    for dag_hash in sorted(records):
        gone = gone_signer(records[dag_hash], keys)
        if gone is not None and gone.key is not None:
            found.append(gone)
    return found
