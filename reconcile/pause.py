"""Pause points for tests that need two real processes to meet at a given moment.

With ``RECONCILE_PAUSE_AT=<point>[,<point>...]`` and ``RECONCILE_PAUSE_DIR=<folder>`` set,
the process writes ``<folder>/<point>.paused`` (its pid, then the point's detail, on two
lines) when it gets to ``<point>`` and waits until ``<folder>/<point>.resume`` exists. An
entry ``<point>@<text>`` pauses only where the detail contains ``<text>`` (``after-verify@
greetlib``: when greetlib's tarball was checked). Unset (the normal case) it costs one dictionary
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
    "after-verify",  # a tarball's private copy was hashed and matched; not unpacked yet
    "record-temp",  # an install record's temporary file is written, not yet renamed
    "cache-temp",  # a blob's temporary file in a cache root is written, not yet renamed
    "resign-verified",  # a published spec verified for a new gpg key; not yet read again
)
POLL_SECONDS = 0.02
# A test that never resumes must not leave a process behind for ever.
GIVE_UP_SECONDS = 300.0


def _wanted(name: str, detail: str) -> bool:
    for entry in os.environ.get("RECONCILE_PAUSE_AT", "").split(","):
        point, _, text = entry.partition("@")
        if point == name and text in detail:
            return True
    return False


def pause_point(name: str, detail: str = "") -> None:
    assert name in PAUSE_POINTS, name
    if "RECONCILE_PAUSE_AT" not in os.environ or not _wanted(name, detail):
        return
    folder = Path(os.environ.get("RECONCILE_PAUSE_DIR", "."))
    paused = folder / f"{name}.paused"
    writing = folder / f".{name}.paused.writing"  # renamed: a reader never sees half of it
    writing.write_text(f"{os.getpid()}\n{detail}\n")
    writing.replace(paused)
    resume = folder / f"{name}.resume"
    deadline = time.monotonic() + GIVE_UP_SECONDS
    while not resume.exists() and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
