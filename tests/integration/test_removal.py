"""Removal, Nix-style: a prefix this manifest installed that no declared closure needs is
removed only with ``[install] prune = true`` (otherwise listed as undeclared and kept), and
never when it has no record, a declared closure needs it, another manifest owns it, or its
files drifted (unless ``--force``)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from support import installed_prefix, run, run_hello, run_subprocess, write_manifest

from reconcile.apply.events import SilentReporter
from reconcile.apply.executor import apply_plan
from reconcile.engine import observe_and_plan
from reconcile.errors import ApplyError
from reconcile.manifest.load import load_manifest
from reconcile.plan.model import Plan
from reconcile.transport.registry import TransportPool, endpoints_of


def set_install(manifest: Path, specs: str, extra: str = "") -> None:
    text = manifest.read_text()
    start = text.index("specs = [")
    end = text.index("\n", start)
    manifest.write_text(text[:start] + f"specs = {specs}" + extra + text[end:])


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    manifest = write_manifest(tmp_path)
    assert run(manifest, "apply", "--yes") == 0
    return manifest


def plan_text(manifest: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert run(manifest, "plan", *args) == 0
    return capsys.readouterr().out


def records(manifest: Path) -> dict[str, dict[str, object]]:
    folder = manifest.parent / "opt" / ".reconcile" / "records"
    return {(d := json.loads(p.read_text()))["name"]: d for p in folder.glob("*.json")}


def test_undeclared_is_kept_without_prune_and_removed_with_it(
    installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's second reproduction: the declared spec changes."""
    app = installed_prefix(installed.parent / "opt", "hello-app")
    assert records(installed)["hello-app"]["owner"] == "../reconcile.toml"
    set_install(installed, '["greetlib"]')
    out = plan_text(installed, capsys)
    assert "! spec:hello-app@3.0/" in out and "undeclared, kept" in out
    assert "install.prune is false" in out
    assert "No changes" not in out and "matches" not in out
    capsys.readouterr()
    assert run(installed, "apply", "--yes") == 0
    assert app.is_dir()

    set_install(installed, '["greetlib"]', "\nprune = true")
    out = plan_text(installed, capsys)
    assert "- remove hello-app@3.0/" in out and "because no longer declared" in out
    assert "1 to remove" in out
    assert "remove greetlib" not in out and "remove gcc-runtime" not in out
    capsys.readouterr()
    assert run(installed, "apply", "--yes") == 0
    assert "1 removed" in capsys.readouterr().out
    assert not app.exists()
    assert set(records(installed)) == {"greetlib", "gcc-runtime"}
    logged = list((installed.parent / "opt/.reconcile/removed").glob("*.json"))
    assert len(logged) == 1
    entry = json.loads(logged[0].read_text())
    assert entry["record"]["name"] == "hello-app" and entry["removed_at"].endswith("Z")
    assert entry["reason"] == "no longer declared"
    trash = installed.parent / "opt/.reconcile/trash"
    assert not trash.exists() or not any(trash.iterdir())
    capsys.readouterr()
    assert run(installed, "drift") == 0
    assert "No changes" in plan_text(installed, capsys)


