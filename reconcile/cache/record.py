"""A blob's record: its size, where it came from, which specs used it, and when; for a
tarball, also the prefixes its package and dependencies were built in.

Records are small JSON files rewritten atomically. Two jobs updating one record at the same
time may lose one of their updates (a URL or a use time): nothing depends on a record for
safety, every use re-verifies the blob itself. A co-tenant of a shared root can write any
record: the built prefixes only spare plan a read of the tarball (apply compares them with
the unpacked ``binary_distribution``), and a field out of bounds or of the wrong type is
ignored, as if the record did not have it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

from reconcile.reprs import fields_repr

FORMAT = 1
# A blob shared by many pull requests would otherwise grow its record without end.
MAX_LISTED = 16
# Bounds on the built prefixes a record may hold (a hostile record is ignored past them):
# Spack's DAG hashes are 32 characters, a prefix is a path (PATH_MAX), and a package with
# more dependencies than this is read from its tarball instead.
MAX_BUILT_ENTRIES = 1024
MAX_BUILT_CHARS = 4096
MAX_BUILT_TOTAL = 128 << 10  # characters; escaped, still well below a record's 1 MiB
MAX_HASH_CHARS = 64


def utc_now() -> datetime:
    return datetime.now(UTC)


@attrs.frozen(kw_only=True)
class BuiltPrefixes:
    """Where a tarball's package (``dag_hash``) and its dependencies were built, by DAG hash,
    as its ``.spack/binary_distribution`` says (``observe.built_prefix``)."""

    __repr__ = fields_repr

    dag_hash: str
    prefixes: Mapping[str, str]  # the package's own included

    def to_json(self) -> dict[str, Any]:
        return {"hash": self.dag_hash, "prefixes": dict(sorted(self.prefixes.items()))}


def built_prefixes_or_none(dag_hash: str, prefixes: Mapping[str, str]) -> BuiltPrefixes | None:
    """``prefixes`` as a record's field, or None when they are out of the bounds a record
    accepts (the package is then read from its tarball, as without a record)."""
    return _checked_built({"hash": dag_hash, "prefixes": dict(prefixes)})


@attrs.frozen(kw_only=True)
class BlobRecord:
    __repr__ = fields_repr

    sha256: str
    size: int
    urls: tuple[str, ...] = ()  # without credentials, most recent last
    specs: tuple[str, ...] = ()  # labels such as hello-app@3.0/d7r6xmz, most recent last
    stored_at: datetime
    last_used: datetime
    built: BuiltPrefixes | None = None  # a hint for plan, never trusted (module docstring)

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
        if self.built is not None:
            document["built"] = self.built.to_json()
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
            built=_checked_built(raw.get("built")),
        )
    except (ValueError, KeyError, TypeError):
        return None


def _bounded_text(value: Any, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit and value.isprintable()


def _checked_built(value: Any) -> BuiltPrefixes | None:
    """A record's ``built`` field when it has the shape and size reconcile writes; anything
    else (missing, wrong types, too large, control characters) is None."""
    if not isinstance(value, dict) or set(value) != {"hash", "prefixes"}:
        return None
    dag_hash, prefixes = value["hash"], value["prefixes"]
    if not _bounded_text(dag_hash, MAX_HASH_CHARS) or not isinstance(prefixes, dict):
        return None
    if not 0 < len(prefixes) <= MAX_BUILT_ENTRIES or dag_hash not in prefixes:
        return None
    total = 0
    for key, prefix in prefixes.items():
        if not _bounded_text(key, MAX_HASH_CHARS) or not _bounded_text(prefix, MAX_BUILT_CHARS):
            return None
        if not prefix.startswith("/"):
            return None
        total += len(key) + len(prefix)
    if total > MAX_BUILT_TOTAL:
        return None
    return BuiltPrefixes(dag_hash=dag_hash, prefixes=dict(prefixes))
