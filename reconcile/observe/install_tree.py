"""Facts about the install tree: which specs reconcile recorded, which prefixes exist, and how
each existing prefix differs from its record (the drift the plan repairs)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from reconcile.observe.findings import CheckMode, Finding
from reconcile.observe.ignore import IgnoreRules
from reconcile.observe.prefix_drift import compare_prefix
from reconcile.state.records import InstallRecord, read_records

# Comparing a prefix waits on the disk (stat, and reading files when hashing): overlap them.
DRIFT_WORKERS = 4
# Fewer prefixes than this, only stat'ed: compared in this thread. A pool's threads (and
# importing concurrent.futures, which imports logging) cost more than the stat calls.
FAST_CHECKS_IN_THREAD = DRIFT_WORKERS


def observe_install_tree(root: Path) -> tuple[Mapping[str, InstallRecord], frozenset[str]]:
    """The records under ``root`` and the hashes whose recorded prefix is a folder on disk."""
    records = read_records(root)
    present = frozenset(h for h, r in records.items() if Path(r.prefix).is_dir())
    return records, present


def observe_prefix_drift(
    records: Mapping[str, InstallRecord],
    present: Iterable[str],
    *,
    mode: CheckMode,
    ignore_patterns: Iterable[str] = (),
) -> dict[str, tuple[Finding, ...]]:
    """For each present prefix, what differs from its record (empty when nothing does);
    the same comparison ``reconcile drift`` makes (read-only)."""
    ignore = IgnoreRules(ignore_patterns)
    hashes = sorted(present)
    if mode == "fast" and len(hashes) < FAST_CHECKS_IN_THREAD:
        return {h: compare_prefix(records[h], mode=mode, ignore=ignore).findings for h in hashes}
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=DRIFT_WORKERS) as workers:
        compared = workers.map(
            lambda h: compare_prefix(records[h], mode=mode, ignore=ignore).findings, hashes
        )
        return dict(zip(hashes, compared, strict=True))
