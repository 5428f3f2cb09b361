"""One installed prefix against its install record.

Fast mode trusts what ``lstat`` shows: a file whose size and mtime equal the record's is taken
as unchanged; any other file (or a record written before mtimes were kept) is hashed. The
contents mode hashes every file. Symlinks are compared by target and never followed.
"""

from __future__ import annotations

import errno
import os
import stat
import threading

import attrs

from reconcile.hashing import CHUNK, sha256_of_fd
from reconcile.observe.findings import CheckMode, Finding
from reconcile.observe.ignore import IgnoreRules
from reconcile.reprs import fields_repr
from reconcile.state.records import EntryRow, InstallRecord, RecordEntry, record_entry


@attrs.frozen(kw_only=True)
class PrefixComparison:
    __repr__ = fields_repr

    findings: tuple[Finding, ...]
    checked: int


def _kind_of(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    return "special file"


def _lstat_tree(
    prefix: str, top: os.stat_result
) -> tuple[dict[str, os.stat_result], list[tuple[str, OSError]]]:
    """The ``lstat`` of everything in ``prefix`` by relative path (the prefix itself as
    ``.``), and what could not be read, in walk order: one ``scandir`` per folder and one
    ``lstat`` per entry (``DirEntry.stat``), no link followed."""
    seen = {".": top}
    unreadable: list[tuple[str, OSError]] = []
    pending = [(prefix, "")]
    while pending:
        folder, relative_folder = pending.pop()
        try:
            with os.scandir(folder) as listing:
                items = list(listing)
        except OSError as exc:
            unreadable.append((relative_folder.rstrip("/") or ".", exc))
            continue
        for item in items:
            relative = relative_folder + item.name
            try:
                st = item.stat(follow_symlinks=False)
            except OSError as exc:
                unreadable.append((relative, exc))
                continue
            seen[relative] = st
            if stat.S_ISDIR(st.st_mode):
                pending.append((item.path, relative + "/"))
    return seen, unreadable


# Opened only as a regular file, never through a symlink, never blocking: a co-tenant may
# swap a file for a FIFO, a device or a link between the walk and here.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_THREAD = threading.local()  # each auditing thread's read buffer


def _read_buffer() -> bytearray:
    buffer: bytearray | None = getattr(_THREAD, "buffer", None)
    if buffer is None:
        buffer = _THREAD.buffer = bytearray(CHUNK)
    return buffer


def _sha256(path: str) -> str:
    """The sha256 of the regular file at ``path`` (``OSError`` for anything else): one
    descriptor and the thread's own buffer, so that a tree of small files costs little
    more than its system calls."""
    fd = os.open(path, _READ_FLAGS)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        return sha256_of_fd(fd, _read_buffer()).sha256
    finally:
        os.close(fd)


def _content_unchanged(path: str, entry: RecordEntry, st: os.stat_result, mode: CheckMode) -> bool:
    if st.st_size != entry.size:
        return False
    if mode == "fast" and entry.mtime_ns is not None and st.st_mtime_ns == entry.mtime_ns:
        return True
    return _sha256(path) == entry.sha256


def _compare_entry(
    absolute: str, entry: RecordEntry, st: os.stat_result, mode: CheckMode, gid: int | None
) -> list[Finding]:
    found = _kind_of(st.st_mode)
    if found != entry.type:
        return [
            Finding(
                severity="error",
                kind="type",
                path=absolute,
                detail=f"recorded a {entry.type}, found a {found}",
            )
        ]
    findings = []
    if entry.type == "symlink":
        target = os.readlink(absolute)  # noqa: PTH115  (keeps the target exactly)
        if target != entry.target:
            findings.append(
                Finding(
                    severity="error",
                    kind="link-target",
                    path=absolute,
                    detail=f"points to {target!r}, recorded {entry.target!r}",
                )
            )
    elif entry.type == "file":
        try:
            unchanged = _content_unchanged(absolute, entry, st, mode)
        except OSError as exc:
            return [
                Finding(
                    severity="error",
                    kind="unreadable",
                    path=absolute,
                    detail=f"cannot be read to compare ({exc.strerror or exc})",
                )
            ]
        if not unchanged:
            size = (
                ""
                if st.st_size == entry.size
                else f" ({entry.size} bytes recorded, {st.st_size} now)"
            )
            findings.append(
                Finding(
                    severity="error",
                    kind="modified",
                    path=absolute,
                    detail=f"content differs from the installed file{size}",
                )
            )
    if entry.type != "symlink":
        now = stat.S_IMODE(st.st_mode)
        if now != entry.mode:
            findings.append(
                Finding(
                    severity="warning",
                    kind="mode",
                    path=absolute,
                    detail=f"mode {now:04o}, recorded {entry.mode:04o}",
                )
            )
        if gid is not None and st.st_gid != gid:
            findings.append(
                Finding(
                    severity="warning",
                    kind="group",
                    path=absolute,
                    detail=f"group id {st.st_gid}, the manifest's group is {gid}",
                )
            )
    return findings


def _unchanged(row: EntryRow, st: os.stat_result, mode: CheckMode, gid: int | None) -> bool:
    """True when ``_compare_entry`` would find nothing, decided from the ``lstat`` alone: a
    folder, or (fast mode) a file with its recorded mtime, whose type, permission bits, size
    and group are the recorded ones. Anything else (a symlink, whose target is read; a file
    to hash) goes the long way. Most entries of a no-op plan end here, with no entry built."""
    _, kind, permissions, size, _, _, mtime_ns = row
    if gid is not None and st.st_gid != gid:
        return False
    if kind == "dir":
        return st.st_mode == stat.S_IFDIR | permissions  # the type and every mode bit
    return (
        kind == "file"
        and mode == "fast"
        and st.st_mode == stat.S_IFREG | permissions
        and st.st_size == size
        and st.st_mtime_ns == mtime_ns  # never equal to None: no recorded mtime, hashed
    )


def compare_prefix(
    record: InstallRecord, *, mode: CheckMode, ignore: IgnoreRules
) -> PrefixComparison:
    """Every difference between ``record`` and its prefix on disk (read-only)."""
    prefix = record.prefix
    found_gid = (record.permissions or {}).get("gid")
    gid = found_gid if isinstance(found_gid, int) else None
    expected = record.rows_by_path()
    findings: list[Finding] = []
    try:
        top = os.lstat(prefix)
    except OSError as exc:
        return PrefixComparison(
            findings=(
                Finding(
                    severity="error",
                    kind="prefix-missing",
                    path=prefix,
                    detail=f"the prefix is gone ({exc.strerror or exc})",
                ),
            ),
            checked=0,
        )
    if not stat.S_ISDIR(top.st_mode):
        # never walk through it: a link here would make the audit read someone else's tree
        return PrefixComparison(
            findings=(
                Finding(
                    severity="error",
                    kind="type",
                    path=prefix,
                    detail=f"the prefix is a {_kind_of(top.st_mode)}, recorded a folder",
                ),
            ),
            checked=0,
        )
    seen, unreadable = _lstat_tree(prefix, top)
    for relative, error in unreadable:
        findings.append(
            Finding(
                severity="error",
                kind="unreadable",
                path=f"{prefix}/{relative}",
                detail=f"cannot be read ({error.strerror or error}); "
                "what is below it was not checked",
            )
        )
    ignores = ignore.ignores if ignore.patterns else None
    checked = 0
    for relative, row in expected.items():
        if ignores is not None and ignores(relative):
            continue
        st = seen.get(relative)
        if st is not None:
            checked += 1
            if _unchanged(row, st, mode, gid):
                continue
        absolute = prefix if relative == "." else f"{prefix}/{relative}"
        if st is None:
            findings.append(
                Finding(
                    severity="error",
                    kind="missing",
                    path=absolute,
                    detail=f"the recorded {row[1]} is gone",
                )
            )
            continue
        findings.extend(_compare_entry(absolute, record_entry(row), st, mode, gid))
    added: list[str] = []
    for relative in sorted(seen.keys() - expected.keys()):
        if ignores is not None and ignores(relative):
            continue
        if any(relative.startswith(f"{folder}/") for folder in added[-1:]):
            continue  # inside a folder already reported as added
        added.append(relative)
        findings.append(
            Finding(
                severity="warning",
                kind="added",
                path=f"{prefix}/{relative}",
                detail=f"a {_kind_of(seen[relative].st_mode)} reconcile did not install",
            )
        )
    return PrefixComparison(findings=tuple(findings), checked=checked)
