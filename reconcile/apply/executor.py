"""The executor: the only part of reconcile that changes the install tree.

It runs a plan in three phases, so that every check passes before anything is committed:

1. fetch every tarball and check it against the verified checksum;
2. unpack each into a private staging folder under ``<root>/.reconcile/staging``, checking
   every archive rule, relocate it, check its symlinks, set permissions, scan it for the record;
3. commit: for each spec, dependencies first, write its install record, then rename the
   staged prefix to its final name.

A failure in phases 1-2 leaves the install tree as it was. An interruption at any point
leaves no prefix half-installed under its final name: a record without its prefix is
reinstalled by the next apply.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

import attrs

from reconcile.apply.faults import crash_point
from reconcile.apply.fetch import fetch_tarball
from reconcile.apply.lock import install_root_lock, state_dir
from reconcile.apply.records import (
    InstallRecord,
    read_record,
    scan_prefix,
    utc_timestamp,
    write_record,
)
from reconcile.archive.unpack import check_symlinks, unpack_package
from reconcile.archive.writer import restore_directory_modes
from reconcile.errors import ApplyError, ReconcileError
from reconcile.manifest.model import ManifestFile, Permissions
from reconcile.permissions import apply_permissions, describe_permissions, resolve_group
from reconcile.plan.model import InstallAction, PermissionsAction, Plan
from reconcile.relocate.package import relocate_package
from reconcile.relocate.prefix_map import build_prefix_map
from reconcile.transport.registry import TransportPool

Report = Callable[[str], None]


@attrs.frozen(kw_only=True)
class ApplyResult:
    installed: tuple[str, ...]  # labels, in commit order
    bytes_fetched: int
    permissions_changed: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class _Staged:
    action: InstallAction
    prefix_dir: Path
    record: InstallRecord


def _clear_stale_staging(staging: Path) -> None:
    """Remove what an interrupted run left behind (we hold the lock, so none is live)."""
    if staging.is_dir():
        for leftover in staging.iterdir():
            shutil.rmtree(leftover, ignore_errors=True)


def _stage(
    action: InstallAction,
    tarball: Path,
    workdir: Path,
    plan: Plan,
    permissions: Permissions | None,
    gid: int | None,
) -> _Staged:
    # Folder modes are restored after relocation, so a read-only folder in the archive
    # cannot stop a file in it from being rewritten.
    unpacked = unpack_package(tarball, workdir, dag_hash=action.hash, restore_modes=False)
    prefix_map = build_prefix_map(
        unpacked.build_info,
        own_hash=action.hash,
        new_prefixes=plan.prefixes,
        new_root=plan.install_root,
    )
    relocate_package(unpacked.prefix_dir, unpacked.build_info, prefix_map)
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
        mirror=action.mirror,
        mirror_url=action.mirror_url,
        tarball_sha256=action.tarball_sha256,
        signer=action.signer,
        installed_at=utc_timestamp(),
        permissions=describe_permissions(permissions, gid),
        externals=action.externals,
        entries=scan_prefix(unpacked.prefix_dir),
    )
    return _Staged(action=action, prefix_dir=unpacked.prefix_dir, record=record)


def _check_targets_free(staged: list[_Staged]) -> None:
    taken = [s.action.prefix for s in staged if os.path.lexists(s.action.prefix)]
    if taken:
        raise ApplyError(
            "these prefixes appeared on disk since the plan was made: " + ", ".join(taken),
            hint="another process is writing into the install root; run plan again",
        )


def _missing_folders(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, outermost first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return list(reversed(missing))


def _remove_if_empty(folders: list[Path]) -> None:
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except FileNotFoundError:
            continue
        except OSError:
            return


def apply_plan(
    plan: Plan, manifest_file: ManifestFile, pool: TransportPool, report: Report
) -> ApplyResult:
    """Carry out ``plan``; all or nothing up to the commit phase.

    When it fails before committing anything, it also removes the folders it created (the
    install root and its ``.reconcile`` state folder included), so a refused apply leaves
    the disk exactly as it found it.
    """
    root = manifest_file.install_root()
    settings = manifest_file.manifest.install
    permissions = settings.permissions if settings is not None else None
    gid = resolve_group(permissions.group) if permissions and permissions.group else None
    if plan.is_empty:
        return ApplyResult(installed=(), bytes_fetched=0)
    created = _missing_folders(state_dir(root))
    root.mkdir(parents=True, exist_ok=True)
    progress = _Progress()
    try:
        with install_root_lock(root):
            staging = state_dir(root) / "staging"
            _clear_stale_staging(staging)
            run_dir = staging / f"run-{os.getpid()}-{secrets.token_hex(4)}"
            (run_dir / "downloads").mkdir(parents=True)
            try:
                return _run(plan, root, run_dir, pool, report, permissions, gid, progress)
            finally:
                shutil.rmtree(run_dir, ignore_errors=True)
    except BaseException:
        if not progress.committed:
            if state_dir(root) in created:
                shutil.rmtree(state_dir(root), ignore_errors=True)
            elif staging_is_empty(root):
                shutil.rmtree(state_dir(root) / "staging", ignore_errors=True)
            _remove_if_empty(created)
        raise


def staging_is_empty(root: Path) -> bool:
    staging = state_dir(root) / "staging"
    return staging.is_dir() and not any(staging.iterdir())


class _Progress:
    """Whether the commit phase has started (after that, nothing is rolled back)."""

    committed = False


def _run(
    plan: Plan,
    root: Path,
    run_dir: Path,
    pool: TransportPool,
    report: Report,
    permissions: Permissions | None,
    gid: int | None,
    progress: _Progress,
) -> ApplyResult:
    tarballs: dict[str, Path] = {}
    fetched = 0
    for action in plan.installs:
        dest = run_dir / "downloads" / f"{action.hash}.spack"
        fetched += fetch_tarball(action, dest, pool)
        tarballs[action.hash] = dest
        report(f"fetched {action.label} ({action.tarball_bytes} bytes, sha256 verified)")
    crash_point("after-download")

    staged: list[_Staged] = []
    for number, action in enumerate(plan.installs):
        workdir = run_dir / f"unpack-{number}"
        try:
            staged.append(_stage(action, tarballs[action.hash], workdir, plan, permissions, gid))
        except ReconcileError as exc:
            raise exc.add_context(
                f"cannot install {action.label} from mirror '{action.mirror}' "
                f"({action.tarball_url})"
            ) from None
        tarballs.pop(action.hash).unlink()
        report(f"staged {action.label} (unpacked, relocated, checked)")
        crash_point("mid-unpack")
    _check_targets_free(staged)

    installed = []
    for item in staged:
        crash_point("before-rename")
        progress.committed = True
        final = Path(item.action.prefix)
        final.parent.mkdir(parents=True, exist_ok=True)
        write_record(root, item.record)
        item.prefix_dir.rename(final)
        installed.append(item.action.label)
        report(f"installed {item.action.label} at {final}")
        crash_point("after-first-rename")
    changed = []
    for change in plan.permission_changes:
        progress.committed = True
        _change_permissions(change, root, permissions, gid)
        changed.append(change.label)
        report(f"set permissions of {change.label} ({change.prefix})")
    return ApplyResult(
        installed=tuple(installed), permissions_changed=tuple(changed), bytes_fetched=fetched
    )


def _change_permissions(
    change: PermissionsAction, root: Path, permissions: Permissions | None, gid: int | None
) -> None:
    """Apply the manifest's permissions to an installed prefix, then rewrite its record
    (modes changed). Interrupted, the record still names the old permissions, so the next
    plan asks for the change again."""
    record = read_record(root, change.hash)
    if record is None or permissions is None:
        raise ApplyError(
            f"cannot change permissions of {change.label}: its install record is gone",
            hint="run plan again",
        )
    prefix = Path(change.prefix)
    apply_permissions(prefix, permissions, gid=gid)
    write_record(
        root,
        attrs.evolve(
            record,
            permissions=describe_permissions(permissions, gid),
            entries=scan_prefix(prefix),
        ),
    )
