"""Plan sees drift and apply repairs it: a prefix whose files differ from its record is
re-staged from its verified tarball and swapped in; modes and group are set back in place;
files someone else added are kept, or removed with ``[install] strict = true``."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from support import installed_prefix, run, run_hello, run_subprocess, write_manifest

from reconcile.apply import swap


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    manifest = write_manifest(tmp_path)
    assert run(manifest, "apply", "--yes") == 0
    return manifest


def app(manifest: Path) -> Path:
    return installed_prefix(manifest.parent / "opt", "hello-app")


def plan_text(manifest: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert run(manifest, "plan", *args) == 0
    return capsys.readouterr().out


def drift_code(manifest: Path, capsys: pytest.CaptureFixture[str]) -> int:
    capsys.readouterr()
    code = run(manifest, "drift", "--check-contents")
    capsys.readouterr()
    return code


def test_an_overwritten_binary_is_planned_repaired_and_runs(
    installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's first reproduction: garbage over a binary."""
    binary = app(installed) / "bin" / "hello-app"
    binary.write_bytes(b"garbage\n")
    for args in ((), ("--check-contents",)):
        out = plan_text(installed, capsys, *args)
        assert "~ repair hello-app@" in out and "(1 file differ)" in out, out
        assert "modified: bin/hello-app" in out and "re-staged from its verified tarball" in out
        assert "No changes" not in out and "matches" not in out
        assert "1 to repair" in out
    assert drift_code(installed, capsys) == 2
    capsys.readouterr()
    assert run(installed, "apply", "--yes") == 0
    assert "1 repaired" in capsys.readouterr().out
    assert run_hello(app(installed))  # the real binary, relocated, runs again
    assert drift_code(installed, capsys) == 0
    out = plan_text(installed, capsys)
    assert "No changes: the install tree matches the manifest" in out
    assert "fast check of every prefix" in out
    assert "contents check" in plan_text(installed, capsys, "--check-contents")
    assert not list((installed.parent / "opt/.reconcile/journal").glob("*.json"))


