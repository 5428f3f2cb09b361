"""Removals of prefixes no declared closure needs (``[install] prune = true``): the install
tree's commit step after permission changes.

Phase 1: each prefix still has the record it was planned from, and (unless ``--force``) still
matches it, so a file someone changed or added since the plan is never deleted. Commit, per
prefix: rename it into ``.reconcile/trash/`` (one atomic step: the prefix is whole or gone),
log what was removed and when in ``.reconcile/removed/``, delete its install record, then
delete the trash copy. Interrupted, the trash copy is a leftover the next run clears, and a
record without its prefix is planned for removal again.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs

from reconcile.apply.context import ApplyResult, RunContext
from reconcile.apply.swap import aside_path, remove_folder
from reconcile.errors import ApplyError
from reconcile.faults import crash_point
from reconcile.observe.ignore import IgnoreRules
from reconcile.observe.prefix_drift import compare_prefix
from reconcile.state.records import InstallRecord, delete_record, read_record, record_fingerprint
from reconcile.state.removals import log_removal


class RemoveStep:
    """Phase ``remove``."""

    def __init__(self, run: RunContext) -> None:
        self.run = run
        self.root = run.manifest_file.install_root()
        self.records: list[InstallRecord] = []

    def prepare(self, workdir: Path) -> None:
        del workdir  # nothing to fetch
        ignore = IgnoreRules(self.run.manifest_file.manifest.drift.ignore)
        for removal in self.run.plan.removals:
            record = read_record(self.root, removal.hash)
            planned = self.run.plan.fingerprints.get(f"record:{removal.hash}")
            if record is None or record_fingerprint(record) != planned:
                raise ApplyError(
                    f"cannot remove {removal.label}: its install record is gone or changed "
                    "since the plan; reconcile removes only prefixes recorded as planned",
                    hint="run plan again",
                    reference="removal-refused",
                )
            if removal.prefix_present and not removal.force:
                drifted = compare_prefix(record, mode="fast", ignore=ignore).findings
                if drifted:
                    raise ApplyError(
                        f"cannot remove {removal.label}: {len(drifted)} path(s) of "
                        f"{removal.prefix} differ from its install record since the plan "
                        f"(for example {drifted[0].path}: {drifted[0].detail})",
                        hint="look at what changed ('reconcile drift'); remove it anyway "
                        "with 'reconcile apply --force'",
                        reference="removal-refused",
                    )
            self.records.append(record)

    def commit(self, result: ApplyResult) -> ApplyResult:
        removed = []
        for removal, record in zip(self.run.plan.removals, self.records, strict=True):
            self.run.committed = True
            prefix = Path(removal.prefix)
            aside = aside_path(self.root, removal.hash)
            if os.path.lexists(prefix):
                aside.parent.mkdir(parents=True, exist_ok=True)
                prefix.rename(aside)  # the prefix is whole, or gone
                crash_point("removal-aside")
            log_removal(self.root, record, reason=removal.reason)
            delete_record(self.root, removal.hash)
            if os.path.lexists(aside):
                remove_folder(aside)
            self.run.reporter.event(f"removed {removal.label} from {removal.prefix}")
            removed.append(removal.label)
        return attrs.evolve(result, removed=tuple(removed))
