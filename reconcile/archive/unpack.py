"""Safe unpacking of a Spack ``.spack`` tarball (layout v2 tarball format) into staging.

The tarball is read once, front to back. Each member is checked as it arrives
(``rules.MemberTable.admit``) and written at once (``placement``: straight into
``staging/prefix`` when the prefix shows early, as in Spack's tarballs, else below
``staging/members`` under its archive name); the checks that need the package prefix run at
the end (``MemberTable.finish``), because Spack writes ``.spack/binary_distribution``, which
marks the prefix, last. Then the prefix folder gets its final name, if it does not have it
yet, and any empty parent folders are removed: nothing is extracted twice or copied.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import attrs
import yaml

from reconcile.archive import violation as rules
from reconcile.archive.budget import UnpackBudget
from reconcile.archive.names import Parts, display, shortened
from reconcile.archive.placement import Placement
from reconcile.archive.reader import READ_ERRORS, open_tar
from reconcile.archive.rules import DirectoryMode, Kind, Layout, MemberTable
from reconcile.archive.symlink_check import check_symlinks
from reconcile.archive.violation import ArchiveRuleError
from reconcile.archive.writer import SafeTree, restore_directory_modes
from reconcile.buildcache.build_info import BuildInfo, parse_build_info
from reconcile.errors import ApplyError, ArchiveError
from reconcile.folders import process_umask
from reconcile.limits import DEFAULT_LIMITS, Limits, describe_bytes
from reconcile.reprs import fields_repr

__all__ = [
    "DirectoryMode",
    "UnpackedPackage",
    "check_symlinks",
    "restore_directory_modes",
    "unpack_package",
]

PREFIX_FOLDER = "prefix"


@attrs.frozen(kw_only=True)
class UnpackedPackage:
    __repr__ = fields_repr

    prefix_dir: Path  # the package prefix, inside staging
    build_info: BuildInfo
    member_prefix: str  # the prefix as named in the archive, without the leading "/"
    # The folders' final modes, when unpack_package was asked to leave them for later
    # (``restore_directory_modes(prefix_dir, directory_modes)`` after relocation); else ().
    directory_modes: tuple[DirectoryMode, ...] = ()
    # With ``hash_files``: size and sha256 of every regular file of the prefix, by its path
    # relative to the prefix, computed from the bytes as they were written.
    file_hashes: dict[str, tuple[int, str]] = attrs.field(factory=dict)


def unpack_package(
    tarball: Path,
    staging: Path,
    *,
    data: bytes | None = None,
    dag_hash: str | None = None,
    restore_modes: bool = True,
    guess_prefix: bool = True,
    signed_size: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    hash_files: bool = False,
) -> UnpackedPackage:
    """Unpack ``tarball`` into ``staging`` (an empty folder on the install root's filesystem).

    Enforces every archive rule of DESIGN.md while streaming; raises ``ArchiveError`` naming
    the member and the rule on the first violation (staging is then the caller's to delete).
    The prefix ends up in ``staging/prefix``. With ``restore_modes=False`` its folders stay
    ``0o700`` (so relocation can write anywhere) and the result lists the modes to restore.
    ``guess_prefix=False`` writes every member under its archive name first (the reference
    layout the tests compare the guessing one with; the outcome is the same).
    ``signed_size`` (the tarball's size in signed metadata) and ``limits`` bound the work:
    unpacked bytes, members and depth (``budget``). ``data``, when given, is the tarball's
    content already read (and verified) by the caller; ``tarball`` then only names it.
    ``hash_files`` hashes each regular file while writing it (``file_hashes``), so that the
    install record need not read it again.
    """
    tarball, staging = Path(tarball), Path(staging)
    _prepare_staging(staging)
    prefix_dir = staging / PREFIX_FOLDER
    member = ""
    hashes: dict[Parts, tuple[int, str]] | None = {} if hash_files else None
    try:
        with SafeTree(staging, umask=process_umask()) as tree:
            table = MemberTable()
            budget = UnpackBudget(signed_size=signed_size, limits=limits)
            placement = Placement(
                tree, prefix_name=PREFIX_FOLDER, dag_hash=dag_hash, guess=guess_prefix
            )
            with open_tar(
                tarball if data is None else data, charge=budget.charge_unwritten
            ) as archive:
                for info in archive.members():
                    member = info.name
                    admission = table.admit(info)
                    budget.charge(info)
                    contents: Callable[[], Iterable[bytes | memoryview]] = archive.data
                    if hashes is not None:
                        contents = _hashing(admission.kind, admission.parts, contents, hashes)
                        if admission.kind is Kind.HARD_LINK and admission.hard_link_to in hashes:
                            hashes[admission.parts] = hashes[admission.hard_link_to]
                    placement.create(admission, contents)
                member = ""
                archive.check_end(budget.charge_unwritten)
            layout = table.finish()
            placement.settle(layout)
            build_info = _read_build_info(
                tree, placement, layout, dag_hash, limit=limits.max_metadata_bytes
            )
            placement.finish(layout)
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
        file_hashes=_below(layout.prefix, hashes or {}),
    )


def _hashing(
    kind: Kind,
    parts: Parts,
    data: Callable[[], Iterable[bytes | memoryview]],
    into: dict[Parts, tuple[int, str]],
) -> Callable[[], Iterable[bytes | memoryview]]:
    """``data``, hashed on its way to the file when it is a regular file's."""
    if kind is not Kind.FILE:
        return data

    def pieces() -> Iterator[bytes | memoryview]:
        digest, size = hashlib.sha256(), 0
        for piece in data():
            digest.update(piece)
            size += len(piece)
            yield piece
        into[parts] = (size, digest.hexdigest())  # only once all of it was written

    return pieces


def _below(prefix: Parts, hashes: dict[Parts, tuple[int, str]]) -> dict[str, tuple[int, str]]:
    """The hashes of the files below ``prefix``, by their path relative to it."""
    depth = len(prefix)
    return {
        "/".join(parts[depth:]): hashed
        for parts, hashed in hashes.items()
        if len(parts) > depth and parts[:depth] == prefix
    }


def _prepare_staging(staging: Path) -> None:
    staging.mkdir(mode=0o700, exist_ok=True)
    if any(staging.iterdir()):
        raise ValueError(f"staging folder {staging} is not empty")


def _read_build_info(
    tree: SafeTree, placement: Placement, layout: Layout, dag_hash: str | None, *, limit: int
) -> BuildInfo:
    name = display(layout.binary_distribution)
    where = placement.location(layout.binary_distribution)
    assert where is not None  # a file below the prefix, which settle() made sure of
    data = tree.read_file(where, limit=limit)
    if len(data) > limit:
        raise ArchiveRuleError(
            rules.BAD_BINARY_DISTRIBUTION,
            name,
            f"it is larger than {describe_bytes(limit)} ([limits] max_metadata_bytes)",
        )
    try:
        return parse_build_info(data.decode("utf-8"), dag_hash=dag_hash)
    except (ValueError, yaml.YAMLError) as exc:
        raise ArchiveRuleError(
            rules.BAD_BINARY_DISTRIBUTION, name, f"it does not parse: {exc}"
        ) from None


def _refusal(tarball: Path, violation: ArchiveRuleError) -> ArchiveError:
    culprit = f"member {shortened(violation.member)!r}" if violation.member else "the archive"
    return ArchiveError(
        f"refusing to unpack {tarball}: {culprit} breaks rule '{violation.rule}': "
        f"{violation.detail}",
        hint=rules.UNTRUSTED_HINT,
    )
