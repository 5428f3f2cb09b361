"""Failures of the environment end in ``error[...]`` with the path and a hint, never in a
traceback, and leave the install root consistent: real conditions, not mocks (a read-only
tmpfs, a full tmpfs under the records folder, a folder the process may not write, a name
longer than the filesystem allows, Ctrl-D typed into a real pseudo-terminal).

Mounting needs root (CAP_SYS_ADMIN); those tests are skipped where it is not available.
"""

from __future__ import annotations

import errno
import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import REPO
from support import installed_prefix, run_hello, run_subprocess, write_manifest

from reconcile.cli.failures import environment_failure


@contextmanager
def tmpfs(mountpoint: Path, *, size: str, read_only: bool = False) -> Iterator[Path]:
    """A fresh tmpfs at ``mountpoint``, unmounted afterwards; skips without mount rights."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mountpoint)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def fill(folder: Path) -> Path:
    """Write into ``folder`` until its filesystem is full; return the filler file."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 512)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def assert_clean_failure(done: subprocess.CompletedProcess[str], reference: str) -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"error[{reference}]: " in done.stderr, done.stderr
    assert "hint: " in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def prefixes_without_records(root: Path) -> list[str]:
    recorded = {
        json.loads(p.read_text())["prefix"] for p in (root / ".reconcile/records").glob("*.json")
    }
    present = [p for p in root.iterdir() if p.name != ".reconcile"]
    return sorted(str(p) for p in present if str(p) not in recorded)


@pytest.mark.parametrize(
    ("code", "reference"),
    [
        (errno.ENOSPC, "disk-full"),
        (errno.EDQUOT, "disk-full"),
        (errno.ENAMETOOLONG, "path-too-long"),
        (errno.EROFS, "read-only-filesystem"),
        (errno.EACCES, "permission-denied"),
        (errno.EPERM, "permission-denied"),
        (errno.ENOENT, "no-such-path"),
        (errno.ENOTDIR, "no-such-path"),
        (errno.EIO, "os-error"),
    ],
)
def test_each_errno_has_its_reference_and_names_the_path(code: int, reference: str) -> None:
    error = environment_failure(OSError(code, os.strerror(code), "/some/path", None, "/other"))
    assert error.reference == reference
    assert "/some/path -> /other" in error.message
    assert error.hint


def test_read_only_install_root(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", size="64k", read_only=True):
        manifest = write_manifest(tmp_path, root="ro/opt")
        planned = run_subprocess(manifest, "plan")
        assert planned.returncode == 0, planned.stderr  # reading is fine
        done = run_subprocess(manifest, "apply", "--yes")
        assert_clean_failure(done, "read-only-filesystem")
        assert str(tmp_path / "ro" / "opt") in done.stderr
        assert list((tmp_path / "ro").iterdir()) == []


def test_install_root_the_process_may_not_write(tmp_path: Path) -> None:
    """As root, the permission check is real only without CAP_DAC_OVERRIDE: the run drops
    every capability (setpriv) and writes into a folder owned by someone else, mode 0555."""
    locked = tmp_path / "locked"
    locked.mkdir()
    manifest = write_manifest(tmp_path, root="locked/opt")
    command = [sys.executable, "-m", "reconcile", "-m", str(manifest), "apply", "--yes"]
    if os.geteuid() == 0:
        os.chown(locked, 65534, 65534)
        command = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", *command]
    locked.chmod(0o555)
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdin=subprocess.DEVNULL,
            check=False,
            timeout=600,
        )
    finally:
        locked.chmod(0o755)
    if "setpriv" in done.stderr and done.returncode != 1:
        pytest.skip(f"setpriv cannot drop capabilities here: {done.stderr}")
    assert_clean_failure(done, "permission-denied")
    assert str(locked / "opt") in done.stderr
    assert list(locked.iterdir()) == []


def test_disk_full_while_writing_a_record(tmp_path: Path) -> None:
    """The records folder is its own, full filesystem: staging succeeds, the first record
    cannot be written. Nothing is half-installed, and the next apply converges."""
    root = tmp_path / "opt"
    records = root / ".reconcile" / "records"
    with tmpfs(records, size="64k"):
        filler = fill(records)
        manifest = write_manifest(tmp_path)
        done = run_subprocess(manifest, "apply", "--yes")
        assert_clean_failure(done, "disk-full")
        assert str(records) in done.stderr
        assert prefixes_without_records(root) == []
        assert list((root / ".reconcile" / "staging").glob("*")) == []
        assert [p.name for p in records.iterdir()] == ["filler"]  # no temporary record left
        filler.unlink()  # space again: the next apply installs everything
        again = run_subprocess(manifest, "apply", "--yes")
        assert again.returncode == 0, again.stderr
        assert prefixes_without_records(root) == []
        run_hello(installed_prefix(root, "hello-app"))
        after = run_subprocess(manifest, "plan", "--detailed-exitcode")
        assert after.returncode == 0, after.stdout
        assert "No changes" in after.stdout


