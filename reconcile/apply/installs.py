"""Installs and permission changes of installed prefixes: the install tree's commit steps.

Installs, phase 1, for every spec in parallel up to ``jobs``: obtain the tarball (a cache
root's verified blob, or a download checked against the signed checksum), unpack it into a
private staging folder under ``<root>/.reconcile/staging`` checking every archive rule,
relocate it (every final prefix is known from the plan, so no spec waits for another), check
its symlinks, set permissions, and scan it for its install record. Commit, dependencies
first: write each install record, then rename the staged prefix to its final name; all or
nothing up to the first rename. An interruption at any point leaves no prefix half-installed
under its final name: a record without its prefix is reinstalled by the next apply.

Permission changes check in phase 1 that each prefix still has its record, and are made in
place at commit, then recorded.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import attrs

from reconcile import safe_fs
from reconcile.apply.built_check import check_built_prefix
from reconcile.apply.context import ApplyResult, RunContext, SpecSource
from reconcile.apply.fetch import Obtained, keep_in_cache, obtain_tarball
from reconcile.archive.unpack import check_symlinks, unpack_package
from reconcile.archive.writer import restore_directory_modes
from reconcile.buildcache.build_info import built_prefixes_of
from reconcile.cache.partial import state_place
from reconcile.cache.record import built_prefixes_or_none
from reconcile.errors import ApplyError, ReconcileError
from reconcile.faults import crash_point
from reconcile.folders import folder_mode, make_folders
from reconcile.manifest.model import Permissions
from reconcile.pause import pause_point
from reconcile.permissions import apply_permissions, describe_permissions, resolve_group
from reconcile.plan.model import InstallAction
from reconcile.relocate.package import relocate_package
from reconcile.relocate.prefix_map import build_prefix_map
from reconcile.reprs import fields_repr
from reconcile.state.lock import state_dir
from reconcile.state.records import (
    InstallRecord,
    KnownContents,
    owner_name,
    read_record,
    scan_prefix,
    utc_timestamp,
    write_record,
)


@attrs.frozen(kw_only=True)
class Staged:
    __repr__ = fields_repr

    action: InstallAction
    prefix_dir: Path
    record: InstallRecord
    obtained: Obtained
    # by DAG hash, from the unpacked binary_distribution: kept in the blob's cache record
    built_prefixes: dict[str, str] = attrs.field(factory=dict)


class _CancelledError(Exception):
    """Another spec of the run failed: do not start this one."""


def install_permissions(run: RunContext) -> tuple[Permissions | None, int | None]:
    install = run.manifest_file.manifest.install
    permissions = install.permissions if install is not None else None
    group = permissions.group if permissions else None
    return permissions, resolve_group(group) if group else None


def manifest_owner(run: RunContext) -> str:
    """The owner this run's records name (``state/records.py:owner_name``)."""
    manifest_file = run.manifest_file
    install = manifest_file.manifest.install
    explicit = install.owner if install is not None else None
    return owner_name(explicit, manifest_file.path, manifest_file.install_root())


def stage_from_tarball(
    run: RunContext,
    action: InstallAction,
    workdir: Path,
    permissions: Permissions | None,
    gid: int | None,
) -> Staged:
    """Obtain ``action``'s verified tarball (cache root first, then its mirrors), unpack it
    under the archive rules into ``workdir``, relocate it, check its symlinks, set its
    permissions and scan it for its record: a prefix ready to be renamed into place."""
    workdir.mkdir()
    cache = run.settings.cache
    try:
        obtained = obtain_tarball(
            action,
            workdir,
            run.pool,
            cache,
            run.reporter,
            partials=state_place(state_dir(run.manifest_file.install_root())),
        )
        crash_point("after-download")
        staged = _stage(run, action, obtained, workdir / "unpack", permissions, gid)
    except ReconcileError as exc:
        raise exc.add_context(
            f"cannot {'repair' if action.reason == 'repair' else 'install'} {action.label} "
            f"from mirror '{action.mirror}' ({action.tarball_url})"
        ) from None
    except OSError as exc:
        # A full disk on write() names no file; every write left unnamed by the code below
        # goes into this run's staging folder, so that is the place to name.
        if exc.filename is None:
            exc.filename = str(workdir)
        raise
    built = built_prefixes_or_none(action.hash, staged.built_prefixes)
    keep_in_cache(action, obtained, cache, built)
    obtained.path.unlink(missing_ok=True)  # staged (the cache keeps its own copy)
    run.reporter.event(f"staged {action.label} (unpacked, relocated, checked)")
    crash_point("mid-unpack")
    return staged


