"""A blob's record: its size, where it came from, which specs used it, and when.

Records are small JSON files rewritten atomically. Two jobs updating one record at the same
time may lose one of their updates (a URL or a use time): nothing depends on a record for
safety, every use re-verifies the blob itself.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import attrs

FORMAT = 1
# A blob shared by many pull requests would otherwise grow its record without end.
MAX_LISTED = 16


def utc_now() -> datetime:
    return datetime.now(UTC)


@attrs.frozen(kw_only=True)
class BlobRecord:
    sha256: str
    size: int
    urls: tuple[str, ...] = ()  # without credentials, most recent last
    specs: tuple[str, ...] = ()  # labels such as hello-app@3.0/d7r6xmz, most recent last
    stored_at: datetime
    last_used: datetime

    def noting(self, *, url: str | None, spec: str | None, when: datetime) -> BlobRecord:
        """This record after a use (or a store) from ``url`` for ``spec``."""
        return attrs.evolve(
            self,
            urls=_most_recent_last(self.urls, url),
            specs=_most_recent_last(self.specs, spec),
            last_used=max(self.last_used, when),
        )

    def to_json(self) -> bytes:
        document = {
            "format": FORMAT,
            "sha256": self.sha256,
            "size": self.size,
            "urls": list(self.urls),
            "specs": list(self.specs),
            "stored_at": self.stored_at.isoformat(),
            "last_used": self.last_used.isoformat(),
        }
        return json.dumps(document, indent=1).encode("utf-8") + b"\n"


def _most_recent_last(items: tuple[str, ...], item: str | None) -> tuple[str, ...]:
    if not item:
        return items
    return (*(x for x in items if x != item), item)[-MAX_LISTED:]


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise TypeError("expected an ISO 8601 string")
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise TypeError("expected an array of strings")
    return tuple(value)


def parse_record(data: bytes, sha256: str) -> BlobRecord | None:
    """The record in ``data``, or None when it is not one for ``sha256`` (a damaged record is
    treated as missing: the blob's own bytes are what count)."""
    try:
        raw = json.loads(data)
        if not isinstance(raw, dict) or raw.get("sha256") != sha256:
            return None
        size = raw["size"]
        if isinstance(size, bool) or not isinstance(size, int):
            return None
        return BlobRecord(
            sha256=sha256,
            size=size,
            urls=_strings(raw.get("urls", [])),
            specs=_strings(raw.get("specs", [])),
            stored_at=_timestamp(raw["stored_at"]),
            last_used=_timestamp(raw["last_used"]),
        )
    except (ValueError, KeyError, TypeError):
        return None
