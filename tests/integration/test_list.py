"""`reconcile list`: installed specs from the records, and why each is there."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import FIXTURE_FPR
from support import run, write_manifest


def test_list_after_install_and_after_a_spec_is_dropped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path, specs=["hello-app"])
    assert run(manifest, "list") == 0
    assert "Nothing installed under" in capsys.readouterr().out
    assert run(manifest, "apply", "--yes") == 0
    capsys.readouterr()
    assert run(manifest, "list", "--json") == 0
    listing = json.loads(capsys.readouterr().out)
    status = {row["name"]: row["status"] for row in listing["installed"]}
    assert status == {
        "hello-app": "declared",
        "greetlib": "dependency",
        "gcc-runtime": "dependency",
    }
    app = next(row for row in listing["installed"] if row["name"] == "hello-app")
    assert app["signer"] == FIXTURE_FPR and app["mirror"] == "team" and app["size"] > 0
    assert app["present"] is True
    # Declaring greetlib only: hello-app is no longer declared, gcc-runtime still needed.
    write_manifest(tmp_path, specs=["greetlib"])
    shutil.rmtree(app["prefix"])
    assert run(manifest, "list") == 0
    out = capsys.readouterr().out
    assert "hello-app@3.0/d7r6xmz  undeclared" in out and "(prefix missing)" in out
    assert "greetlib@2.1/yrhiacw  declared" in out
    assert "3 installed: 1 declared, 1 dependencies, 1 no longer declared." in out
