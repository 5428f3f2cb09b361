"""Installs whose signer the manifest has revoked: ``[[key]] revoked = true`` refuses every
signature by the key, ``revoked_after`` those that reconcile verified from then on (the time
in the install record, never the signer's own claim)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping

import attrs

from reconcile.manifest.model import Key, ManifestFile
from reconcile.state.records import InstallRecord


@attrs.frozen(kw_only=True)
class RevokedInstall:
    record: InstallRecord
    key: Key

    def describe(self) -> str:
        when = (
            f"revoked after {self.key.revoked_after.isoformat()}"
            if self.key.revoked_after is not None
            else "revoked"
        )
        return (
            f"{self.record.name}@{self.record.version}/{self.record.hash[:7]} was verified "
            f"({self.record.installed_at}) only by key '{self.key.name}', which is {when}"
        )


def revoked_installs(
    manifest_file: ManifestFile, records: Mapping[str, InstallRecord]
) -> list[RevokedInstall]:
    """The records whose recorded signer is a key revoked for the time they were verified."""
    keys = {key.identity.upper(): key for key in manifest_file.manifest.keys}
    found = []
    for dag_hash in sorted(records):
        record = records[dag_hash]
        key = keys.get((record.signer or "").upper())
        if key is None:
            continue
        verified_at = datetime.datetime.fromisoformat(record.installed_at)
        if key.revoked_for(verified_at):
            found.append(RevokedInstall(record=record, key=key))
    return found
