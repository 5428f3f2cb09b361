"""One apply at a time per install root: an advisory lock under ``.reconcile/``."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reconcile.errors import ApplyError


def state_dir(root: Path) -> Path:
    """``<root>/.reconcile``: records, staging and the lock."""
    return root / ".reconcile"


@contextmanager
def install_root_lock(root: Path) -> Iterator[None]:
    """Hold the install root's lock; fail at once (not wait) if another run holds it."""
    state = state_dir(root)
    state.mkdir(parents=True, exist_ok=True)
    fd = os.open(state / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise ApplyError(
                f"another reconcile apply is running on {root}",
                hint="wait for it to finish; the lock is released when that process exits",
                reference="install-root-locked",
            ) from exc
        yield
    finally:
        os.close(fd)
