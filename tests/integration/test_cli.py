"""The command line as users and scripts meet it: output, JSON, exit codes, saved plans."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from conftest import GCC_RUNTIME_HASH, REPO
from support import installed_prefix, run, run_subprocess, snapshot, write_manifest

PLAN_SCHEMA = json.loads((REPO / "schemas" / "plan.schema.json").read_text())


def test_validate_reports_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = write_manifest(tmp_path, specs=["hello-app", "greetlib"])
    assert run(manifest, "validate") == 0
    assert "valid (1 mirror, 1 key, 2 spec selectors)" in capsys.readouterr().out


def test_manifest_error_is_located_and_has_no_traceback(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path)
    text = manifest.read_text().replace('name = "team"', 'name = "team"\nurl_ = "x"')
    manifest.write_text(text)
    done = run_subprocess(manifest, "plan")
    assert done.returncode == 1
    assert "reconcile.toml:" in done.stderr
    assert "unknown key 'url_'" in done.stderr
    assert "Traceback" not in done.stderr


def test_plan_json_follows_the_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = write_manifest(tmp_path)
    assert run(manifest, "plan", "--json", "--detailed-exitcode") == 2
    plan = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator(PLAN_SCHEMA).validate(plan)
    assert [a["details"]["name"] for a in plan["actions"]] == [
        "gcc-runtime",
        "greetlib",
        "hello-app",
    ]
    assert plan["summary"]["install"] == 3
    assert plan["summary"]["bytes_to_fetch"] == 9_566_481 + 9_708 + 9_861
    gcc = plan["actions"][0]
    assert gcc["id"] == f"install:{GCC_RUNTIME_HASH}"
    assert gcc["details"]["signer"] == "E4A1C447981D70AB30BD8B09643A47B4E5E41176"
    assert gcc["details"]["mirror"] == "team"
    glibc = [n for n in plan["noops"] if n["resource"].startswith("spec:glibc@2.36/")]
    assert glibc and "external at /usr" in glibc[0]["reason"]
    assert run(manifest, "apply", "--yes") == 0
    capsys.readouterr()
    assert run(manifest, "plan", "--json") == 0
    after = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator(PLAN_SCHEMA).validate(after)
    assert after["actions"] == []
    reasons = {n["resource"].split("/")[0]: n["reason"] for n in after["noops"]}
    assert reasons["spec:hello-app@3.0"].startswith("already installed at ")


def test_apply_without_terminal_needs_yes(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path)
    done = run_subprocess(manifest, "apply")
    assert done.returncode == 1
    assert "--yes" in done.stderr
    assert snapshot(tmp_path / "opt") == {}


def test_saved_plan_applies_and_goes_stale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path)
    saved = tmp_path / "plan.json"
    assert run(manifest, "plan", "--out", str(saved)) == 0
    assert "Saved the plan" in capsys.readouterr().out
    assert run(manifest, "apply", str(saved)) == 0
    capsys.readouterr()
    installed_prefix(tmp_path / "opt", "hello-app")
    # the same plan again: every action is done, so it is already applied
    assert run(manifest, "apply", str(saved)) == 0
    out = capsys.readouterr().out
    assert "is already applied: its 3 action(s) are done" in out
    # a fresh plan of the same manifest is bound the same way: nothing to do
    assert GCC_RUNTIME_HASH


def test_saved_plan_refused_after_manifest_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path)
    saved = tmp_path / "plan.json"
    assert run(manifest, "plan", "--out", str(saved)) == 0
    manifest.write_text(manifest.read_text().replace('"hello-app"', '"greetlib"'))
    assert run(manifest, "apply", str(saved)) == 1
    err = capsys.readouterr().err
    assert "manifest" in err and "changed" in err
    assert not (tmp_path / "opt").exists()


def test_saved_plan_refused_after_mirror_change(
    tmp_path: Path, signed_cache_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path, mirror=signed_cache_copy)
    saved = tmp_path / "plan.json"
    assert run(manifest, "plan", "--out", str(saved)) == 0
    tarball = next(signed_cache_copy.rglob("*-greetlib-2.1-*.spack"))
    with tarball.open("ab") as stream:
        stream.write(b"\0")
    assert run(manifest, "apply", str(saved)) == 1
    err = capsys.readouterr().err
    assert "tarball:" in err and "stale" in err


def test_quickstart_in_a_fresh_copy(tmp_path: Path) -> None:
    """The README's first command, on a copy of examples/quickstart (no ../shared needed)."""
    example = tmp_path / "somewhere" / "quickstart"
    shutil.copytree(REPO / "examples" / "quickstart", example, ignore=shutil.ignore_patterns("opt"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "reconcile"]
    done = subprocess.run(
        [*cmd, "apply", "--yes"], cwd=example, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Apply complete: 2 installed" in done.stdout
    hello = installed_prefix(example / "opt", "qs-hello")
    out = subprocess.run(
        [str(hello / "bin" / "qs-hello")], capture_output=True, text=True, check=True
    ).stdout
    first = out.splitlines()[0].removeprefix("qs-hello 1.0 installed at ")
    assert os.path.samefile(first, hello)
    again = subprocess.run(
        [*cmd, "plan", "--detailed-exitcode"], cwd=example, env=env, capture_output=True, text=True
    )
    assert again.returncode == 0, again.stdout + again.stderr


def test_unreadable_mirror_is_reported_and_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path)
    text = manifest.read_text().replace(
        "[[mirror]]", f'[[mirror]]\nname = "gone"\nurl = "{tmp_path / "nowhere"}"\n\n[[mirror]]', 1
    )
    manifest.write_text(text)
    assert run(manifest, "plan") == 0
    out = capsys.readouterr().out
    assert "! mirror:gone: skipped: its index cannot be read" in out
    assert "+ install hello-app@3.0/d7r6xmz (from team" in out


def test_installed_tree_plans_without_its_mirror(
    tmp_path: Path, signed_cache_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Records carry the externals, so an unreachable mirror does not block a no-op plan."""
    manifest = write_manifest(tmp_path, mirror=signed_cache_copy)
    assert run(manifest, "apply", "--yes") == 0
    shutil.rmtree(signed_cache_copy)
    capsys.readouterr()
    assert run(manifest, "plan", "--detailed-exitcode") == 0
    out = capsys.readouterr().out
    assert "! mirror:team: skipped" in out
    assert "No changes" in out


def test_manifest_without_install_table(tmp_path: Path) -> None:
    manifest = tmp_path / "reconcile.toml"
    manifest.write_text('version = 1\n[[mirror]]\nname = "m"\nurl = "m"\n')
    done = run_subprocess(manifest, "plan")
    assert done.returncode == 1
    assert "no [install] table" in done.stderr
    assert "Traceback" not in done.stderr


def test_usage_error_exits_1_not_2(tmp_path: Path) -> None:
    done = run_subprocess(tmp_path / "reconcile.toml", "plan", "--no-such-option")
    assert done.returncode == 1
    assert "unrecognized arguments" in done.stderr


def test_needed_blobs_cover_plan_and_installed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from reconcile.engine import needed_blobs
    from reconcile.manifest.load import load_manifest
    from reconcile.transport.registry import TransportPool, endpoints_of

    manifest = write_manifest(tmp_path, specs=["greetlib"])
    loaded = load_manifest(manifest)
    expected = {
        "0448526af2bad1701bc3b7e009f0890e47285e5c4c34da04ad21b7e45eb35fdf",
        "7411478146e45bbac005244078efa2c619aa390dd5589d745c14b3e9e7c15426",
    }
    with TransportPool(endpoints_of(loaded)) as pool:
        assert needed_blobs(loaded, pool) == expected
    assert run(manifest, "apply", "--yes") == 0
    with TransportPool(endpoints_of(loaded)) as pool:
        assert needed_blobs(loaded, pool) == expected
