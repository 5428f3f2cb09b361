"""One apply at a time per install root: a POSIX record lock on ``<root>/.reconcile/lock``.

``fcntl.lockf`` (``F_SETLK`` record locks) is what NFS implements across hosts (lockd on NFSv3,
built into NFSv4), unlike ``flock``, which older NFS clients keep local to one host. Two
rules follow from POSIX semantics:

- closing *any* descriptor of the lock file drops every lock this process holds on it, so a
  process keeps one descriptor per lock file (``_HELD``), and asking who holds a lock the
  process itself holds never opens the file again;
- a lock lives on the file, not the path: ``.reconcile/`` and its ``lock`` file are never
  deleted, not even by a run that created them and failed, so that two runs can never hold
  locks on two different files for one root.

The holder writes who it is into the file (host, pid, user, start time, command), so a run
that waits, ``plan``, ``drift`` and ``reconcile locks`` can say who holds it. They test the
lock with ``F_GETLK`` on a read-only descriptor: they never take it, so they never block an
apply, and a user who may only read the tree can run them.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import struct
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs

from reconcile import safe_fs
from reconcile.errors import ApplyError
from reconcile.folders import folder_mode, make_folders
from reconcile.pause import pause_point
from reconcile.reprs import fields_repr

LOCK_FILE = "lock"
POLL_SECONDS = 0.2
MAX_OWNER_BYTES = 4096
# struct flock on Linux: l_type, l_whence (short), l_start, l_len (off_t), l_pid (pid_t)
_FLOCK = "@hhqqi4x"


def state_dir(root: Path) -> Path:
    """``<root>/.reconcile``: records, staging and the lock."""
    return root / ".reconcile"


def lock_path(root: Path) -> Path:
    return state_dir(root) / LOCK_FILE


@attrs.frozen(kw_only=True)
class LockOwner:
    """Who holds a lock, as its holder wrote it (``pid`` from the kernel when it knows)."""

    __repr__ = fields_repr

    host: str | None = None
    pid: int | None = None
    user: str | None = None
    started: str | None = None
    command: str | None = None

    def describe(self) -> str:
        parts = [f"pid {self.pid}" if self.pid else "a process"]
        if self.host:
            parts.append(f"on {self.host}")
        if self.user:
            parts.append(f"(user {self.user})")
        if self.started:
            parts.append(f"since {self.started}")
        text = " ".join(parts)
        return f"{text}: {self.command}" if self.command else text


def _me() -> LockOwner:
    import getpass  # only a run that takes the lock needs it (and it imports termios)

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    moment = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    return LockOwner(
        host=os.uname().nodename,  # gethostname(), without importing socket
        pid=os.getpid(),
        user=user,
        started=moment.isoformat().replace("+00:00", "Z"),
        command=" ".join(["reconcile", *sys.argv[1:]])[:500],
    )


def _read_owner(fd: int) -> LockOwner:
    try:
        data = os.pread(fd, MAX_OWNER_BYTES, 0)
        document = json.loads(data) if data else {}
    except (OSError, ValueError):
        document = {}
    if not isinstance(document, dict):
        document = {}
    fields = {}
    for name in ("host", "user", "started", "command"):
        value = document.get(name)
        fields[name] = str(value)[:500] if isinstance(value, str) else None
    pid = document.get("pid")
    return LockOwner(pid=pid if type(pid) is int else None, **fields)


def _write_owner(fd: int, owner: LockOwner) -> None:
    data = json.dumps(attrs.asdict(owner), sort_keys=True).encode() + b"\n"
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


# the descriptor of every lock file this process holds a lock on, by path
_HELD: dict[Path, int] = {}


class HeldLock:
    """The install root's lock, held."""

    def __init__(self, root: Path, *, waited: bool = False) -> None:
        self.root = root
        self.waited = waited  # another run held it first: what it did is not in our plan

    def remove_unused_state(self, created: list[Path]) -> None:
        """Kept for callers that undo a failed first run: the state folder and its lock file
        stay (see the module's docstring), so only an empty ``staging`` folder goes."""
        del created
        with contextlib.suppress(OSError):
            (state_dir(self.root) / "staging").rmdir()


