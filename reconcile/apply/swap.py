"""Swapping a repaired prefix in for a drifted one, atomically, and finishing (or undoing)
a swap a crash interrupted.

On Linux, ``renameat2(RENAME_EXCHANGE)`` exchanges the two folders in one step: the prefix
is always whole, old or new. Where the filesystem cannot (NFS, other kernels) the old
prefix is renamed aside into ``.reconcile/trash/`` and the new one renamed in; between the
two renames the prefix is missing. Either way a journal entry (``state/journal.py``) is
written first, so the next run that holds the lock knows which of the two folders is the
replacement (by its inode) and finishes the swap, or undoes it.
"""

from __future__ import annotations

import errno
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconcile.faults import crash_point
from reconcile.safe_fs import remove_tree_at
from reconcile.state.journal import SwapEntry, read_entries, remove_entry, write_entry
from reconcile.state.leftovers import temp_name
from reconcile.state.lock import state_dir
from reconcile.state.records import write_record

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
# errors that mean "this kernel or filesystem cannot exchange": fall back to two renames
_CANNOT_EXCHANGE = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM}


def trash_dir(root: Path) -> Path:
    """Where old prefixes wait to be deleted; a later run clears what an ended run left."""
    return state_dir(root) / "trash"


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes.util  # here: a no-op apply only looks for interrupted swaps

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function: Any = libc.renameat2
    except (OSError, AttributeError):  # no libc, or a glibc older than 2.28
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    function.argtypes += [ctypes.c_uint]
    function.restype = ctypes.c_int
    checked: Callable[..., int] = function
    return checked


def exchange(first: Path, second: Path) -> bool:
    """Exchange two paths in one atomic step; False when the system cannot (nothing moved)."""
    if os.environ.get("RECONCILE_NO_EXCHANGE"):  # tests of the fallback
        return False
    function = _renameat2()
    if function is None:
        return False
    result = function(
        _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
    )
    if result == 0:
        return True
    import ctypes  # loaded by _renameat2 already

    code = ctypes.get_errno()
    if code in _CANNOT_EXCHANGE:
        return False
    raise OSError(code, os.strerror(code), str(first), None, str(second))


def remove_folder(path: Path) -> None:
    """Delete ``path`` and all it holds, never following a link."""
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        remove_tree_at(fd, path.name)
    finally:
        os.close(fd)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


def swap_in(root: Path, entry_hash: str, entry: SwapEntry) -> None:
    """Put ``entry.staged`` at ``entry.prefix`` (which exists), write the record, delete the
    old prefix. Interrupted anywhere, ``finish_swaps`` completes it or undoes it."""
    staged, prefix, aside = Path(entry.staged), Path(entry.prefix), Path(entry.aside)
    aside.parent.mkdir(parents=True, exist_ok=True)
    journal = write_entry(root, entry_hash, entry)
    crash_point("repair-journaled")
    if exchange(staged, prefix):
        crash_point("repair-swapped")
        old = staged
    else:
        prefix.rename(aside)
        crash_point("repair-aside")
        staged.rename(prefix)
        old = aside
    write_record(root, entry.record)
    remove_folder(old)
    remove_entry(journal)


def aside_path(root: Path, dag_hash: str) -> Path:
    """A name in the trash that a later run can tell is this run's (and clear if it ended)."""
    return trash_dir(root) / temp_name(dag_hash)


def finish_swaps(root: Path) -> list[Path]:
    """Under the install root's lock: finish or undo each swap the journal names; returns
    the prefixes concerned."""
    done: list[Path] = []
    for path, entry in read_entries(root):
        if entry is None:
            remove_entry(path)  # unreadable: the swap never started (it is written first)
            continue
        prefix, staged, aside = Path(entry.prefix), Path(entry.staged), Path(entry.aside)
        if _identity(prefix) is None:
            if _identity(staged) == entry.replacement:
                staged.rename(prefix)  # crashed between the two renames: finish
            elif _identity(aside) is not None:
                aside.rename(prefix)  # the replacement is gone: put the old prefix back
                remove_entry(path)
                done.append(prefix)
                continue
        if _identity(prefix) == entry.replacement:
            write_record(root, entry.record)
            for old in (staged, aside):
                if _identity(old) is not None:
                    remove_folder(old)
            done.append(prefix)
        elif _identity(staged) is not None:
            remove_folder(staged)  # never swapped: the drifted prefix is still there
            done.append(prefix)
        remove_entry(path)
    return done