def test_a_prefix_a_declared_closure_needs_is_never_removed(
    installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_install(installed, '["greetlib"]', "\nprune = true")
    out = plan_text(installed, capsys)
    assert "remove greetlib" not in out and "remove gcc-runtime" not in out
    assert run(installed, "apply", "--yes") == 0
    assert set(records(installed)) == {"greetlib", "gcc-runtime"}


def test_what_a_kept_prefix_needs_is_kept(
    installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """hello-app belongs to another manifest: it stays, and so does greetlib it needs."""
    folder = installed.parent / "opt" / ".reconcile" / "records"
    for path in folder.glob("*.json"):
        data = json.loads(path.read_text())
        if data["name"] == "hello-app":
            data["owner"] = "team-b"
            path.write_text(json.dumps(data))
    set_install(installed, '["gcc-runtime"]', "\nprune = true")
    out = plan_text(installed, capsys)
    assert "installed by another manifest (team-b)" in out
    assert "needed at run time by hello-app" in out
    assert "- remove" not in out
    assert run(installed, "apply", "--yes") == 0
    assert set(records(installed)) == {"hello-app", "greetlib", "gcc-runtime"}


def test_a_prefix_another_manifest_owns_is_never_removed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two manifests share one root; each prunes only what it installed."""
    first = write_manifest(tmp_path)
    assert run(first, "apply", "--yes") == 0
    second = tmp_path / "other.toml"
    second.write_text(first.read_text())
    set_install(second, '["greetlib"]', '\nprune = true\nowner = "team-b"')
    out = plan_text(second, capsys)
    assert "installed by another manifest (../reconcile.toml)" in out
    assert "- remove" not in out
    assert run(second, "apply", "--yes") == 0
    assert run_hello(installed_prefix(tmp_path / "opt", "hello-app"))


def test_a_prefix_without_an_owner_is_never_removed(
    installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Records written before owners were kept name no manifest: never pruned."""
    folder = installed.parent / "opt" / ".reconcile" / "records"
    for path in folder.glob("*.json"):
        data = json.loads(path.read_text())
        data.pop("owner")
        path.write_text(json.dumps(data))
    set_install(installed, '["greetlib"]', "\nprune = true")
    out = plan_text(installed, capsys)
    assert "names no manifest" in out and "- remove" not in out


def test_a_drifted_prefix_is_removed_only_with_force(
    installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = installed_prefix(installed.parent / "opt", "hello-app")
    (app / "notes.txt").write_text("mine")
    set_install(installed, '["greetlib"]', "\nprune = true")
    out = plan_text(installed, capsys)
    assert "- remove" not in out and "remove it anyway with --force" in out
    assert run(installed, "apply", "--yes") == 0
    assert (app / "notes.txt").read_text() == "mine"
    out = plan_text(installed, capsys, "--force")
    assert "- remove hello-app@3.0/" in out and "(--force)" in out
    assert run(installed, "apply", "--yes", "--force") == 0
    assert not app.exists()


def test_a_prefix_without_a_record_is_never_removed(
    installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A record gone between plan and apply: the prefix is no longer reconcile's."""
    set_install(installed, '["greetlib"]', "\nprune = true")
    app = installed_prefix(installed.parent / "opt", "hello-app")
    saved = installed.parent / "plan.json"
    assert run(installed, "plan", "--out", str(saved)) == 0
    plan = _fresh_plan(installed)
    assert [a.kind for a in plan.actions] == ["remove"]
    folder = installed.parent / "opt" / ".reconcile" / "records"
    for path in folder.glob("*.json"):
        if json.loads(path.read_text())["name"] == "hello-app":
            path.unlink()
    with pytest.raises(ApplyError, match="install record is gone or changed"):
        _apply(installed, plan)
    assert app.is_dir()
    capsys.readouterr()
    assert run(installed, "apply", str(saved)) == 1
    assert app.is_dir()
    assert "- remove" not in plan_text(installed, capsys)  # no record: not ours


def test_files_changed_after_the_plan_stop_the_removal(installed: Path) -> None:
    set_install(installed, '["greetlib"]', "\nprune = true")
    app = installed_prefix(installed.parent / "opt", "hello-app")
    plan = _fresh_plan(installed)
    (app / "bin" / "hello-app").write_bytes(b"someone's work")
    with pytest.raises(ApplyError, match="differ from its install record since the plan"):
        _apply(installed, plan)
    assert (app / "bin" / "hello-app").read_bytes() == b"someone's work"


def test_a_removal_killed_midway_converges(
    installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_install(installed, '["greetlib"]', "\nprune = true")
    app = installed_prefix(installed.parent / "opt", "hello-app")
    killed = run_subprocess(
        installed, "apply", "--yes", env={"RECONCILE_CRASH_AT": "removal-aside"}
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not app.exists()  # renamed into the trash in one step: gone, never half there
    out = plan_text(installed, capsys)
    assert "only its install record is removed" in out
    again = run_subprocess(installed, "apply", "--yes")
    assert again.returncode == 0, again.stderr
    assert set(records(installed)) == {"greetlib", "gcc-runtime"}
    trash = installed.parent / "opt/.reconcile/trash"
    assert not trash.exists() or not any(trash.iterdir())
    assert run_subprocess(installed, "drift").returncode == 0


def _fresh_plan(manifest: Path) -> Plan:
    loaded = load_manifest(manifest)
    with TransportPool(endpoints_of(loaded)) as pool:
        return observe_and_plan(loaded, pool)


def _apply(manifest: Path, plan: Plan) -> None:
    loaded = load_manifest(manifest)
    with TransportPool(endpoints_of(loaded)) as pool:
        apply_plan(plan, loaded, pool, SilentReporter())
