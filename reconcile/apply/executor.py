"""The executor: the only part of reconcile that changes the install tree.

It runs a plan in two stages, so that every check passes before anything is committed:

1. for every spec, in parallel up to ``jobs``: obtain the tarball (a cache root's verified
   blob, or a download checked against the signed checksum), unpack it into a private
   staging folder under ``<root>/.reconcile/staging`` checking every archive rule, relocate
   it (every final prefix is known from the plan, so no spec waits for another), check its
   symlinks, set permissions, and scan it for its install record;
2. commit, dependencies first: write each install record, then rename the staged prefix to
   its final name; then apply permission changes to prefixes installed earlier.

A failure in stage 1 leaves the install tree as it was (folders the run created included).
An interruption at any point leaves no prefix half-installed under its final name: a record
without its prefix is reinstalled by the next apply.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import attrs

from reconcile.apply.events import Reporter
from reconcile.apply.faults import crash_point
from reconcile.apply.fetch import Obtained, keep_in_cache, obtain_tarball
from reconcile.apply.leftovers import clear_leftovers, clear_leftovers_when_idle
from reconcile.apply.sources import apply_sources
from reconcile.apply.sync import copy_spec, write_index
from reconcile.archive.unpack import check_symlinks, unpack_package
from reconcile.archive.writer import restore_directory_modes
from reconcile.buildcache.pinned_keys import trust_policy
from reconcile.buildcache.writer_v2 import publish_key_v2
from reconcile.buildcache.writer_v3 import publish_key_v3
from reconcile.cache.store import BlobCache
from reconcile.errors import ApplyError, ReconcileError
from reconcile.manifest.model import ManifestFile
from reconcile.pause import pause_point
from reconcile.permissions import apply_permissions, describe_permissions, resolve_group
from reconcile.plan.model import InstallAction, PermissionsAction, Plan, PublishAction
from reconcile.publish.prefix import changed_entries, publish_prefix
from reconcile.relocate.package import relocate_package
from reconcile.relocate.prefix_map import build_prefix_map
from reconcile.state.leftovers import run_folder_name
from reconcile.state.lock import install_root_lock, state_dir
from reconcile.state.records import (
    InstallRecord,
    read_record,
    scan_prefix,
    utc_timestamp,
    write_record,
)
from reconcile.transport.file import url_to_path
from reconcile.transport.registry import TransportPool
from reconcile.trust.policy import TrustPolicy
from reconcile.trust.sign import GpgSigner


@attrs.frozen(kw_only=True)
class SpecSource:
    """Where one installed spec's tarball came from."""

    label: str
    mirror: str  # the mirror it was (or would have been) downloaded from
    from_cache: bool
    bytes: int


@attrs.frozen(kw_only=True)
class ApplyResult:
    installed: tuple[str, ...]  # labels, in commit order
    bytes_fetched: int  # tarball bytes downloaded from mirrors
    permissions_changed: tuple[str, ...] = ()
    published: tuple[str, ...] = ()  # "label -> mirror"
    mirrors_fixed: tuple[str, ...] = ()  # mirrors whose permissions were enforced
    synced: tuple[str, ...] = ()  # "label -> mirror"
    sources_fetched: int = 0  # source archives downloaded into source mirrors
    sources_linked: int = 0
    sources: tuple[SpecSource, ...] = ()
    # bytes received from each mirror by the pool (metadata included: plan and apply), and
    # tarball bytes each mirror did not have to send because a cache root had them
    bytes_by_mirror: dict[str, int] = attrs.field(factory=dict)
    cache_bytes_by_mirror: dict[str, int] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class _Staged:
    action: InstallAction
    prefix_dir: Path
    record: InstallRecord
    obtained: Obtained


# Gives the signer for a key fingerprint (from the signing keystore) when publishing.
SignerFor = Callable[[str], GpgSigner]


@attrs.frozen(kw_only=True)
class ApplySettings:
    jobs: int = 1
    cache: BlobCache | None = None
    signer_for: SignerFor | None = None
    trust: TrustPolicy | None = None  # the run's trust policy; None: one made for the syncs


class _CancelledError(Exception):
    """Another spec of the run failed: do not start this one."""


