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


@pytest.mark.parametrize(
    ("argv", "reference"),
    [
        (["plan", "--json", "--no-such-option"], "usage"),
        (["keys", "generate", "--json"], "usage"),  # NAME missing
        (["mirror", "list", "no-such-mirror", "--json"], "usage"),
        (["keys", "export", "no-such-key", "--json"], "signing-home-missing"),
        (["bundle", "import", "/no/such/bundle.tar", "new-folder", "--json"], "bundle-refused"),
        (["apply", "--yes", "--json"], "plan-failed"),
    ],
)
def test_every_verb_fails_in_json_when_asked(
    tmp_path: Path, argv: list[str], reference: str
) -> None:
    manifest = write_manifest(tmp_path, specs=["no-such-spec"])
    env = {"RECONCILE_SIGNING_HOME": str(tmp_path / "no-home"), "GNUPGHOME": str(tmp_path)}
    done = run_subprocess(manifest, *argv, env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    error = _json_error(done.stdout)
    assert error["reference"] == reference, error
    assert error["message"] and "Traceback" not in done.stderr


def test_a_usage_error_without_json_prints_no_json(tmp_path: Path) -> None:
    done = run_subprocess(write_manifest(tmp_path), "plan", "--no-such-option")
    assert done.returncode == 1
    assert done.stdout == "" and "unrecognized arguments" in done.stderr
