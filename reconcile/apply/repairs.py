"""Repairs of drifted prefixes: the install tree's commit step between installs and
permission changes.

Phase 1: each prefix still has the record it was planned from; a prefix whose files differ is
re-staged from its verified tarball exactly as an install stages it (cache root first, then
its mirrors; checksum, archive rules, relocation, symlinks, permissions, scan), and the files
someone else added are copied into the staged prefix unless ``[install] strict = true``.
Commit: the staged prefix is swapped in atomically (``apply/swap.py``, journaled) and the
record rewritten; a prefix whose modes or group only differ gets them back in place.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import attrs

from reconcile.apply.context import ApplyResult, RunContext
from reconcile.apply.installs import Staged, install_permissions, stage_from_tarball
from reconcile.apply.swap import aside_path, swap_in
from reconcile.errors import ApplyError
from reconcile.plan.model import RepairAction
from reconcile.state.journal import SwapEntry
from reconcile.state.records import InstallRecord, read_record


def _copy_added(old_prefix: Path, new_prefix: Path, relative: str) -> None:
    """Copy one path reconcile did not install into the staged prefix, as it is (links
    not followed, modes kept), even into a folder that is read-only."""
    source, target = old_prefix / relative, new_prefix / relative
    parent = target.parent
    if not parent.is_dir() or parent.is_symlink():
        return  # its folder is not part of the package any more: nothing to keep it in
    mode = stat.S_IMODE(parent.lstat().st_mode)
    parent.chmod(mode | stat.S_IWUSR | stat.S_IXUSR)
    try:
        if source.is_dir() and not source.is_symlink():
            shutil.copytree(source, target, symlinks=True)
        else:
            shutil.copy2(source, target, follow_symlinks=False)
    finally:
        parent.chmod(mode)


def _restore_metadata(record: InstallRecord, relative: str) -> None:
    """Give one path back its recorded mode, and the group the record names."""
    entry = record.entries_by_path().get(relative)
    if entry is None or entry.type == "symlink":
        return
    path = record.prefix if relative == "." else f"{record.prefix}/{relative}"
    gid = (record.permissions or {}).get("gid")
    if isinstance(gid, int):
        os.chown(path, -1, gid, follow_symlinks=False)
    os.chmod(path, entry.mode, follow_symlinks=False)  # noqa: PTH101  (after chown: it clears set-gid)


class RepairStep:
    """Phase ``repair``."""

    def __init__(self, run: RunContext) -> None:
        self.run = run
        self.root = run.manifest_file.install_root()
        self.permissions, self.gid = install_permissions(run)
        self.records: list[InstallRecord] = []
        self.staged: list[Staged | None] = []

    def prepare(self, workdir: Path) -> None:
        workdir.mkdir(mode=0o700)
        for number, repair in enumerate(self.run.plan.repairs):
            record = read_record(self.root, repair.hash)
            if record is None or record.prefix != repair.prefix:
                raise ApplyError(
                    f"cannot repair {repair.label}: its install record is gone or names "
                    "another prefix",
                    hint="run plan again",
                )
            self.records.append(record)
            if repair.restage is None:
                self.staged.append(None)
                continue
            staged = stage_from_tarball(
                self.run, repair.restage, workdir / f"repair-{number}", self.permissions, self.gid
            )
            if repair.keep_added:
                for relative in repair.added:
                    _copy_added(Path(repair.prefix), staged.prefix_dir, relative)
            self.staged.append(staged)

    def commit(self, result: ApplyResult) -> ApplyResult:
        repaired = []
        for repair, record, staged in zip(
            self.run.plan.repairs, self.records, self.staged, strict=True
        ):
            self.run.committed = True
            if staged is None:
                for relative in repair.metadata:
                    _restore_metadata(record, relative)
            else:
                self._swap(repair, record, staged)
            self.run.reporter.event(
                f"repaired {repair.label} at {repair.prefix} ({repair.differing} path(s))"
            )
            repaired.append(repair.label)
        return attrs.evolve(result, repaired=tuple(repaired))

    def _swap(self, repair: RepairAction, record: InstallRecord, staged: Staged) -> None:
        # still the same install: who installed it and when stay as they were; its signed
        # metadata was verified now (revocation dates compare against this)
        new_record = attrs.evolve(
            staged.record,
            installed_at=record.installed_at,
            owner=record.owner,
            verified_at=staged.record.installed_at,
        )
        st = os.lstat(staged.prefix_dir)
        swap_in(
            self.root,
            repair.hash,
            SwapEntry(
                prefix=repair.prefix,
                staged=str(staged.prefix_dir),
                aside=str(aside_path(self.root, repair.hash)),
                replacement=(st.st_dev, st.st_ino),
                record=new_record,
            ),
        )