def test_repair_without_an_atomic_exchange(
    installed: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where renameat2 cannot exchange (NFS), the old prefix goes aside into the trash."""
    monkeypatch.setenv("RECONCILE_NO_EXCHANGE", "1")
    prefix = app(installed)
    (prefix / "bin" / "hello-app").unlink()
    assert run(installed, "apply", "--yes") == 0
    assert run_hello(prefix)
    assert drift_code(installed, capsys) == 0
    trash = installed.parent / "opt/.reconcile/trash"
    assert not trash.exists() or not any(trash.iterdir())


def test_the_exchange_is_one_atomic_step(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "one").touch()
    (second / "two").touch()
    if not swap.exchange(first, second):
        pytest.skip("this kernel or filesystem cannot exchange")
    assert (first / "two").exists() and (second / "one").exists()


def test_a_forged_mtime_is_seen_only_when_hashing(
    installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = app(installed) / "bin" / "hello-app"
    before = binary.stat()
    data = bytearray(binary.read_bytes())
    data[-1] ^= 0xFF
    binary.write_bytes(bytes(data))
    os.utime(binary, ns=(before.st_atime_ns, before.st_mtime_ns))
    out = plan_text(installed, capsys)
    assert "No changes" in out and "fast check of every prefix: size and mtime" in out
    out = plan_text(installed, capsys, "--check-contents")
    assert "~ repair hello-app@" in out
    assert run(installed, "apply", "--yes", "--check-contents") == 0
    assert drift_code(installed, capsys) == 0


def test_mode_drift_is_set_back_in_place(
    installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = app(installed)
    (prefix / "bin").chmod(0o700)
    inode = prefix.stat().st_ino
    out = plan_text(installed, capsys)
    assert "~ repair hello-app@" in out and "fixed in place" in out and "mode: bin" in out
    assert run(installed, "apply", "--yes") == 0
    assert prefix.stat().st_ino == inode  # not re-staged
    assert drift_code(installed, capsys) == 0


def test_added_files_are_kept_and_reported(
    installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = app(installed)
    (prefix / "notes.txt").write_text("mine")
    out = plan_text(installed, capsys)
    assert "! spec:hello-app@" in out and "1 path reconcile did not install kept" in out
    assert "No changes" not in out and "matches" not in out
    assert "Nothing to do, but 1 resource differs" in out
    # a repair for another reason keeps the added file in the repaired prefix
    (prefix / "bin" / "hello-app").write_bytes(b"garbage")
    out = plan_text(installed, capsys)
    assert "added, kept: notes.txt" in out
    assert run(installed, "apply", "--yes") == 0
    assert (prefix / "notes.txt").read_text() == "mine"
    assert run_hello(prefix)


def test_strict_removes_added_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = write_manifest(tmp_path)
    manifest.write_text(manifest.read_text().replace("[install]\n", "[install]\nstrict = true\n"))
    assert run(manifest, "apply", "--yes") == 0
    prefix = app(manifest)
    (prefix / "extra").mkdir()
    (prefix / "extra" / "inside").write_text("x")
    out = plan_text(manifest, capsys)
    assert "~ repair hello-app@" in out and "added, removed (install.strict): extra" in out
    assert run(manifest, "apply", "--yes") == 0
    assert not (prefix / "extra").exists()
    assert run_hello(prefix)
    assert drift_code(manifest, capsys) == 0


@pytest.mark.parametrize(
    ("crash_at", "exchange"),
    [
        ("repair-journaled", True),
        ("repair-swapped", True),
        ("repair-journaled", False),
        ("repair-aside", False),
    ],
)
def test_a_crash_during_the_swap_is_finished_or_undone(
    installed: Path, capsys: pytest.CaptureFixture[str], crash_at: str, exchange: bool
) -> None:
    prefix = app(installed)
    (prefix / "bin" / "hello-app").write_bytes(b"garbage")
    (prefix / "notes.txt").write_text("mine")
    env = {"RECONCILE_CRASH_AT": crash_at, **({} if exchange else {"RECONCILE_NO_EXCHANGE": "1"})}
    killed = run_subprocess(installed, "apply", "--yes", env=env)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    journal = list((installed.parent / "opt/.reconcile/journal").glob("*.json"))
    assert len(journal) == 1 and json.loads(journal[0].read_text())["prefix"] == str(prefix)
    if crash_at == "repair-aside":
        assert not prefix.exists()  # between the two renames
    again = run_subprocess(installed, "apply", "--yes")
    assert again.returncode == 0, again.stderr
    assert run_hello(prefix)
    assert (prefix / "notes.txt").read_text() == "mine"
    assert not list((installed.parent / "opt/.reconcile/journal").glob("*.json"))
    done = run_subprocess(installed, "drift", "--check-contents", "--json")
    kinds = {f["kind"] for r in json.loads(done.stdout)["resources"] for f in r["findings"]}
    assert kinds == {"added"}  # notes.txt, kept


def test_a_repair_is_verified_like_an_install(
    tmp_path: Path, signed_cache_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mirror whose tarball no longer matches the signed checksum repairs nothing."""
    manifest = write_manifest(tmp_path, mirror=signed_cache_copy)
    assert run(manifest, "apply", "--yes") == 0
    prefix = app(manifest)
    (prefix / "bin" / "hello-app").write_bytes(b"garbage")
    tarball = next(signed_cache_copy.rglob("*-hello-app-3.0-*.spack"))
    data = bytearray(tarball.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tarball.write_bytes(bytes(data))
    capsys.readouterr()
    assert run(manifest, "apply", "--yes") == 1
    err = capsys.readouterr().err
    assert "error[checksum-mismatch]" in err and "cannot repair hello-app@3.0" in err
    assert (prefix / "bin" / "hello-app").read_bytes() == b"garbage"  # untouched


def test_a_prefix_whose_record_went_away_is_not_repaired(installed: Path) -> None:
    from reconcile.apply.events import SilentReporter
    from reconcile.apply.executor import apply_plan
    from reconcile.engine import observe_and_plan
    from reconcile.errors import ApplyError
    from reconcile.manifest.load import load_manifest
    from reconcile.transport.registry import TransportPool, endpoints_of

    prefix = app(installed)
    (prefix / "bin" / "hello-app").write_bytes(b"garbage")
    loaded = load_manifest(installed)
    with TransportPool(endpoints_of(loaded)) as pool:
        plan = observe_and_plan(loaded, pool)
        assert [a.kind for a in plan.actions] == ["repair"]
        for record in (installed.parent / "opt/.reconcile/records").glob("*.json"):
            if json.loads(record.read_text())["name"] == "hello-app":
                record.unlink()
        with pytest.raises(ApplyError, match="its install record is gone"):
            apply_plan(plan, loaded, pool, SilentReporter())
    assert (prefix / "bin" / "hello-app").read_bytes() == b"garbage"
