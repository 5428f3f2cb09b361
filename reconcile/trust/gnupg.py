"""Running GnuPG in an isolated home: never the user's keyring, never an agent of theirs.

gpg runs with ``--no-autostart`` unless the command needs secret keys (``agent=True``); the
code that asks for an agent stops it afterwards (``agent_session``, ``AgentLease``), so no
gpg-agent outlives a reconcile command.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote

from reconcile.errors import ReconcileError


def gpg_binary() -> str:
    """The gpg executable: ``$RECONCILE_GPG`` if set, else ``gpg`` (or ``gpg2``) from PATH."""
    configured = os.environ.get("RECONCILE_GPG")
    if configured:
        found = shutil.which(configured)
        if found is None:
            raise ReconcileError(
                f"RECONCILE_GPG names {configured!r}, which is not an executable program",
                hint="point RECONCILE_GPG at gpg (or unset it to use gpg from PATH)",
                reference="gpg-missing",
            )
        return found
    for name in ("gpg", "gpg2"):
        found = shutil.which(name)
        if found:
            return found
    raise ReconcileError(
        "GnuPG is not installed: reconcile needs gpg to verify signed binary caches",
        hint="install it (Debian: apt-get install gnupg) or set RECONCILE_GPG to its path",
        reference="gpg-missing",
    )


_STOP_POLLS, _STOP_POLL_SECONDS = 40, 0.05  # up to 2 s for an agent to exit after KILLAGENT
_SHORT_BASE = 40  # characters; leaves room for rcg-XXXXXXXX/S.gpg-agent.browser in 108


def create_isolated_home() -> Path:
    """A fresh, private GNUPGHOME; the caller removes it with ``remove_isolated_home``."""
    # A short base keeps the agent's socket path under the 108-byte limit of AF_UNIX;
    # mkdtemp makes a unique 0700 folder, so a shared /tmp is safe here. $TMPDIR is used
    # when it is short (tests point it into their own folder to find leftover agents).
    short_base = Path("/tmp")  # noqa: S108
    preferred = tempfile.gettempdir()
    if len(preferred) <= _SHORT_BASE:
        base: str | None = preferred
    else:
        base = str(short_base) if short_base.is_dir() else None
    home = Path(tempfile.mkdtemp(prefix="rcg-", dir=base))
    home.chmod(0o700)
    return home


def remove_isolated_home(home: Path) -> None:
    """Stop any agent started for ``home``, then delete it (safe to call twice)."""
    if not home.exists():
        return
    gpgconf = shutil.which("gpgconf")
    if gpgconf:
        subprocess.run(
            [gpgconf, "--homedir", str(home), "--kill", "all"], capture_output=True, check=False
        )
    shutil.rmtree(home, ignore_errors=True)


@contextmanager
def isolated_home() -> Iterator[Path]:
    """A fresh, private GNUPGHOME that is removed afterwards (agents included)."""
    home = create_isolated_home()
    try:
        yield home
    finally:
        remove_isolated_home(home)


def stop_agent(home: Path) -> None:
    """Stop the gpg-agent that gpg started for ``home`` (it would otherwise outlive us), and
    wait a little for it to go: gpgconf only asks it to."""
    if shutil.which("gpgconf"):
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
            capture_output=True,
            check=False,
        )
        for _ in range(_STOP_POLLS):
            if not agent_running(home):
                return
            time.sleep(_STOP_POLL_SECONDS)


def agent_running(home: Path) -> bool:
    """Whether a gpg-agent (anyone's) answers on ``home``'s socket."""
    gpgconf = shutil.which("gpgconf")
    if gpgconf is None:
        return False
    listed = subprocess.run(
        [gpgconf, "--homedir", str(home), "--list-dirs", "agent-socket"],
        capture_output=True,
        check=False,
    )
    path = unquote(listed.stdout.decode("utf-8", "replace").strip())
    if listed.returncode != 0 or not path:
        return False
    import socket  # here, not at the top: a plan that verifies nothing never probes an agent

    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(path)
        except OSError:
            return False
    return True


@contextmanager
def agent_session(home: Path) -> Iterator[None]:
    """Around gpg commands that need the agent (secret keys): the agent they start is stopped
    afterwards; one that was already running (the user's own) is left alone."""
    running = agent_running(home)
    try:
        yield
    finally:
        if not running:
            stop_agent(home)


class AgentLease:
    """For an object that uses the agent of ``home`` over its lifetime (a signer): stops the
    agent on ``release()``, when the object is collected, or at exit, unless it was already
    running when the lease began."""

    def __init__(self, owner: object, home: Path) -> None:
        running = agent_running(home)
        self._finalizer = weakref.finalize(owner, _stop_unless, home, running)

    def release(self) -> None:
        self._finalizer()


def _stop_unless(home: Path, was_running: bool) -> None:
    if not was_running:
        stop_agent(home)


def run_gpg(
    home: Path, args: Sequence[str], *, stdin: bytes | None = None, agent: bool = False
) -> subprocess.CompletedProcess[bytes]:
    """Run gpg in ``home`` in batch mode; the caller decides what the return code means.
    Without ``agent`` gpg may not start a gpg-agent (public keys and verification need none);
    with it, the caller stops the agent afterwards (``agent_session`` or ``AgentLease``)."""
    command = [
        gpg_binary(),
        "--homedir",
        str(home),
        "--batch",
        "--no-tty",
        "--no-options",
        "--no-auto-key-locate",
        "--no-auto-key-retrieve",
        *(() if agent else ("--no-autostart",)),
        *args,
    ]
    env = {**os.environ, "GNUPGHOME": str(home), "LC_ALL": "C"}
    return subprocess.run(command, input=stdin, capture_output=True, check=False, env=env)
