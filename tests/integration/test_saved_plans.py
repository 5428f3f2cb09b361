"""Saved plans bind: ``apply PLAN`` runs exactly the actions in the file, re-checked under
the lock; actions already done are skipped, and any other change refuses the whole plan."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support import installed_prefix, run, run_hello, write_manifest

PUBLISH = """
[[mirror]]
name = "out"
url = "out"
signed = false

[[publish]]
specs = ["hello-app"]
mirror = "out"
"""


def test_an_empty_saved_plan_is_stale_when_a_publish_target_is_deleted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's third reproduction."""
    manifest = write_manifest(tmp_path, padded_length=128, extra=PUBLISH)
    assert run(manifest, "apply", "--yes") == 0
    saved = tmp_path / "empty.json"
    assert run(manifest, "plan", "--out", str(saved)) == 0
    assert json.loads(saved.read_text())["actions"] == []
    shutil.rmtree(tmp_path / "out")
    capsys.readouterr()
    assert run(manifest, "apply", str(saved)) == 1
    captured = capsys.readouterr()
    assert "error[stale-plan]" in captured.err
    assert "publish:out/gcc-runtime@12.2.0/" in captured.err
    assert "the plan leaves it alone, but now it needs 'publish'" in captured.err
    assert "published" not in captured.out
    assert not (tmp_path / "out").exists()


def test_a_publish_target_filled_meanwhile_is_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path, padded_length=128, extra=PUBLISH)
    saved = tmp_path / "plan.json"
    assert run(manifest, "plan", "--out", str(saved)) == 0
    kinds = [a["action"] for a in json.loads(saved.read_text())["actions"]]
    assert kinds.count("install") == 3 and kinds.count("publish") == 3
    fingerprints = json.loads(saved.read_text())["observed"]["fingerprints"]
    assert sum(1 for k, v in fingerprints.items() if k.startswith("target:out/")) == 3
    assert run(manifest, "apply", "--yes") == 0  # someone else applies first
    capsys.readouterr()
    assert run(manifest, "apply", str(saved)) == 0
    assert "already applied: its 6 action(s) are done" in capsys.readouterr().out


def test_only_the_actions_not_done_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = write_manifest(tmp_path)
    saved = tmp_path / "plan.json"
    assert run(manifest, "plan", "--out", str(saved)) == 0
    # another manifest on the same root installs two of the three meanwhile
    other = write_manifest(tmp_path / "other", root=str(tmp_path / "opt"), specs=("greetlib",))
    assert run(other, "apply", "--yes") == 0
    capsys.readouterr()
    assert run(manifest, "apply", str(saved), "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert [s.split("@")[0] for s in result["installed"]] == ["hello-app"]
    assert sorted(s.split("@")[0] for s in result["skipped"]) == ["gcc-runtime", "greetlib"]
    assert run_hello(installed_prefix(tmp_path / "opt", "hello-app"))


def test_a_resource_the_plan_left_alone_that_drifted_refuses_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path)
    assert run(manifest, "apply", "--yes") == 0
    saved = tmp_path / "empty.json"
    assert run(manifest, "plan", "--out", str(saved)) == 0
    binary = installed_prefix(tmp_path / "opt", "hello-app") / "bin" / "hello-app"
    binary.write_bytes(b"garbage\n")
    capsys.readouterr()
    assert run(manifest, "apply", str(saved)) == 1
    err = capsys.readouterr().err
    assert "error[stale-plan]" in err and "now it needs 'repair'" in err
    assert "drift:" in err and "was clean" in err
    assert binary.read_bytes() == b"garbage\n"  # nothing was changed


def test_an_empty_saved_plan_with_nothing_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path)
    assert run(manifest, "apply", "--yes") == 0
    saved = tmp_path / "empty.json"
    assert run(manifest, "plan", "--out", str(saved)) == 0
    capsys.readouterr()
    assert run(manifest, "apply", str(saved)) == 0
    assert "has no actions, and nothing it relied on changed" in capsys.readouterr().out


def test_a_record_rewritten_since_the_plan_refuses_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path)
    assert run(manifest, "apply", "--yes") == 0
    saved = tmp_path / "empty.json"
    assert run(manifest, "plan", "--out", str(saved)) == 0
    record = next((tmp_path / "opt/.reconcile/records").glob("*.json"))
    data = json.loads(record.read_text())
    data["installed_at"] = "2020-01-01T00:00:00Z"
    record.write_text(json.dumps(data))
    capsys.readouterr()
    assert run(manifest, "apply", str(saved)) == 1
    assert f"record:{data['hash']}: was " in capsys.readouterr().err


def test_a_planned_removal_whose_prefix_drifted_since_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path)
    assert run(manifest, "apply", "--yes") == 0
    text = manifest.read_text().replace(
        'specs = ["hello-app"]', 'specs = ["greetlib"]\nprune = true'
    )
    manifest.write_text(text)
    saved = tmp_path / "plan.json"
    assert run(manifest, "plan", "--out", str(saved)) == 0
    assert [a["action"] for a in json.loads(saved.read_text())["actions"]] == ["remove"]
    app = installed_prefix(tmp_path / "opt", "hello-app")
    (app / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert run(manifest, "apply", str(saved)) == 1
    assert "the plan would remove it, but now: undeclared, kept" in capsys.readouterr().err
    assert (app / "notes.txt").read_text() == "mine"
