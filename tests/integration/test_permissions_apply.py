"""[install.permissions] on install, and on prefixes installed before it changed."""

from __future__ import annotations

import grp
import json
import os
import stat
from pathlib import Path

import pytest
from support import installed_prefix, run, run_hello, write_manifest


def some_group() -> grp.struct_group:
    """An existing group other than the process's own (so that chown is visible)."""
    own = os.getgid()
    return next(g for g in grp.getgrall() if g.gr_gid != own)


def test_permissions_on_install(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    group = some_group()
    manifest = write_manifest(
        tmp_path, permissions={"read": "group", "write": "user", "group": group.gr_name}
    )
    assert run(manifest, "apply", "--yes") == 0
    hello = installed_prefix(tmp_path / "opt", "hello-app")
    binary = (hello / "bin" / "hello-app").lstat()
    assert stat.S_IMODE(binary.st_mode) == 0o750
    assert binary.st_gid == group.gr_gid
    folder = (hello / "bin").lstat()
    assert stat.S_IMODE(folder.st_mode) == 0o2750
    text = (hello / "bin" / "hello-app-wrapper").lstat()
    assert stat.S_IMODE(text.st_mode) == 0o750  # an executable script keeps its x bits
    spec_json = (hello / ".spack" / "spec.json").lstat()
    assert stat.S_IMODE(spec_json.st_mode) == 0o640
    assert run_hello(hello)[2] == "greetlib 2.1 says hello."


def test_changed_permissions_are_planned_and_applied(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path)
    assert run(manifest, "apply", "--yes") == 0
    capsys.readouterr()
    manifest = write_manifest(tmp_path, permissions={"read": "user", "write": "user"})
    assert run(manifest, "plan", "--detailed-exitcode") == 2
    out = capsys.readouterr().out
    assert out.count("~ permissions ") == 3
    assert "Plan: 0 to install, 3 to change" in out
    assert run(manifest, "apply", "--yes") == 0
    assert "3 permissions changed" in capsys.readouterr().out
    root = tmp_path / "opt"
    hello = installed_prefix(root, "hello-app")
    assert stat.S_IMODE((hello / "bin" / "hello-app").lstat().st_mode) == 0o700
    assert stat.S_IMODE((hello / "share").lstat().st_mode) == 0o700
    record = json.loads(next((root / ".reconcile" / "records").glob("d7r6*.json")).read_text())
    assert record["permissions"]["read"] == "user"
    modes = {e["path"]: e["mode"] for e in record["entries"]}
    assert modes["bin/hello-app"] == 0o700
    assert run(manifest, "plan", "--detailed-exitcode") == 0
