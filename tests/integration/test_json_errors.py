"""Under --json, a failing command still prints JSON (on stdout), and keeps its exit code."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from conftest import REPO
from support import run_subprocess, write_manifest

ERROR_SCHEMA = json.loads((REPO / "schemas" / "error.schema.json").read_text())


def _json_error(done_stdout: str) -> dict[str, object]:
    document = json.loads(done_stdout)
    jsonschema.validate(document, ERROR_SCHEMA)
    error = document["error"]
    assert isinstance(error, dict)
    return error


def test_plan_error_as_json(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, specs=["no-such-spec"])
    done = run_subprocess(manifest, "plan", "--json")
    assert done.returncode == 1
    error = _json_error(done.stdout)
    assert error["reference"] == "plan-failed"
    assert "no-such-spec" in str(error["message"])
    assert error["hint"]
    assert "error[plan-failed]" in done.stderr  # people reading the log still see it


def test_manifest_error_as_json_lists_located_problems(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path)
    manifest.write_text(manifest.read_text().replace('name = "team"', 'name = "team"\nurl_ = 1'))
    done = run_subprocess(manifest, "validate", "--json")
    assert done.returncode == 1
    error = _json_error(done.stdout)
    assert error["reference"] == "invalid-manifest"
    problems = error["problems"]
    assert isinstance(problems, list) and len(problems) == 1
    assert problems[0]["line"] > 0 and problems[0]["column"] > 0
    assert "url_" in problems[0]["message"]


@pytest.mark.parametrize("verb", [["validate"], ["plan"]])
def test_success_is_json_too(tmp_path: Path, verb: list[str]) -> None:
    manifest = write_manifest(tmp_path)
    done = run_subprocess(manifest, *verb, "--json")
    assert done.returncode == 0, done.stderr
    assert isinstance(json.loads(done.stdout), dict)
