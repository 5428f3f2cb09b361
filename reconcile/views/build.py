"""Build one generation's tree: every file of the view's prefixes, merged at their
projections, as Spack's views merge them.

Like Spack: each prefix's ``.spack`` metadata folder is left out, folders are merged, a
symlink (to a file or a folder) is an entry like a file, and two prefixes with an entry at
one path conflict (refused naming both, unless ``conflicts = "first"``: the spec merged first
keeps it), as does a folder in one where the other has a file (always refused).

How an entry is made (``link``): a symlink to the file in the prefix; a hard link to it; or
a copy. A copy is relocated as Spack's copy views are: a text file's mentions of the
prefixes in the view (and of the install root) are rewritten to their places in the view;
a symlink into a prefix is pointed at the view; a binary (ELF, or anything holding a NUL
byte) is copied as it is, so it still loads its libraries from the prefixes, which every
kept generation keeps from removal.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import attrs

from reconcile.errors import ReconcileError
from reconcile.path_globs import IgnoreRules
from reconcile.relocate.prefix_map import PrefixMap, ordered_prefix_map
from reconcile.relocate.text import TextRelocator
from reconcile.reprs import fields_repr
from reconcile.views.contents import ViewContents, ViewSpec

METADATA_FOLDER = ".spack"  # Spack's per-prefix metadata: never merged into a view
CONFLICTS_SHOWN = 10
_TEXT_PROBE = 8192


class ViewConflictError(ReconcileError):
    reference = "view-conflict"


@attrs.frozen(kw_only=True)
class _Entry:
    __repr__ = fields_repr

    spec: ViewSpec
    source: Path  # the file, symlink or folder in the prefix


@attrs.define
class _Merge:
    """Where every entry goes (view-relative path -> entry), folders to make, conflicts."""

    __repr__ = fields_repr

    files: dict[str, _Entry] = attrs.Factory(dict)
    folders: dict[str, ViewSpec] = attrs.Factory(dict)
    conflicts: list[str] = attrs.Factory(list)
    fatal: list[str] = attrs.Factory(list)


def _join(*parts: str) -> str:
    return "/".join(part for part in parts if part)


def _walk(spec: ViewSpec, ignore: IgnoreRules, merge: _Merge, policy: str) -> None:
    prefix = Path(spec.prefix)
    if not prefix.is_dir() or prefix.is_symlink():
        raise ReconcileError(
            f"cannot build the view: the prefix of {spec.label} ({spec.prefix}) is missing",
            hint="run 'reconcile apply' to install it again",
            reference="view-prefix-missing",
        )
    parts = Path(spec.projection).parts if spec.projection else ()
    for depth in range(1, len(parts) + 1):  # the projection's own folders
        _add_folder(merge, "/".join(parts[:depth]), spec)
    for dirpath, dirnames, filenames in os.walk(prefix):
        here = Path(dirpath)
        relative = here.relative_to(prefix).as_posix()
        relative = "" if relative == "." else relative
        if not relative and METADATA_FOLDER in dirnames:
            dirnames.remove(METADATA_FOLDER)
        dirnames.sort()
        for name in list(dirnames):
            inside = _join(relative, name)
            if ignore.ignores(inside):
                dirnames.remove(name)
            elif (here / name).is_symlink():  # a link to a folder: an entry, not descended
                dirnames.remove(name)
                filenames.append(name)
            else:
                _add_folder(merge, _join(spec.projection, inside), spec)
        for name in sorted(filenames):
            inside = _join(relative, name)
            if not relative and name == METADATA_FOLDER:
                continue
            if ignore.ignores(inside):
                continue
            entry = _Entry(spec=spec, source=here / name)
            _add_file(merge, _join(spec.projection, inside), entry, policy)


def _add_folder(merge: _Merge, target: str, spec: ViewSpec) -> None:
    if not target:
        return
    if target in merge.files:
        other = merge.files[target].spec
        merge.fatal.append(f"{target} is a folder in {spec.prefix} but a file in {other.prefix}")
        return
    merge.folders.setdefault(target, spec)


def _add_file(merge: _Merge, target: str, entry: _Entry, policy: str) -> None:
    if target in merge.folders:
        other = merge.folders[target]
        merge.fatal.append(
            f"{target} is a file in {entry.spec.prefix} but a folder in {other.prefix}"
        )
    elif target in merge.files:
        first = merge.files[target].spec
        if policy != "first":
            merge.conflicts.append(f"{target} is in both {first.prefix} and {entry.spec.prefix}")
    else:
        merge.files[target] = entry


def plan_merge(contents: ViewContents) -> _Merge:
    """Where each file goes; ``ViewConflictError`` naming both prefixes of each conflict."""
    merge = _Merge()
    ignore = IgnoreRules(contents.exclude)
    for spec in contents.specs:
        _walk(spec, ignore, merge, contents.conflicts)
    problems = merge.fatal + merge.conflicts
    if problems:
        shown = "\n    ".join(problems[:CONFLICTS_SHOWN])
        more = len(problems) - CONFLICTS_SHOWN
        tail = f"\n    ... and {more} more" if more > 0 else ""
        hint = (
            'keep the first spec\'s file with conflicts = "first", leave paths out with '
            "exclude, or give the specs their own projections"
            if not merge.fatal
            else "give the specs their own projections, or leave the paths out with exclude"
        )
        raise ViewConflictError(
            f"{len(problems)} path(s) of the view would come from two prefixes:\n    {shown}{tail}",
            hint=hint,
        )
    return merge


def _is_binary(head: bytes) -> bool:
    return head.startswith(b"\x7fELF") or b"\0" in head


def _copy(source: Path, target: Path, relocation: PrefixMap, text: TextRelocator) -> None:
    status = source.lstat()
    if stat.S_ISLNK(status.st_mode):
        link = str(source.readlink())
        target.symlink_to(relocation.relocate_path(link) or link)
        return
    if not stat.S_ISREG(status.st_mode):
        return  # FIFOs and devices have no place in a view
    data = source.read_bytes()
    if not _is_binary(data[:_TEXT_PROBE]):
        data = text.relocate_bytes(data)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as stream:
        stream.write(data)
    target.chmod(stat.S_IMODE(status.st_mode))
    os.utime(target, ns=(status.st_atime_ns, status.st_mtime_ns), follow_symlinks=False)


def _link(kind: str, source: Path, target: Path) -> None:
    if kind == "symlink":
        target.symlink_to(source)
        return
    if source.is_symlink():  # a hard link to a symlink would be the link's own inode
        target.symlink_to(source.readlink())
        return
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise ReconcileError(
                f"cannot hard-link {source} into the view: {exc.strerror} (a hard link needs "
                "the view and the install root on one filesystem, and files you may link)",
                hint='use link = "symlink" or link = "copy" for this view',
                reference="view-link-failed",
            ) from None
        raise


def build_tree(tree: Path, contents: ViewContents, *, view_path: Path, install_root: str) -> int:
    """Fill the empty folder ``tree`` with the view; the number of entries made."""
    merge = plan_merge(contents)
    for folder in sorted(merge.folders):
        (tree / folder).mkdir()
    relocation = ordered_prefix_map(
        [
            *((spec.prefix, str(view_path / spec.projection)) for spec in contents.specs),
            (install_root, str(view_path)),
        ]
    )
    text = TextRelocator.for_map(relocation)
    for relative, entry in merge.files.items():
        target = tree / relative
        if contents.link == "copy":
            _copy(entry.source, target, relocation, text)
        else:
            _link(contents.link, entry.source, target)
    return len(merge.files)
