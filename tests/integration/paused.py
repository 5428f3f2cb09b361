"""A real reconcile process held at a pause point (``reconcile/pause.py``), so that a test
can act in that window as a co-tenant would, or kill the process there."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conftest import REPO

# A guard against a hang when the point is never reached; not a timing assertion.
_REACH_WITHIN = 300.0


class Paused:
    """The process, stopped at the point; ``resume()`` lets it go on, ``finish()`` waits."""

    def __init__(self, process: subprocess.Popen[str], folder: Path, point: str) -> None:
        self.process = process
        self.folder = folder
        self.point = point
        pid, detail = (folder / f"{point}.paused").read_text().split("\n")[:2]
        self.pid = int(pid)
        self.detail = detail

    def resume(self) -> None:
        (self.folder / f"{self.point}.resume").touch()

    def finish(self) -> tuple[int, str, str]:
        out, err = self.process.communicate(timeout=600)
        return self.process.returncode, out, err


@contextmanager
def paused_at(manifest: Path, point: str, *args: str, folder: Path) -> Iterator[Paused]:
    """Run ``reconcile -m manifest *args`` until it reaches ``point`` (``name`` or
    ``name@text``) and yield it there. The process is killed if the block leaves it paused."""
    folder.mkdir(parents=True, exist_ok=True)
    name = point.partition("@")[0]
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "RECONCILE_PAUSE_AT": point,
        "RECONCILE_PAUSE_DIR": str(folder),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "reconcile", "-m", str(manifest), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + _REACH_WITHIN
        while not (folder / f"{name}.paused").exists():
            if process.poll() is not None:
                out, err = process.communicate()
                raise AssertionError(f"ended before {point} ({process.returncode}):\n{out}{err}")
            assert time.monotonic() < deadline, f"{point} not reached"
            time.sleep(0.02)
        yield Paused(process, folder, name)
    finally:
        if process.poll() is None and not (folder / f"{name}.resume").exists():
            process.kill()
        process.communicate(timeout=600)
