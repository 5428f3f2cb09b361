"""The install root's POSIX lock between real processes: who holds it, waiting for it,
plan during an apply, and the lock file that is never removed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from support import run, run_subprocess, write_manifest
from test_fixture_install import check_hello_works
from test_lock_loser import finish, paused_apply, records_of, resume, wait_paused

from reconcile.state.lock import install_root_lock, lock_holder


def test_locks_shows_the_holder_and_apply_with_no_timeout_names_it(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path)
    root = tmp_path / "opt"
    free = run_subprocess(manifest, "locks")
    assert free.returncode == 0 and "free" in free.stdout
    folder = tmp_path / "pause"
    with paused_apply(manifest, "after-lock", folder) as holder:
        wait_paused(holder, folder, "after-lock")
        shown = run_subprocess(manifest, "locks", "--json")
        assert shown.returncode == 2, shown.stderr
        document = json.loads(shown.stdout)
        assert document["held"] is True
        assert document["holder"]["pid"] == holder.pid
        assert "apply --yes" in document["holder"]["command"]
        refused = run_subprocess(manifest, "apply", "--yes", "--lock-timeout", "0")
        assert refused.returncode == 1
        assert "error[install-root-locked]" in refused.stderr
        assert f"pid {holder.pid}" in refused.stderr
        assert "Traceback" not in refused.stderr
        resume(holder, folder, "after-lock")
        code, err = finish(holder)
        assert code == 0, err
    assert run_subprocess(manifest, "locks").returncode == 0
    check_hello_works(root)


def test_a_second_apply_waits_for_the_first_then_finds_nothing_to_do(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path)
    root = tmp_path / "opt"
    folder = tmp_path / "pause"
    with paused_apply(manifest, "after-commit", folder) as first:
        wait_paused(first, folder, "after-commit")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        second = subprocess.Popen(
            [sys.executable, "-m", "reconcile", "-m", str(manifest), "apply", "--yes"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            # it says whom it waits for before the first run is let go
            line = second.stderr.readline() if second.stderr else ""
            assert "waiting for the lock" in line and f"pid {first.pid}" in line, line
            resume(first, folder, "after-commit")
            code, err = finish(first)
            assert code == 0, err
            out, err = second.communicate(timeout=240)
        finally:
            if second.poll() is None:
                second.kill()
                second.communicate()
        assert second.returncode == 0, err
        assert "No changes" in out  # planned after the first apply had finished
    assert len(records_of(root)) == 3
    check_hello_works(root)


def test_plan_during_an_apply_never_advises_removing_its_prefixes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A prefix without a record while an apply holds the lock is that apply's work."""
    manifest = write_manifest(tmp_path)
    root = tmp_path / "opt"
    assert run(manifest, "plan", "--out", str(tmp_path / "p.json")) == 0
    plan = json.loads((tmp_path / "p.json").read_text())
    prefix = Path(next(a["details"]["prefix"] for a in plan["actions"] if a["action"] == "install"))
    capsys.readouterr()
    with install_root_lock(root):
        prefix.mkdir(parents=True)  # as if being committed by the run holding the lock
        done = run_subprocess(manifest, "plan")
        assert done.returncode == 1
        assert "error[apply-running]" in done.stderr
        assert "remove it" in done.stderr  # the planner's words, quoted under the reason
        assert "plan again when it has finished" in done.stderr
        prefix.rmdir()
        noted = run_subprocess(manifest, "plan")
        assert noted.returncode == 0, noted.stderr
        assert "note: an apply is running" in noted.stderr
    done = run_subprocess(manifest, "plan")
    assert "note: an apply is running" not in done.stderr


def test_asking_who_holds_the_lock_does_not_drop_our_own(tmp_path: Path) -> None:
    """POSIX locks drop when any descriptor of the file closes: lock_holder in the holding
    process must not open the file again."""
    root = tmp_path / "opt"
    with install_root_lock(root):
        mine = lock_holder(root)
        assert mine is not None and mine.pid == os.getpid()
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from pathlib import Path; "
                "from reconcile.state.lock import lock_holder; "
                "h = lock_holder(Path(sys.argv[1])); print(h.pid if h else 'free')",
                str(root),
            ],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        assert probe.stdout.strip() == str(os.getpid())
    assert lock_holder(root) is None


def test_the_state_folder_and_lock_file_stay_after_a_failed_first_apply(
    tmp_path: Path, signed_cache_copy: Path
) -> None:
    from test_refusals import GREETLIB_TARBALL

    tarball = signed_cache_copy / GREETLIB_TARBALL
    data = bytearray(tarball.read_bytes())
    data[len(data) // 2] ^= 0x01
    tarball.write_bytes(bytes(data))
    manifest = write_manifest(tmp_path, mirror=signed_cache_copy)
    failed = run_subprocess(manifest, "apply", "--yes")
    assert failed.returncode == 1, failed.stdout
    root = tmp_path / "opt"
    assert (root / ".reconcile" / "lock").is_file()
    assert records_of(root) == set()
    assert sorted(p.name for p in root.iterdir()) == [".reconcile"]
    assert lock_holder(root) is None
