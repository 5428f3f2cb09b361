"""Pause points for tests that need two real processes to meet at a given moment.

With ``RECONCILE_PAUSE_AT=<point>[,<point>...]`` and ``RECONCILE_PAUSE_DIR=<folder>`` set,
the process writes ``<folder>/<point>.paused`` (holding its pid) when it gets to ``<point>``
and waits until ``<folder>/<point>.resume`` exists. Unset (the normal case) it costs one dictionary
lookup. A test uses it to hold one run inside the install root's lock while another tries to
take it, for example.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PAUSE_POINTS = (
    "before-lock",  # the lock file is open, flock() not called yet
    "after-lock",  # the install root's lock is held, nothing done under it yet
    "after-commit",  # holding the lock, every staged prefix renamed into place
)
POLL_SECONDS = 0.02
# A test that never resumes must not leave a process behind for ever.
GIVE_UP_SECONDS = 300.0


def pause_point(name: str) -> None:
    assert name in PAUSE_POINTS, name
    if name not in os.environ.get("RECONCILE_PAUSE_AT", "").split(","):
        return
    folder = Path(os.environ.get("RECONCILE_PAUSE_DIR", "."))
    (folder / f"{name}.paused").write_text(f"{os.getpid()}\n")
    resume = folder / f"{name}.resume"
    deadline = time.monotonic() + GIVE_UP_SECONDS
    while not resume.exists() and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
