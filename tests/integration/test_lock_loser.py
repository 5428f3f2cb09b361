"""Two real processes on one install root: the run that loses the lock never touches the
state of the run that holds it, and a refused run never lets two runs hold the lock at
once. Pause points (reconcile/pause.py) make them meet at the moment
that matters."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conftest import GCC_RUNTIME_HASH, GREETLIB_HASH, HELLO_HASH, REPO
from support import run_subprocess, write_manifest
from test_fixture_install import check_hello_works
from test_refusals import GREETLIB_TARBALL

RECORDS = {f"{h}.json" for h in (HELLO_HASH, GREETLIB_HASH, GCC_RUNTIME_HASH)}
RECONCILE = (sys.executable, "-m", "reconcile", "-m")
WAIT_SECONDS = 240  # only a safety net for a broken run; never an assertion on time


@contextmanager
def paused_apply(manifest: Path, points: str, folder: Path) -> Iterator[subprocess.Popen[str]]:
    """``reconcile apply --yes`` in its own process, pausing at ``points``."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "RECONCILE_PAUSE_AT": points,
        "RECONCILE_PAUSE_DIR": str(folder),
    }
    process = subprocess.Popen(
        [*RECONCILE, str(manifest), "apply", "--yes", "--lock-timeout", "0"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        for point in points.split(","):
            (folder / f"{point}.resume").touch()
        if process.poll() is None:
            process.kill()
        process.communicate()


def wait_paused(process: subprocess.Popen[str], folder: Path, point: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not (folder / f"{point}.paused").exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"never reached {point}"
        time.sleep(0.02)


def resume(process: subprocess.Popen[str], folder: Path, point: str) -> None:
    (folder / f"{point}.resume").touch()


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    _, err = process.communicate(timeout=WAIT_SECONDS)
    assert "Traceback" not in err, err
    return process.returncode, err


def records_of(root: Path) -> set[str]:
    folder = root / ".reconcile" / "records"
    return {p.name for p in folder.glob("*.json")} if folder.is_dir() else set()


def test_the_run_that_loses_the_lock_leaves_the_winners_records(tmp_path: Path) -> None:
    """The loser saw no ``.reconcile/`` when it started; the winner made it and installed
    into it while the loser waited to call flock. Losing must remove nothing."""
    manifest = write_manifest(tmp_path)
    root = tmp_path / "opt"
    loser_dir, winner_dir = tmp_path / "loser", tmp_path / "winner"
    with (
        paused_apply(manifest, "before-lock", loser_dir) as loser,
        paused_apply(manifest, "after-commit", winner_dir) as winner,
    ):
        wait_paused(loser, loser_dir, "before-lock")
        wait_paused(winner, winner_dir, "after-commit")
        assert records_of(root) == RECORDS
        resume(loser, loser_dir, "before-lock")
        code, err = finish(loser)
        assert code == 1 and "another reconcile run holds the lock" in err
        assert records_of(root) == RECORDS  # the winner's state is untouched
        resume(winner, winner_dir, "after-commit")
        code, err = finish(winner)
        assert code == 0, err
    assert records_of(root) == RECORDS
    again = run_subprocess(manifest, "plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes" in again.stdout
    check_hello_works(root)


def test_a_refused_run_never_lets_two_runs_hold_the_lock(
    tmp_path: Path, signed_cache_copy: Path
) -> None:
    """B opened the lock file and waits to lock it; A takes the lock and is refused (a
    tampered tarball). The lock file stays, so B's lock is the lock at the path: a third
    run C is refused while B holds it."""
    tarball = signed_cache_copy / GREETLIB_TARBALL
    data = bytearray(tarball.read_bytes())
    data[len(data) // 2] ^= 0x01
    tarball.write_bytes(bytes(data))
    root = tmp_path / "opt"
    good = write_manifest(tmp_path / "good", root=str(root))
    bad = write_manifest(tmp_path / "bad", root=str(root), mirror=signed_cache_copy)
    b_dir = tmp_path / "b"
    with paused_apply(good, "before-lock,after-lock", b_dir) as b:
        wait_paused(b, b_dir, "before-lock")
        a = run_subprocess(bad, "apply", "--yes")
        assert a.returncode == 1 and "Traceback" not in a.stderr, a.stderr
        assert "greetlib@2.1/yrhiacw" in a.stderr
        # the lock file is never removed, so B's lock is on the file at the path
        assert (root / ".reconcile" / "lock").is_file()
        resume(b, b_dir, "before-lock")
        wait_paused(b, b_dir, "after-lock")
        c = run_subprocess(good, "apply", "--yes", "--lock-timeout", "0")
        assert c.returncode == 1, c.stdout + c.stderr
        assert "another reconcile run holds the lock" in c.stderr
        resume(b, b_dir, "after-lock")
        code, err = finish(b)
        assert code == 0, err
    assert records_of(root) == RECORDS
    again = run_subprocess(good, "plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