def test_disk_full_while_downloading_into_staging(tmp_path: Path) -> None:
    """The install root's filesystem fills up while a tarball is copied into staging: that is
    this machine's failure, not the mirror's (no other mirror is tried, nothing is blamed on
    it), and nothing is half-installed. With room again, the next apply converges."""
    root_fs = tmp_path / "small"
    with tmpfs(root_fs, size="2m"):
        manifest = write_manifest(tmp_path, root="small/opt")
        done = run_subprocess(manifest, "apply", "--yes")
        assert_clean_failure(done, "disk-full")
        # the download was kept for resuming, or copied into the run's staging folder
        assert f"{root_fs}/opt/.reconcile/" in done.stderr, done.stderr
        assert "tarball-unavailable" not in done.stderr
        assert "mirror's health" not in done.stderr
        root = root_fs / "opt"
        assert not root.exists() or prefixes_without_records(root) == []
        assert not list(root_fs.rglob("*.spack"))
        grown = subprocess.run(
            ["mount", "-o", "remount,size=64m", str(root_fs)], capture_output=True, check=False
        )
        assert grown.returncode == 0, grown.stderr
        again = run_subprocess(manifest, "apply", "--yes")
        assert again.returncode == 0, again.stderr
        run_hello(installed_prefix(root, "hello-app"))
        after = run_subprocess(manifest, "plan", "--detailed-exitcode")
        assert after.returncode == 0, after.stdout


def test_plan_out_into_a_missing_folder(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path)
    done = run_subprocess(manifest, "plan", "--out", "missing/dir/x.json")
    assert_clean_failure(done, "no-such-path")
    assert "missing/dir does not exist" in done.stderr  # said before reading any mirror
    assert not (tmp_path / "missing").exists()


def test_plan_out_with_a_name_too_long(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path)
    too_long = tmp_path / ("p" * 300 + ".json")
    done = run_subprocess(manifest, "plan", "--out", str(too_long))
    assert_clean_failure(done, "path-too-long")
    assert "ppppp" in done.stderr


def test_plan_out_into_a_read_only_folder(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path)
    with tmpfs(tmp_path / "ro", size="64k", read_only=True):
        done = run_subprocess(manifest, "plan", "--out", str(tmp_path / "ro" / "plan.json"))
        assert_clean_failure(done, "read-only-filesystem")
        assert str(tmp_path / "ro") in done.stderr


def _read_until(fd: int, wanted: bytes, deadline: float) -> bytes:
    seen = b""
    while wanted not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    return seen


def test_ctrl_d_at_the_confirmation_prompt(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path)
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "reconcile", "-m", str(manifest), "apply"],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env={**os.environ, "PYTHONPATH": str(REPO), "TERM": "dumb"},
        close_fds=True,
    )
    os.close(terminal)
    try:
        deadline = time.monotonic() + 300
        shown = _read_until(controller, b"[y/N] ", deadline)
        assert b"[y/N] " in shown, shown
        os.write(controller, b"\x04")  # Ctrl-D: end of input on a terminal
        shown += _read_until(controller, b"hint: ", deadline)
        assert process.wait(timeout=60) == 1
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)
    text = shown.decode("utf-8", "replace")
    assert "error[no-answer]: " in text, text
    assert "Traceback" not in text
    assert not (tmp_path / "opt").exists()


def test_a_full_disk_on_an_unnamed_write_names_the_staging_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """write() on a full disk raises ENOSPC without a file name (relocation rewriting a
    binary, say): the message still says where, the run's staging folder."""
    from support import run

    import reconcile.apply.installs as installs

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(installs, "relocate_package", full)
    manifest = write_manifest(tmp_path)
    assert run(manifest, "apply", "--yes") == 1
    err = capsys.readouterr().err
    assert "error[disk-full]: " in err
    assert f"{tmp_path}/opt/.reconcile/staging/" in err, err
    assert prefixes_without_records(tmp_path / "opt") == []
