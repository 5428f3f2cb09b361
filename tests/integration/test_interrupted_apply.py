"""An apply killed with SIGKILL leaves no half-installed prefix, and the next one converges."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from support import run_subprocess, write_manifest
from test_fixture_install import check_hello_works

PREFIX_NAMES = ("hello-app-3.0-", "greetlib-2.1-", "gcc-runtime-12.2.0-")


def final_prefixes(root: Path) -> list[Path]:
    if not root.exists():
        return []
    return [p for p in root.iterdir() if p.name.startswith(PREFIX_NAMES)]


@pytest.mark.parametrize(
    "crash_at",
    ["after-download", "after-relocate", "mid-unpack", "before-rename", "after-first-rename"],
)
def test_killed_apply_converges(tmp_path: Path, crash_at: str) -> None:
    manifest = write_manifest(tmp_path)
    root = tmp_path / "opt"
    killed = run_subprocess(manifest, "apply", "--yes", env={"RECONCILE_CRASH_AT": crash_at})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    prefixes = final_prefixes(root)
    if crash_at == "after-first-rename":
        # dependencies first: only gcc-runtime was committed, complete, with its record
        assert [p.name.split("-12.2.0")[0] for p in prefixes] == ["gcc-runtime"]
        assert len(list((root / ".reconcile/records").glob("*.json"))) == 1
    else:
        assert prefixes == []
    # every staged file lives under the staging folder, never under a final name
    for path in root.rglob("*"):
        rel = path.relative_to(root).parts
        assert (
            rel[0] == ".reconcile"
            or path in prefixes
            or any(path.is_relative_to(p) for p in prefixes)
        ), path

    again = run_subprocess(manifest, "apply", "--yes")
    assert again.returncode == 0, again.stderr
    check_hello_works(root)
    staging = root / ".reconcile" / "staging"
    assert not staging.exists() or list(staging.iterdir()) == []
    plan = run_subprocess(manifest, "plan", "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr
