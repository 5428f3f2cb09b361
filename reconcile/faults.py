"""Crash points for testing that an interrupted apply never leaves a half-installed prefix.

Setting ``RECONCILE_CRASH_AT`` to one of ``CRASH_POINTS`` makes the process kill itself with
SIGKILL when it gets there, exactly as an OOM killer or a cancelled CI job would. Unset (the
normal case) it costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

CRASH_POINTS = (
    "after-download",
    "after-relocate",
    "mid-unpack",
    "before-rename",
    "after-first-rename",
    "repair-journaled",
    "repair-swapped",
    "repair-aside",
    "removal-aside",
    "publish-tarball-written",  # a published tarball is in the mirror, its metadata is not
    "publish-before-index",  # tarball and signed metadata written, the index not updated
    "sync-before-index",  # every spec copied into the target mirror, its index not updated
    "view-building",  # a view generation's tree is built under its temporary name
    "view-before-switch",  # a generation is complete, the view's symlink not switched to it
)


def crash_point(name: str) -> None:
    assert name in CRASH_POINTS, name
    if os.environ.get("RECONCILE_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