def _stage(
    run: RunContext,
    action: InstallAction,
    obtained: Obtained,
    workdir: Path,
    permissions: Permissions | None,
    gid: int | None,
) -> Staged:
    # Folder modes are restored after relocation, so a read-only folder in the archive
    # cannot stop a file in it from being rewritten.
    unpacked = unpack_package(
        obtained.path,
        workdir,
        data=obtained.data,
        dag_hash=action.hash,
        restore_modes=False,
        # Verified against the signed checksum, so its size is the signed size.
        signed_size=obtained.size,
        limits=run.manifest_file.manifest.limits,
        hash_files=True,
    )
    plan = run.plan
    built = built_prefixes_of(unpacked.build_info, action.hash)
    cache = run.settings.cache
    if obtained.from_cache and cache is not None:
        # before the check below: a record that misled the plan is corrected even when the
        # check stops this spec (a download's record is written when it is kept, after)
        note = built_prefixes_or_none(action.hash, built)
        if note is not None:
            cache.note_built(action.tarball_sha256, note)
    install = run.manifest_file.manifest.install
    check_built_prefix(
        action,
        unpacked.build_info,
        # a repair restages an installed prefix where it is: plan never refuses those
        strict=install is not None and install.strict_relocation and action.reason != "repair",
        install_root=plan.install_root,
        reporter=run.reporter,
    )
    prefix_map = build_prefix_map(
        unpacked.build_info,
        own_hash=action.hash,
        new_prefixes=plan.prefixes,
        new_root=plan.install_root,
    )
    rewritten = relocate_package(unpacked.prefix_dir, unpacked.build_info, prefix_map)
    crash_point("after-relocate")
    check_symlinks(
        unpacked.prefix_dir,
        final_prefix=action.prefix,
        allowed_prefixes=action.allowed_link_targets,
    )
    restore_directory_modes(unpacked.prefix_dir, unpacked.directory_modes)
    if permissions is not None:
        apply_permissions(unpacked.prefix_dir, permissions, gid=gid)
    record = InstallRecord(
        hash=action.hash,
        name=action.name,
        version=action.version,
        prefix=action.prefix,
        spec=action.spec,
        mirror=obtained.mirror,
        mirror_url=run.pool.shown_url(obtained.mirror) or action.mirror_url,
        tarball_sha256=action.tarball_sha256,
        signer=action.signer,
        logged_at=action.logged_at,
        installed_at=utc_timestamp(),
        permissions=describe_permissions(permissions, gid),
        externals=action.externals,
        owner=manifest_owner(run),
        # The files unpacked here and not rewritten since are not read again: the staging
        # folder is this process's alone, so their bytes are those hashed while written.
        entries=scan_prefix(
            unpacked.prefix_dir, KnownContents(files=unpacked.file_hashes, changed=rewritten)
        ),
    )
    # the tarball's bytes are not kept until the commit: only one per job is in memory
    kept = attrs.evolve(obtained, data=None)
    return Staged(
        action=action,
        prefix_dir=unpacked.prefix_dir,
        record=record,
        obtained=kept,
        built_prefixes=built,
    )


