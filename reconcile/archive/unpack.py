"""Safe unpacking of a Spack ``.spack`` tarball (layout v2 tarball format) into staging.

The tarball is read once, front to back. Each member is checked as it arrives
(``rules.MemberTable.admit``) and written below ``staging/members`` under its archive name;
the checks that need the package prefix run at the end (``MemberTable.finish``), because
Spack writes ``.spack/binary_distribution``, which marks the prefix, last. The prefix folder
is then renamed to ``staging/prefix`` and the empty parent folders removed: nothing is
extracted twice or copied.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import attrs
import yaml

from reconcile.archive import violation as rules
from reconcile.archive.names import display
from reconcile.archive.reader import READ_ERRORS, iter_members, member_data, open_stream
from reconcile.archive.rules import Admission, DirectoryMode, Kind, Layout, MemberTable
from reconcile.archive.symlink_check import check_symlinks
from reconcile.archive.violation import ArchiveRuleError
from reconcile.archive.writer import SafeTree, process_umask, restore_directory_modes
from reconcile.buildcache.build_info import BuildInfo, parse_build_info
from reconcile.errors import ApplyError, ArchiveError

__all__ = [
    "DirectoryMode",
    "UnpackedPackage",
    "check_symlinks",
    "restore_directory_modes",
    "unpack_package",
]

PREFIX_FOLDER = "prefix"
MEMBERS_FOLDER = "members"  # the archive's own layout, only while unpacking
# binary_distribution lists files to relocate; even huge packages stay far below this.
BINARY_DISTRIBUTION_LIMIT = 64 << 20


@attrs.frozen(kw_only=True)
class UnpackedPackage:
    prefix_dir: Path  # the package prefix, inside staging
    build_info: BuildInfo
    member_prefix: str  # the prefix as named in the archive, without the leading "/"
    # The folders' final modes, when unpack_package was asked to leave them for later
    # (``restore_directory_modes(prefix_dir, directory_modes)`` after relocation); else ().
    directory_modes: tuple[DirectoryMode, ...] = ()


def unpack_package(
    tarball: Path,
    staging: Path,
    *,
    dag_hash: str | None = None,
    restore_modes: bool = True,
) -> UnpackedPackage:
    """Unpack ``tarball`` into ``staging`` (an empty folder on the install root's filesystem).

    Enforces every archive rule of DESIGN.md while streaming; raises ``ArchiveError`` naming
    the member and the rule on the first violation (staging is then the caller's to delete).
    The prefix ends up in ``staging/prefix``. With ``restore_modes=False`` its folders stay
    ``0o700`` (so relocation can write anywhere) and the result lists the modes to restore.
    """
    tarball, staging = Path(tarball), Path(staging)
    _prepare_staging(staging)
    members_root = staging / MEMBERS_FOLDER
    prefix_dir = staging / PREFIX_FOLDER
    member = ""
    try:
        members_root.mkdir(mode=0o700)
        with SafeTree(members_root, umask=process_umask()) as tree:
            table = MemberTable()
            with open_stream(tarball) as archive:
                for info in iter_members(archive):
                    member = info.name
                    _create(tree, archive, info, table.admit(info))
            member = ""
            layout = table.finish()
            build_info = _read_build_info(tree, layout, dag_hash)
            tree.move_out(layout.prefix, prefix_dir)
            tree.remove_empty_folders(layout.skeleton)
        members_root.rmdir()
        if restore_modes:
            restore_directory_modes(prefix_dir, layout.directories)
    except ArchiveRuleError as violation:
        raise _refusal(tarball, violation) from None
    except READ_ERRORS as exc:
        damaged = ArchiveRuleError(rules.UNREADABLE_ARCHIVE, member, f"the data is damaged ({exc})")
        raise _refusal(tarball, damaged) from None
    except OSError as exc:
        where = f" (member {member!r})" if member else ""
        raise ApplyError(
            f"cannot unpack {tarball} into {staging}{where}: {exc.strerror or exc}"
            + (f": {exc.filename}" if exc.filename else ""),
            hint="check that the staging folder is writable and its filesystem has free space",
        ) from exc
    return UnpackedPackage(
        prefix_dir=prefix_dir,
        build_info=build_info,
        member_prefix=display(layout.prefix),
        directory_modes=() if restore_modes else layout.directories,
    )


def _prepare_staging(staging: Path) -> None:
    staging.mkdir(mode=0o700, exist_ok=True)
    if any(staging.iterdir()):
        raise ValueError(f"staging folder {staging} is not empty")


def _create(
    tree: SafeTree, archive: tarfile.TarFile, info: tarfile.TarInfo, admit: Admission
) -> None:
    for parent in admit.implied_parents:
        tree.make_directory(parent)
    if not admit.create:
        return
    if admit.kind is Kind.DIRECTORY:
        tree.make_directory(admit.parts)
    elif admit.kind is Kind.FILE:
        data = member_data(archive, info)
        tree.write_file(admit.parts, data, mode=admit.mode, mtime_ns=admit.mtime_ns)
    elif admit.kind is Kind.SYMLINK:
        tree.make_symlink(admit.parts, admit.link_target, mtime_ns=admit.mtime_ns)
    elif admit.kind is Kind.HARD_LINK:
        tree.make_hard_link(admit.parts, admit.hard_link_to)


def _read_build_info(tree: SafeTree, layout: Layout, dag_hash: str | None) -> BuildInfo:
    name = display(layout.binary_distribution)
    data = tree.read_file(layout.binary_distribution, limit=BINARY_DISTRIBUTION_LIMIT)
    if len(data) > BINARY_DISTRIBUTION_LIMIT:
        raise ArchiveRuleError(
            rules.BAD_BINARY_DISTRIBUTION,
            name,
            f"it is larger than {BINARY_DISTRIBUTION_LIMIT} bytes",
        )
    try:
        return parse_build_info(data.decode("utf-8"), dag_hash=dag_hash)
    except (ValueError, yaml.YAMLError) as exc:
        raise ArchiveRuleError(
            rules.BAD_BINARY_DISTRIBUTION, name, f"it does not parse: {exc}"
        ) from None


def _refusal(tarball: Path, violation: ArchiveRuleError) -> ArchiveError:
    culprit = f"member {violation.member!r}" if violation.member else "the archive"
    return ArchiveError(
        f"refusing to unpack {tarball}: {culprit} breaks rule '{violation.rule}': "
        f"{violation.detail}",
        hint=rules.UNTRUSTED_HINT,
    )
