"""A blob record's ``built`` field (where a tarball's package was built): written as apply
learns it, read back only within bounds and with the types reconcile writes. Anything else
is ignored, the rest of the record kept: plan then reads the tarball, as without a record."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cache_support import GREETLIB_SHA, root, store_fixture

from reconcile.cache.record import (
    MAX_BUILT_CHARS,
    MAX_BUILT_ENTRIES,
    BlobRecord,
    BuiltPrefixes,
    built_prefixes_or_none,
    parse_record,
)
from reconcile.cache.store import BlobCache

SHA = "a" * 64
OWN = "yrhiacwgupby4tv3k7q335q6ovlg2ts2"
DEP = "75b4t5rehtewc6bh4sj3aqwpli7tah3f"
WHEN = datetime(2026, 12, 1, tzinfo=UTC)
GOOD = {"hash": OWN, "prefixes": {OWN: "/opt/built/greetlib", DEP: "/opt/built/gcc-runtime"}}


def _document(built: Any) -> bytes:
    record = {
        "format": 1,
        "sha256": SHA,
        "size": 10,
        "urls": ["https://mirror.example/x.spack"],
        "specs": ["greetlib@2.1/yrhiacw"],
        "stored_at": WHEN.isoformat(),
        "last_used": WHEN.isoformat(),
        "built": built,
    }
    return json.dumps(record).encode()


def test_the_field_round_trips() -> None:
    built = built_prefixes_or_none(OWN, GOOD["prefixes"])
    assert built == BuiltPrefixes(dag_hash=OWN, prefixes=GOOD["prefixes"])
    record = BlobRecord(sha256=SHA, size=10, stored_at=WHEN, last_used=WHEN, built=built)
    assert parse_record(record.to_json(), SHA) == record
    # a use keeps it
    used = record.noting(url="https://m/x", spec="s", when=WHEN)
    assert parse_record(used.to_json(), SHA) == used and used.built == built


def test_a_record_without_the_field_reads_as_before() -> None:
    legacy = json.loads(_document(None))
    del legacy["built"]
    record = parse_record(json.dumps(legacy).encode(), SHA)
    assert record is not None and record.built is None and record.specs


MANY = {f"h{n:031d}": "/p" for n in range(MAX_BUILT_ENTRIES + 1)}
MANY[OWN] = "/p"
WIDE = {f"h{n:031d}": "/" + "w" * (MAX_BUILT_CHARS - 1) for n in range(40)}
WIDE[OWN] = "/p"
HOSTILE: dict[str, Any] = {
    "a string": "/opt/built",
    "a list": [OWN, "/opt/built"],
    "null": None,
    "a number": 1e309,
    "hash a number": {"hash": 7, "prefixes": {OWN: "/p"}},
    "hash a bool": {"hash": True, "prefixes": {OWN: "/p"}},
    "hash empty": {"hash": "", "prefixes": {"": "/p"}},
    "hash huge": {"hash": "h" * 10_000, "prefixes": {"h" * 10_000: "/p"}},
    "prefixes a list": {"hash": OWN, "prefixes": ["/p"]},
    "prefixes empty": {"hash": OWN, "prefixes": {}},
    "own hash missing": {"hash": OWN, "prefixes": {DEP: "/p"}},
    "prefix a number": {"hash": OWN, "prefixes": {OWN: 12}},
    "prefix nested": {"hash": OWN, "prefixes": {OWN: {"a": "/p"}}},
    "prefix empty": {"hash": OWN, "prefixes": {OWN: ""}},
    "prefix relative": {"hash": OWN, "prefixes": {OWN: "opt/built"}},
    "prefix too long": {"hash": OWN, "prefixes": {OWN: "/" + "x" * MAX_BUILT_CHARS}},
    "prefix with an escape": {"hash": OWN, "prefixes": {OWN: "/opt/\x1b]0;owned\x07"}},
    "prefix with a newline": {"hash": OWN, "prefixes": {OWN: "/opt/a\nerror[fake]"}},
    "too many entries": {"hash": OWN, "prefixes": MANY},
    "too many characters in all": {"hash": OWN, "prefixes": WIDE},
    "an unknown key": {**GOOD, "trusted": True},
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_field_is_ignored_and_the_rest_kept(case: str) -> None:
    record = parse_record(_document(HOSTILE[case]), SHA)
    assert record is not None, case
    assert record.built is None, case
    assert record.specs == ("greetlib@2.1/yrhiacw",)


def test_what_is_too_large_to_record_is_not_recorded() -> None:
    assert built_prefixes_or_none(OWN, MANY) is None
    assert built_prefixes_or_none(OWN, {OWN: "/" + "x" * MAX_BUILT_CHARS}) is None


def test_the_cache_keeps_and_gives_the_field_per_spec_hash(tmp_path: Path) -> None:
    cache = BlobCache([root(tmp_path / "cache")])
    blob = store_fixture(cache, "greetlib", GREETLIB_SHA, "greetlib@2.1/yrhiacw")
    assert cache.recorded_built(blob, GREETLIB_SHA, OWN) is None  # not unpacked yet
    built = built_prefixes_or_none(OWN, GOOD["prefixes"])
    assert built is not None
    cache.note_built(GREETLIB_SHA, built)
    assert cache.recorded_built(blob, GREETLIB_SHA, OWN) == GOOD["prefixes"]
    # recorded for another spec hash (the same bytes): not this one's answer
    assert cache.recorded_built(blob, GREETLIB_SHA, DEP) is None
    entry = next(e for e in cache.entries() if e.sha256 == GREETLIB_SHA)
    assert entry.specs == ("greetlib@2.1/yrhiacw",)  # the use history is kept