class InstallStep:
    """Phase ``install``: every spec staged and checked, then committed together."""

    def __init__(self, run: RunContext) -> None:
        self.run = run
        self.root = run.manifest_file.install_root()
        self.permissions, self.gid = install_permissions(run)
        self.cancel = threading.Event()
        self.staged: list[Staged] = []
        self.workdir = self.root

    # -- phase 1 ----------------------------------------------------------------------------
    def prepare(self, workdir: Path) -> None:
        self.workdir = workdir
        workdir.mkdir(mode=0o700)  # its tarball copies are private
        futures: list[Future[Staged]] = []
        with ThreadPoolExecutor(max_workers=max(1, self.run.settings.jobs)) as workers:
            for number, action in enumerate(self.run.plan.installs):
                future = workers.submit(self._prepare_one, number, action)
                future.add_done_callback(
                    lambda f: self.cancel.set() if f.exception() is not None else None
                )
                futures.append(future)
        # every worker has finished; report the first failure in plan order
        for future in futures:
            error = future.exception()
            if error is not None and not isinstance(error, _CancelledError):
                raise error
        self.staged = [future.result() for future in futures]

    def _prepare_one(self, number: int, action: InstallAction) -> Staged:
        if self.cancel.is_set():
            raise _CancelledError
        return stage_from_tarball(
            self.run, action, self.workdir / f"spec-{number}", self.permissions, self.gid
        )

    # -- commit -----------------------------------------------------------------------------
    def _make_parent(self, final: Path) -> None:
        """The folders above a prefix, made with reconcile's folder mode; a folder inside
        the install root that is a symlink is refused (``LinkInRootError``), not followed."""
        make_folders(self.root)
        safe_fs.make_folders(self.root, final.parent, mode=folder_mode())

    def commit(self, result: ApplyResult) -> ApplyResult:
        recovered = [s for s in self.staged if s.action.prefix in self.run.recovered]
        for item in recovered:
            self.run.reporter.event(
                f"{item.action.label} at {item.action.prefix} was put back by finishing an "
                "interrupted repair; not installed again"
            )
        self.staged = [s for s in self.staged if s not in recovered]
        taken = [s.action.prefix for s in self.staged if os.path.lexists(s.action.prefix)]
        if taken:
            raise ApplyError(
                "these prefixes appeared on disk since the plan was made: " + ", ".join(taken),
                hint="another process is writing into the install root; run plan again",
            )
        for item in self.staged:  # before the first commit: a planted link refuses them all
            self._make_parent(Path(item.action.prefix))
        installed = []
        for item in self.staged:
            crash_point("before-rename")
            self.run.committed = True
            final = Path(item.action.prefix)
            self._make_parent(final)
            write_record(self.root, item.record)
            with safe_fs.folder_at(self.root, final.parent, create=False) as parent:
                # renamed relative to the parent's descriptor: no link on the way followed
                os.rename(item.prefix_dir, final.name, dst_dir_fd=parent.fd)
            installed.append(item.action.label)
            self.run.reporter.event(f"installed {item.action.label} at {final}")
            crash_point("after-first-rename")
        pause_point("after-commit")
        return self._result(result, installed)

    def _result(self, result: ApplyResult, installed: list[str]) -> ApplyResult:
        from_cache: dict[str, int] = {}
        for item in self.staged:
            if item.obtained.from_cache:
                mirror = item.obtained.mirror
                from_cache[mirror] = from_cache.get(mirror, 0) + item.action.tarball_bytes
        return attrs.evolve(
            result,
            installed=tuple(installed),
            bytes_fetched=result.bytes_fetched + sum(s.obtained.downloaded for s in self.staged),
            sources=tuple(
                SpecSource(
                    label=s.action.label,
                    mirror=s.obtained.mirror,
                    from_cache=s.obtained.from_cache,
                    bytes=s.action.tarball_bytes,
                )
                for s in self.staged
            ),
            cache_bytes_by_mirror=from_cache,
        )


class PermissionsStep:
    """Phase ``permissions``: the manifest's ``[install.permissions]`` on prefixes installed
    earlier. Interrupted, a record still names the old permissions, so the next plan asks
    for the change again."""

    def __init__(self, run: RunContext) -> None:
        self.run = run
        self.root = run.manifest_file.install_root()
        self.permissions, self.gid = install_permissions(run)
        self.records: list[InstallRecord] = []

    def prepare(self, workdir: Path) -> None:
        del workdir  # nothing to fetch: the prefixes are on disk
        for change in self.run.plan.permission_changes:
            record = read_record(self.root, change.hash)
            if record is None or self.permissions is None:
                raise ApplyError(
                    f"cannot change permissions of {change.label}: its install record is gone",
                    hint="run plan again",
                )
            self.records.append(record)

    def commit(self, result: ApplyResult) -> ApplyResult:
        assert self.permissions is not None  # prepare checked it
        changed = []
        for change, record in zip(self.run.plan.permission_changes, self.records, strict=True):
            prefix = Path(change.prefix)
            apply_permissions(prefix, self.permissions, gid=self.gid)
            write_record(
                self.root,
                attrs.evolve(
                    record,
                    permissions=describe_permissions(self.permissions, self.gid),
                    entries=scan_prefix(prefix),
                ),
            )
            self.run.reporter.event(f"set permissions of {change.label} ({change.prefix})")
            changed.append(change.label)
        return attrs.evolve(result, permissions_changed=tuple(changed))
