"""Whether the key that vouched for an install still counts.

An install record names the signer reconcile verified (``signer``: a gpg fingerprint, or a
prefixed key name for other schemes) and when it verified it (``verified_at``, else
``installed_at``). That signer is gone when no ``[[key]]`` declares it any more, or when its
key is ``revoked`` (``revoked_after``: for signatures reconcile verified from then on; the
signer's own timestamp is never trusted for this).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

import attrs

from reconcile.manifest.model import Key
from reconcile.reprs import fields_repr
from reconcile.state.records import InstallRecord


@attrs.frozen(kw_only=True)
class GoneSigner:
    """An install whose only recorded signer no longer counts."""

    __repr__ = fields_repr

    record: InstallRecord
    key: Key | None  # the revoked [[key]]; None: no [[key]] declares the signer any more

    @property
    def why(self) -> str:
        if self.key is None:
            return f"signer {self.record.signer}, which no [[key]] declares any more"
        after = self.key.revoked_after
        if after is not None:
            return f"key '{self.key.name}', which is revoked after {after.isoformat()}"
        return f"key '{self.key.name}', which is revoked"

    def describe(self) -> str:
        record = self.record
        when = f"verified ({verified_at(record).isoformat()})"
        if self.key is not None and self.key.kind == "sigstore" and record.logged_at:
            when = f"signed (logged {record.logged_at})"
        return f"{record.name}@{record.version}/{record.hash[:7]} was {when} only by {self.why}"


def verified_at(record: InstallRecord) -> datetime.datetime:
    """When reconcile last verified the record's signer (its install, unless re-verified)."""
    return datetime.datetime.fromisoformat(record.verified_at or record.installed_at)


def gone_signer(record: InstallRecord, keys: Sequence[Key]) -> GoneSigner | None:
    """Why ``record``'s signer no longer counts under ``keys``; None while it does (or when
    the install came from a mirror declared unsigned)."""
    if record.signer is None:
        return None
    key = next((k for k in keys if k.identity.upper() == record.signer.upper()), None)
    if key is None:
        return GoneSigner(record=record, key=None)
    if key.revoked_for(judged_at(record, key)):
        return GoneSigner(record=record, key=key)
    return None


def judged_at(record: InstallRecord, key: Key) -> datetime.datetime:
    """The moment revocation compares with: for a sigstore key, when the transparency log
    recorded the signature (as verification does); otherwise when reconcile verified it."""
    if key.kind == "sigstore" and record.logged_at is not None:
        return datetime.datetime.fromisoformat(record.logged_at)
    return verified_at(record)