def _missing_folders(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, outermost first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return list(reversed(missing))


class _Run:
    """One apply of one plan, holding the install root's lock."""

    def __init__(
        self,
        plan: Plan,
        manifest_file: ManifestFile,
        pool: TransportPool,
        reporter: Reporter,
        settings: ApplySettings,
    ) -> None:
        self.plan = plan
        self.root = manifest_file.install_root()
        self.pool = pool
        self.reporter = reporter
        self.settings = settings
        install = manifest_file.manifest.install
        self.permissions = install.permissions if install is not None else None
        group = self.permissions.group if self.permissions else None
        self.gid = resolve_group(group) if group else None
        self.committed = False
        self.cancel = threading.Event()
        self.run_dir = self.root  # set in execute()

    # -- stage 1 ----------------------------------------------------------------------------
    def _prepare(self, number: int, action: InstallAction) -> _Staged:
        if self.cancel.is_set():
            raise _CancelledError
        workdir = self.run_dir / f"spec-{number}"
        workdir.mkdir()
        try:
            obtained = obtain_tarball(
                action, workdir, self.pool, self.settings.cache, self.reporter
            )
            crash_point("after-download")
            staged = self._stage(action, obtained, workdir / "unpack")
        except ReconcileError as exc:
            raise exc.add_context(
                f"cannot install {action.label} from mirror '{action.mirror}' "
                f"({action.tarball_url})"
            ) from None
        keep_in_cache(action, obtained, self.settings.cache)
        obtained.path.unlink(missing_ok=True)  # staged (the cache keeps its own copy)
        self.reporter.event(f"staged {action.label} (unpacked, relocated, checked)")
        crash_point("mid-unpack")
        return staged

    def _stage(self, action: InstallAction, obtained: Obtained, workdir: Path) -> _Staged:
        # Folder modes are restored after relocation, so a read-only folder in the archive
        # cannot stop a file in it from being rewritten.
        unpacked = unpack_package(obtained.path, workdir, dag_hash=action.hash, restore_modes=False)
        prefix_map = build_prefix_map(
            unpacked.build_info,
            own_hash=action.hash,
            new_prefixes=self.plan.prefixes,
            new_root=self.plan.install_root,
        )
        relocate_package(unpacked.prefix_dir, unpacked.build_info, prefix_map)
        check_symlinks(
            unpacked.prefix_dir,
            final_prefix=action.prefix,
            allowed_prefixes=action.allowed_link_targets,
        )
        restore_directory_modes(unpacked.prefix_dir, unpacked.directory_modes)
        if self.permissions is not None:
            apply_permissions(unpacked.prefix_dir, self.permissions, gid=self.gid)
        record = InstallRecord(
            hash=action.hash,
            name=action.name,
            version=action.version,
            prefix=action.prefix,
            spec=action.spec,
            mirror=obtained.mirror,
            mirror_url=self.pool.shown_url(obtained.mirror) or action.mirror_url,
            tarball_sha256=action.tarball_sha256,
            signer=action.signer,
            installed_at=utc_timestamp(),
            permissions=describe_permissions(self.permissions, self.gid),
            externals=action.externals,
            entries=scan_prefix(unpacked.prefix_dir),
        )
        return _Staged(
            action=action, prefix_dir=unpacked.prefix_dir, record=record, obtained=obtained
        )

    def _prepare_all(self) -> list[_Staged]:
        installs = self.plan.installs
        futures: list[Future[_Staged]] = []
        with ThreadPoolExecutor(max_workers=max(1, self.settings.jobs)) as workers:
            for number, action in enumerate(installs):
                future = workers.submit(self._prepare, number, action)
                future.add_done_callback(
                    lambda f: self.cancel.set() if f.exception() is not None else None
                )
                futures.append(future)
        # every worker has finished; report the first failure in plan order
        for future in futures:
            error = future.exception()
            if error is not None and not isinstance(error, _CancelledError):
                raise error
        return [future.result() for future in futures]

    # -- stage 2 ----------------------------------------------------------------------------
    def _commit(self, staged: list[_Staged]) -> list[str]:
        taken = [s.action.prefix for s in staged if os.path.lexists(s.action.prefix)]
        if taken:
            raise ApplyError(
                "these prefixes appeared on disk since the plan was made: " + ", ".join(taken),
                hint="another process is writing into the install root; run plan again",
            )
        installed = []
        for item in staged:
            crash_point("before-rename")
            self.committed = True
            final = Path(item.action.prefix)
            final.parent.mkdir(parents=True, exist_ok=True)
            write_record(self.root, item.record)
            item.prefix_dir.rename(final)
            installed.append(item.action.label)
            self.reporter.event(f"installed {item.action.label} at {final}")
            crash_point("after-first-rename")
        return installed

    def _change_permissions(self, change: PermissionsAction) -> None:
        """Apply the manifest's permissions to an installed prefix, then rewrite its record.
        Interrupted, the record still names the old permissions, so the next plan asks for
        the change again."""
        self.committed = True
        record = read_record(self.root, change.hash)
        if record is None or self.permissions is None:
            raise ApplyError(
                f"cannot change permissions of {change.label}: its install record is gone",
                hint="run plan again",
            )
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
        self.reporter.event(f"set permissions of {change.label} ({change.prefix})")

    def execute(self) -> ApplyResult:
        staging = state_dir(self.root) / "staging"
        cleared = clear_leftovers(self.root, self.settings.cache)
        if cleared:
            self.reporter.event(f"removed {len(cleared)} leftover(s) of interrupted runs")
        self.run_dir = staging / run_folder_name()
        self.run_dir.mkdir(parents=True, mode=0o700)  # its tarball copies are private
        try:
            staged = self._prepare_all()
            installed = self._commit(staged)
            pause_point("after-commit")
            changed = []
            for change in self.plan.permission_changes:
                self._change_permissions(change)
                changed.append(change.label)
            published = [self._publish(action) for action in self.plan.publications]
        finally:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        return attrs.evolve(self._result(staged, installed, changed), published=tuple(published))

    def _publish(self, action: PublishAction) -> str:
        """Write an installed prefix to a mirror, refusing one that changed since it was
        installed (what is published must be what was verified)."""
        self.committed = True
        record = read_record(self.root, action.hash)
        prefix = Path(action.prefix)
        if record is None:
            raise ApplyError(
                f"cannot publish {action.label}: it has no install record",
                hint="install it with reconcile first (add it to install.specs)",
            )
        changed = changed_entries(record, scan_prefix(prefix))
        if changed:
            raise ApplyError(
                f"refusing to publish {action.label}: {prefix} changed since it was installed "
                f"({len(changed)} difference{'s' if len(changed) != 1 else ''}, e.g. "
                f"{', '.join(changed[:3])})",
                hint="reinstall it (remove the prefix and its record, then apply) and publish "
                "again",
                reference="prefix-drifted",
            )
        signer = None
        if action.fingerprint is not None:
            if self.settings.signer_for is None:
                raise ApplyError(f"no signing keystore to sign {action.label} with")
            signer = self.settings.signer_for(action.fingerprint)
        mirror_root = url_to_path(self.pool.unmask(action.mirror, action.mirror_url))
        publish_prefix(
            mirror_root,
            prefix=prefix,
            layout=action.layout,
            buildpath=action.buildpath,
            hash_to_prefix=action.hash_to_prefix,
            signer=signer,
        )
        self.reporter.event(f"published {action.label} to mirror '{action.mirror}'")
        return f"{action.label} -> {action.mirror}"

    def _result(
        self,
        staged: list[_Staged],
        installed: list[str],
        changed: list[str],
    ) -> ApplyResult:
        from_cache: dict[str, int] = {}
        for item in staged:
            if item.obtained.from_cache:
                mirror = item.obtained.mirror
                from_cache[mirror] = from_cache.get(mirror, 0) + item.action.tarball_bytes
        return ApplyResult(
            installed=tuple(installed),
            permissions_changed=tuple(changed),
            bytes_fetched=sum(s.obtained.downloaded for s in staged),
            sources=tuple(
                SpecSource(
                    label=s.action.label,
                    mirror=s.obtained.mirror,
                    from_cache=s.obtained.from_cache,
                    bytes=s.action.tarball_bytes,
                )
                for s in staged
            ),
            bytes_by_mirror=self.pool.bytes_by_mirror(),
            cache_bytes_by_mirror=from_cache,
        )


def apply_plan(
    plan: Plan,
    manifest_file: ManifestFile,
    pool: TransportPool,
    reporter: Reporter,
    settings: ApplySettings | None = None,
) -> ApplyResult:
    """Carry out ``plan``; all or nothing up to the commit stage.

    When it fails before committing anything, it also removes, still holding the lock, the
    folders it created (the install root included) and the ``.reconcile`` state folder if
    it holds nothing but the lock, so a refused apply leaves the disk as it found it.
    """
    settings = settings or ApplySettings()
    if not plan.touches_install_tree:
        # The install root's lock is not needed; when it is free, clear what crashes left.
        clear_leftovers_when_idle(manifest_file, settings.cache)
    if plan.is_empty:
        return ApplyResult(installed=(), bytes_fetched=0)
    if not plan.touches_install_tree:  # only mirrors to fill or fix: no install root needed
        done = ApplyResult(installed=(), bytes_fetched=0)
        done = _apply_syncs(plan, manifest_file, pool, reporter, settings, done)
        done = _apply_sources(plan, pool, reporter, done)
        return _apply_mirror_permissions(plan, manifest_file, reporter, done)
    run = _Run(plan, manifest_file, pool, reporter, settings)
    created = _missing_folders(run.root)
    # Only the lock's folder is made before the lock is held; every removal happens under it,
    # so a run that loses the lock never touches the state of the run that holds it.
    with install_root_lock(run.root) as held:
        try:
            result = run.execute()
        except BaseException:
            if not run.committed:
                _remove_empty_staging(run.root)
                held.remove_unused_state(created)
            raise
    done = _apply_syncs(plan, manifest_file, pool, reporter, settings, result)
    done = _apply_sources(plan, pool, reporter, done)
    return _apply_mirror_permissions(plan, manifest_file, reporter, done)


def _apply_syncs(
    plan: Plan,
    manifest_file: ManifestFile,
    pool: TransportPool,
    reporter: Reporter,
    settings: ApplySettings,
    result: ApplyResult,
) -> ApplyResult:
    """Copy specs into the mirrors whose ``specs`` name them, then update their indexes and
    publish the keys their metadata is signed with."""
    if not plan.syncs:
        return result
    trust = settings.trust or trust_policy(manifest_file, read_url=pool.read_bytes)
    pinned = trust.public_keys("gpg")
    copied: list[str] = []
    try:
        for mirror in dict.fromkeys(a.mirror for a in plan.syncs):
            actions = [a for a in plan.syncs if a.mirror == mirror]
            target_root = url_to_path(
                manifest_file.mirror_url(manifest_file.manifest.mirror(mirror))
            )
            target_root.mkdir(parents=True, exist_ok=True)
            signer = None
            fingerprint = actions[0].fingerprint
            if fingerprint is not None:
                if settings.signer_for is None:
                    raise ApplyError(f"no signing keystore to re-sign specs for mirror '{mirror}'")
                signer = settings.signer_for(fingerprint)
            nodes = []
            workdir = Path(tempfile.mkdtemp(prefix=".reconcile-sync-", dir=target_root))
            try:
                for action in actions:
                    nodes += copy_spec(
                        action,
                        pool=pool,
                        trust=trust,
                        signer=signer,
                        target_root=target_root,
                        workdir=workdir,
                    )
                    reporter.event(
                        f"synced {action.label} to mirror '{mirror}' from '{action.source}'"
                    )
                    copied.append(f"{action.label} -> {mirror}")
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            layout = actions[0].layout
            write_index(target_root, layout, nodes, copied={a.hash for a in actions})
            keys = [signer.public_key()] if signer is not None else list(pinned.values())
            for armored in keys:
                (publish_key_v2 if layout == 2 else publish_key_v3)(target_root, armored)
    finally:
        if settings.trust is None:
            trust.close()
    return attrs.evolve(result, synced=tuple(copied))


def _apply_mirror_permissions(
    plan: Plan, manifest_file: ManifestFile, reporter: Reporter, result: ApplyResult
) -> ApplyResult:
    """Last: what this apply wrote into a mirror gets the mirror's permissions too."""
    fixed = []
    for action in plan.mirror_permission_changes:
        permissions = manifest_file.manifest.mirror(action.mirror).permissions
        assert permissions is not None
        gid = resolve_group(permissions.group) if permissions.group else None
        apply_permissions(Path(action.root), permissions, gid=gid)
        reporter.event(f"set permissions of mirror '{action.mirror}' ({action.root})")
        fixed.append(action.mirror)
    return attrs.evolve(result, mirrors_fixed=tuple(fixed)) if fixed else result


def _apply_sources(
    plan: Plan, pool: TransportPool, reporter: Reporter, result: ApplyResult
) -> ApplyResult:
    """Fill the source mirrors (after the install tree: a source problem never holds back
    binaries that verified)."""
    if not plan.source_actions:
        return result
    done = apply_sources(plan.source_actions, read=pool, reporter=reporter)
    return attrs.evolve(
        result,
        sources_fetched=done.fetched,
        sources_linked=done.linked,
        bytes_fetched=result.bytes_fetched + done.bytes_fetched,
    )


def _remove_empty_staging(root: Path) -> None:
    staging = state_dir(root) / "staging"
    if staging.is_dir() and not any(staging.iterdir()):
        staging.rmdir()
