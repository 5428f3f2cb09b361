"""cache gc next to a real running apply: the partial download the apply is writing (through
nginx's rate-limited /slow/), with the apply suspended as Ctrl-Z does, is kept even when its
modification time says it is old, because its name's owner is a live process; once that
apply is killed, the same partial is abandoned and gc removes it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import REPO
from nginx_harness import NginxServer
from support import run_subprocess, write_manifest

KEPT_AT_LEAST = 100_000  # bytes in the partial file before gc runs beside the apply


def _age(path: Path, days: int) -> None:
    moment = (datetime.now(UTC) - timedelta(days=days)).timestamp()
    os.utime(path, (moment, moment))


def _gc_removed(manifest: Path) -> list[str]:
    """``cache gc --older-than 1h`` in a process of its own: the partials it removed."""
    done = run_subprocess(manifest, "cache", "gc", "--older-than", "1h", "--json")
    assert done.returncode == 0, done.stderr
    return [str(p["path"]) for p in json.loads(done.stdout)["partials_removed"]]


def test_gc_keeps_the_partial_a_running_apply_holds_then_removes_it_once_abandoned(
    tmp_path: Path, nginx_mirror: NginxServer
) -> None:
    manifest = write_manifest(
        tmp_path, mirror=nginx_mirror.url + "/slow", extra='\n[[cache]]\nroot = "cache"\n'
    )
    folder = tmp_path / "cache" / "partial"
    apply = subprocess.Popen(
        [sys.executable, "-m", "reconcile", "-m", str(manifest), "apply", "--yes"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        deadline = time.monotonic() + 120  # a guard against a hang, not a timing assertion
        partial = None
        while partial is None and time.monotonic() < deadline:
            assert apply.poll() is None, "the apply ended before its download was under way"
            found = sorted(folder.glob("*.partial")) if folder.is_dir() else []
            partial = next((p for p in found if p.stat().st_size >= KEPT_AT_LEAST), None)
            time.sleep(0.05)
        assert partial is not None, "the download never started"
        assert partial.name.split(".")[1].split("-")[2] == str(apply.pid)
        # suspended (Ctrl-Z), the apply writes nothing: only its name says it is held
        apply.send_signal(signal.SIGSTOP)
        _age(partial, days=3)  # as old as an abandoned one, but its apply is running
        assert _gc_removed(manifest) == []
        assert partial.exists() and apply.poll() is None
        apply.send_signal(signal.SIGKILL)
        apply.wait(timeout=60)
    finally:
        if apply.poll() is None:
            apply.kill()
            apply.wait()
    _age(partial, days=3)
    dry = run_subprocess(manifest, "cache", "gc", "--older-than", "1h", "--dry-run")
    assert f"- remove {partial} (" in dry.stdout and partial.exists()
    assert _gc_removed(manifest) == [str(partial)]
    assert not partial.exists()
