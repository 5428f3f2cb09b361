"""Stopping an apply with SIGTERM, SIGINT or SIGKILL at any moment: a clear message for the
first two, and for all three no prefix half-present under its final name, the next apply
converges and ``drift`` finds nothing."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO
from support import run_subprocess, write_manifest
from test_environment_failures import _read_until
from test_fixture_install import check_hello_works
from test_lock_loser import paused_apply, wait_paused

from reconcile.observe.ignore import IgnoreRules
from reconcile.observe.prefix_drift import compare_prefix
from reconcile.state.lock import lock_holder
from reconcile.state.records import read_records

ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def assert_nothing_half_present(root: Path) -> None:
    """Every folder under a final name is a complete prefix with its record."""
    if not root.exists():
        return
    records = read_records(root)
    prefixes = {Path(r.prefix).name: r for r in records.values()}
    for path in root.iterdir():
        if path.name == ".reconcile":
            continue
        assert path.name in prefixes, f"{path} is under a final name without a record"
        found = compare_prefix(prefixes[path.name], mode="contents", ignore=IgnoreRules())
        assert found.findings == (), found.findings


def converges(manifest: Path, root: Path) -> None:
    again = run_subprocess(manifest, "apply", "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    check_hello_works(root)
    audit = run_subprocess(manifest, "drift")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert lock_holder(root) is None


@pytest.mark.parametrize(
    ("signum", "code", "words"),
    [(signal.SIGTERM, 143, "terminated (SIGTERM)"), (signal.SIGINT, 130, "interrupted: ")],
)
def test_a_signal_while_holding_the_lock_stops_cleanly(
    tmp_path: Path, signum: int, code: int, words: str
) -> None:
    manifest = write_manifest(tmp_path)
    root = tmp_path / "opt"
    folder = tmp_path / "pause"
    with paused_apply(manifest, "after-lock", folder) as process:
        wait_paused(process, folder, "after-lock")
        process.send_signal(signum)
        _, err = process.communicate(timeout=120)
        assert process.returncode == code, err
        assert words in err and "Traceback" not in err
    assert_nothing_half_present(root)
    converges(manifest, root)


def test_ctrl_c_at_the_prompt_changes_nothing(tmp_path: Path) -> None:
    import pty

    manifest = write_manifest(tmp_path)
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "reconcile", "-m", str(manifest), "apply"],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env={**ENV, "TERM": "dumb"},
        close_fds=True,
    )
    os.close(terminal)
    try:
        deadline = time.monotonic() + 300
        shown = _read_until(controller, b"[y/N] ", deadline)
        assert b"[y/N] " in shown, shown
        # What Ctrl-C sends to the foreground process. Python's readline can miss a SIGINT
        # that lands just before it starts waiting for input (a race inside CPython), so a
        # person would press Ctrl-C again: so does the test, until the process reacts.
        for _ in range(30):
            process.send_signal(signal.SIGINT)
            shown += _read_until(controller, b"nothing was changed", time.monotonic() + 2)
            if b"nothing was changed" in shown:
                break
        assert process.wait(timeout=60) == 130
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)
    text = shown.decode("utf-8", "replace")
    assert "interrupted at the prompt: nothing was changed" in text, text
    assert "installed" not in text.split("[y/N]")[1]
    assert "Traceback" not in text
    assert not (tmp_path / "opt").exists()


def _stop_at_random_moments(tmp_path: Path, count: int) -> dict[str, int]:
    """Apply from scratch ``count`` times, each stopped after a random delay within a full
    apply's duration: 2 in 3 by SIGKILL, 1 in 3 by SIGTERM. Returns the tally."""
    rng = random.Random(int(os.environ.get("RECONCILE_KILL_SEED", "20261203")))
    manifest = write_manifest(tmp_path / "work")
    root = tmp_path / "work" / "opt"
    start = time.monotonic()
    clean = run_subprocess(manifest, "apply", "--yes")
    duration = time.monotonic() - start
    assert clean.returncode == 0, clean.stderr
    tally = {"kills": 0, "terms": 0, "finished first": 0, "converged": 0}
    for _ in range(count):
        run_subprocess(manifest, "apply", "--yes")  # a known state, then start over empty
        import shutil

        shutil.rmtree(root)
        signum = signal.SIGTERM if rng.random() < 1 / 3 else signal.SIGKILL
        process = subprocess.Popen(
            [sys.executable, "-m", "reconcile", "-m", str(manifest), "apply", "--yes"],
            env=ENV,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(rng.uniform(0.0, duration * 1.1))
        if process.poll() is None:
            process.send_signal(signum)
            tally["kills" if signum == signal.SIGKILL else "terms"] += 1
        else:
            tally["finished first"] += 1
        _, err = process.communicate(timeout=240)
        assert "Traceback" not in err, err
        if signum == signal.SIGTERM and process.returncode not in (0, -signal.SIGTERM):
            # -15 only before reconcile's handler is in place (while Python starts)
            assert process.returncode == 143 and "terminated (SIGTERM)" in err, err
        assert_nothing_half_present(root)
        converges(manifest, root)
        tally["converged"] += 1
    print(f"stopped at random moments: {tally}")
    return tally


def test_stopped_at_random_moments_the_tree_converges(tmp_path: Path) -> None:
    tally = _stop_at_random_moments(tmp_path, int(os.environ.get("RECONCILE_KILLS", "8")))
    assert tally["converged"] == sum(tally[k] for k in ("kills", "terms", "finished first"))


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.skipif(
    os.environ.get("RECONCILE_SLOW") != "1",
    reason="about 10 minutes; run with RECONCILE_SLOW=1 python3 -m pytest -s -m slow "
    "tests/integration/test_signals.py",
)
def test_stopped_at_ninety_random_moments(tmp_path: Path) -> None:
    # About a third of the runs finish before their random moment comes (measured: 60 runs,
    # 22 SIGKILL + 17 SIGTERM mid-run, 21 finished first, all 60 converged): run 90 so that
    # at least 50 are really stopped.
    tally = _stop_at_random_moments(tmp_path, 90)
    assert tally["kills"] + tally["terms"] >= 50
    assert tally["converged"] == 90
