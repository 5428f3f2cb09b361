"""gpg-agent processes started for GnuPG homes under a folder, found through /proc and
stopped: tests must leave none behind (tests/conftest.py checks at the end of the session)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

import attrs


@attrs.frozen(kw_only=True)
class Agent:
    pid: int
    home: Path


def running_agents() -> list[Agent]:
    """Every gpg-agent of this user, with the home it serves (from ``--homedir``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            owner = entry.stat().st_uid
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if owner != os.getuid() or not argv or Path(os.fsdecode(argv[0])).name != "gpg-agent":
            continue
        args = [os.fsdecode(arg) for arg in argv]
        if "--homedir" in args[:-1]:
            found.append(Agent(pid=int(entry.name), home=Path(args[args.index("--homedir") + 1])))
    return found


def agents_under(folder: Path) -> list[Agent]:
    return [agent for agent in running_agents() if agent.home.is_relative_to(folder)]


def stop(agent: Agent) -> None:
    """Ask gpgconf to stop it; when its home is gone (no socket left), signal the process."""
    if agent.home.is_dir() and shutil.which("gpgconf"):
        subprocess.run(
            ["gpgconf", "--homedir", str(agent.home), "--kill", "gpg-agent"],
            capture_output=True,
            check=False,
        )
        if not Path(f"/proc/{agent.pid}").exists():
            return
    with contextlib.suppress(ProcessLookupError):
        os.kill(agent.pid, signal.SIGTERM)
