"""One apply at a time per install root: an advisory lock under ``.reconcile/``.

Creating ``<root>/.reconcile/`` and its ``lock`` file is the only write made before the lock
is held; everything else in the state folder is created and removed under it. A run that
holds the lock may remove an unused state folder (lock file included), so taking the lock
checks, once ``flock`` succeeds, that the file locked is still the one at the path: if not,
it opens the new one and tries again.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reconcile.errors import ApplyError
from reconcile.pause import pause_point

# Removing an unused state folder and making it again can only race a few times in a row.
LOCK_ATTEMPTS = 20


def state_dir(root: Path) -> Path:
    """``<root>/.reconcile``: records, staging and the lock."""
    return root / ".reconcile"


class HeldLock:
    """The install root's lock, held: what only its holder may do to the state folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def remove_unused_state(self, created: list[Path]) -> None:
        """Remove ``.reconcile/`` when it holds nothing but the lock and empty folders, then
        the folders of ``created`` (the root and its ancestors this run made) that are empty.
        Anything another run put there (a record, a prefix) keeps them all."""
        state = state_dir(self.root)
        try:
            names = {entry.name for entry in state.iterdir()}
        except OSError:
            return
        if not names <= {"lock", "staging", "records"}:
            return
        for name in ("staging", "records"):
            try:
                (state / name).rmdir()
            except FileNotFoundError:
                continue
            except OSError:
                return  # not empty: keep everything
        try:
            (state / "lock").unlink()
            state.rmdir()
        except OSError:
            return
        for folder in reversed(created):
            try:
                folder.rmdir()
            except OSError:
                return


def _still_at(fd: int, path: Path) -> bool:
    """Whether the open file ``fd`` is still the file at ``path``."""
    try:
        at_path = path.lstat()
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (at_path.st_dev, at_path.st_ino)


def _locked_error(root: Path) -> ApplyError:
    return ApplyError(
        f"another reconcile apply is running on {root}",
        hint="wait for it to finish; the lock is released when that process exits",
        reference="install-root-locked",
    )


@contextmanager
def install_root_lock(root: Path) -> Iterator[HeldLock]:
    """Hold the install root's lock; fail at once (not wait) if another run holds it."""
    state = state_dir(root)
    for _ in range(LOCK_ATTEMPTS):
        state.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(state / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:
            continue  # a run that failed removed the unused state folder just now
        try:
            pause_point("before-lock")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise _locked_error(root) from exc
            if not _still_at(fd, state / "lock"):
                continue  # locked a file its holder removed: take the one at the path now
            pause_point("after-lock")
            yield HeldLock(root)
            return
        finally:
            os.close(fd)
    raise _locked_error(root)