def _locked_error(root: Path, owner: LockOwner, waited: float) -> ApplyError:
    waited_text = f" (waited {waited:.0f} s)" if waited >= 1 else ""
    return ApplyError(
        f"another reconcile run holds the lock on {root}{waited_text}: {owner.describe()}",
        hint="wait for it to finish, or give apply --lock-timeout SECONDS to wait for it; the "
        "lock is released when that process exits, even if it is killed",
        reference="install-root-locked",
    )


def _open_lock_file(root: Path) -> int:
    state = state_dir(root)
    make_folders(root)  # the install root, with reconcile's folder mode
    # never through a link planted at .reconcile
    safe_fs.make_folders(root, state, mode=folder_mode())
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
    return os.open(state / LOCK_FILE, flags, 0o644)


@contextmanager
def install_root_lock(
    root: Path, *, timeout: float = 0.0, waiting: Callable[[str], None] | None = None
) -> Iterator[HeldLock]:
    """Hold the install root's lock. When another run holds it, wait up to ``timeout``
    seconds (0: fail at once), telling ``waiting`` once who holds it."""
    path = lock_path(root)
    if path in _HELD:
        # Already held by this process (apply plans and executes under one lock): a second
        # descriptor would drop the lock when closed, so the outer holder keeps it.
        yield HeldLock(root)
        return
    fd = _open_lock_file(root)
    try:
        pause_point("before-lock")
        start = time.monotonic()
        told = contended = False
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:  # EAGAIN or EACCES: held by another process
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                contended = True
            owner = _owner_of(fd)
            waited = time.monotonic() - start
            if waited >= timeout:
                raise _locked_error(root, owner, waited) from None
            if not told and waiting is not None:
                waiting(f"waiting for the lock on {root}, held by {owner.describe()}")
                told = True
            time.sleep(min(POLL_SECONDS, max(0.0, timeout - waited)))
        _HELD[path] = fd
        _write_owner(fd, _me())
        pause_point("after-lock")
        try:
            yield HeldLock(root, waited=contended)
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # nobody holds it: no owner to show
            del _HELD[path]
    finally:
        os.close(fd)  # releases the lock


def _owner_of(fd: int) -> LockOwner:
    """Who holds a lock on the open lock file (written owner, kernel pid)."""
    owner = _read_owner(fd)
    query = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
    try:
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
    except OSError:
        return owner
    kind, _, _, _, pid = struct.unpack(_FLOCK, answer)
    if kind != fcntl.F_UNLCK and pid > 0 and owner.pid is None:
        owner = attrs.evolve(owner, pid=pid)
    return owner


def lock_holder(root: Path) -> LockOwner | None:
    """Who holds the install root's lock, or None when nobody does; takes no lock.

    Needs only read access. A process that holds the lock itself gets its own description.
    """
    path = lock_path(root)
    if path in _HELD:
        return _read_owner(_HELD[path])
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None  # no lock file: no run ever held it
    try:
        query = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        kind, _, _, _, pid = struct.unpack(_FLOCK, fcntl.fcntl(fd, fcntl.F_GETLK, query))
        if kind == fcntl.F_UNLCK:
            return None
        owner = _read_owner(fd)
        return owner if owner.pid is not None else attrs.evolve(owner, pid=pid or None)
    finally:
        os.close(fd)


def wait_until_free(
    root: Path, *, timeout: float, waiting: Callable[[str], None] | None = None
) -> LockOwner | None:
    """Wait up to ``timeout`` seconds for nobody to hold the install root's lock, without
    taking it (``apply`` plans only once a running apply has finished). Returns the holder
    if it still holds the lock when the time is up, None once it is free."""
    start = time.monotonic()
    told = False
    while (owner := lock_holder(root)) is not None:
        waited = time.monotonic() - start
        if waited >= timeout:
            return owner
        if not told and waiting is not None:
            waiting(f"waiting for the lock on {root}, held by {owner.describe()}")
            told = True
        time.sleep(min(POLL_SECONDS, max(0.0, timeout - waited)))
    return None
