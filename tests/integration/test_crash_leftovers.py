"""What a run killed with SIGKILL leaves behind is cleared by the next run that holds the
install root's lock (issue 14, item 9), and only what belongs to a process that has ended.

Real applies are held at pause points (``reconcile/pause.py``) and killed there with
``kill -9``: while writing an install record, after the commit (the next apply is then a
no-op, which used to return before clearing staging), and while a blob is written into a
shared cache root, where a second install root's run must keep the live writer's file.
"""

from __future__ import annotations

import signal
from pathlib import Path

from paused import paused_at
from support import run_subprocess, write_manifest
from test_fixture_install import check_hello_works

GCC_RUNTIME_SHA = "0448526af2bad1701bc3b7e009f0890e47285e5c4c34da04ad21b7e45eb35fdf"


def _record_temps(root: Path) -> list[Path]:
    return sorted((root / ".reconcile/records").glob(".*.tmp"))


def _staging(root: Path) -> list[Path]:
    staging = root / ".reconcile/staging"
    return sorted(staging.iterdir()) if staging.is_dir() else []


def _cache_temps(cache: Path) -> list[Path]:
    return sorted(cache.glob("blobs/sha256/*/.*.tmp"))


def _kill(manifest: Path, point: str, folder: Path) -> None:
    """Run apply until ``point``, then kill -9 it there."""
    with paused_at(manifest, point, "apply", "--yes", folder=folder) as apply:
        apply.process.send_signal(signal.SIGKILL)
        code, _, _ = apply.finish()
    assert code == -signal.SIGKILL


def _clean_and_converged(manifest: Path, root: Path) -> None:
    assert _record_temps(root) == []
    assert _staging(root) == []
    plan = run_subprocess(manifest, "plan", "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    check_hello_works(root)


def test_a_run_killed_while_writing_a_record_leaves_nothing_after_the_next_apply(
    tmp_path: Path,
) -> None:
    manifest = write_manifest(tmp_path)
    root = tmp_path / "opt"
    _kill(manifest, "record-temp", tmp_path / "pause")
    (temp,) = _record_temps(root)
    assert temp.name.startswith(".75b4t5r")  # gcc-runtime's, the first to be committed
    assert len(_staging(root)) == 1

    again = run_subprocess(manifest, "apply", "--yes")
    assert again.returncode == 0, again.stderr
    assert "removed 2 leftover(s) of interrupted runs" in again.stdout
    _clean_and_converged(manifest, root)


def test_a_run_killed_after_its_commit_is_cleared_by_a_no_op_apply(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path)
    root = tmp_path / "opt"
    _kill(manifest, "after-commit", tmp_path / "pause")
    (left,) = _staging(root)
    assert left.name.startswith("run-")
    assert any(left.rglob("*"))  # its work folders, tarballs and all

    plan = run_subprocess(manifest, "plan", "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr  # everything was committed
    noop = run_subprocess(manifest, "apply", "--yes")
    assert noop.returncode == 0, noop.stderr
    assert "No changes" in noop.stdout
    _clean_and_converged(manifest, root)


def test_a_killed_writers_temporary_blob_is_cleared_and_a_live_writers_kept(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "shared-cache"
    extra = f'\n[[cache]]\nroot = "{cache}"\n'
    first = write_manifest(tmp_path / "job-a", extra=extra)
    second = write_manifest(tmp_path / "job-b", extra=extra)

    with paused_at(
        first, f"cache-temp@{GCC_RUNTIME_SHA}", "apply", "--yes", folder=tmp_path / "pause"
    ) as writer:
        (temp,) = _cache_temps(cache)
        assert f"-{writer.pid}-" in temp.name
        # Another install root's apply runs meanwhile: the live writer's file is not its to
        # remove.
        other = run_subprocess(second, "apply", "--yes")
        assert other.returncode == 0, other.stderr
        assert temp.exists()
        writer.process.send_signal(signal.SIGKILL)
        code, _, _ = writer.finish()
    assert code == -signal.SIGKILL
    assert temp.exists()

    # The next run (a no-op for job-b) clears what the killed writer left.
    noop = run_subprocess(second, "apply", "--yes")
    assert noop.returncode == 0, noop.stderr
    assert _cache_temps(cache) == []
    _clean_and_converged(second, tmp_path / "job-b/opt")
    # job-a's root converges too, from the cache.
    again = run_subprocess(first, "apply", "--yes")
    assert again.returncode == 0, again.stderr
    _clean_and_converged(first, tmp_path / "job-a/opt")
