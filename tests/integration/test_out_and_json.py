"""Output files are named ``--out FILE`` everywhere (old spellings still work, with a
warning), and ``keys generate``, ``keys export`` and ``bundle`` speak JSON with ``--json``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
from conftest import REPO
from support import write_manifest

ERROR_SCHEMA = json.loads((REPO / "schemas" / "error.schema.json").read_text())


def _cli(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    # keys are made in a private home inside the test's folder, never the user's
    env = {**os.environ, "PYTHONPATH": str(REPO), "RECONCILE_SIGNING_HOME": str(cwd / "home")}
    return subprocess.run(
        [sys.executable, "-m", "reconcile", *argv],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def _json(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stdout + done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def test_keys_generate_and_export_with_out_and_json(tmp_path: Path) -> None:
    manifest = tmp_path / "reconcile.toml"
    made = _json(
        _cli(tmp_path, "-m", str(manifest), "keys", "generate", "ci", "--out", "ci.pub", "--json"),
    )
    assert made["name"] == "ci" and made["kind"] == "gpg"
    assert made["public_key_file"] == str(tmp_path / "ci.pub")
    assert (tmp_path / "ci.pub").read_text().startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    [entry] = tomllib.loads(made["entry"])["key"]
    assert entry["fingerprint"] == made["fingerprint"] and entry["file"] == "ci.pub"

    exported = _json(_cli(tmp_path, "-m", str(manifest), "keys", "export", "ci", "--json"))
    assert exported["public_key"] == (tmp_path / "ci.pub").read_text()
    written = _json(
        _cli(tmp_path, "-m", str(manifest), "keys", "export", "ci", "--out", "again.pub", "--json")
    )
    assert written["out"] == str(tmp_path / "again.pub") and not written["secret"]
    assert made["home"] == str(tmp_path / "home")


def test_the_old_public_out_spelling_still_works_and_warns(tmp_path: Path) -> None:
    manifest = tmp_path / "reconcile.toml"
    done = _cli(tmp_path, "-m", str(manifest), "keys", "generate", "ci", "--public-out", "x.pub")
    assert done.returncode == 0, done.stderr
    assert "warning: --public-out is deprecated; use --out FILE" in done.stderr
    assert (tmp_path / "x.pub").is_file()
    assert tomllib.loads(done.stdout)["key"][0]["file"] == "x.pub"


def test_bundle_export_and_import_with_out_and_json(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "work")
    done = _cli(tmp_path, "-m", str(manifest), "bundle", "export", "--out", "site.tar")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Wrote {tmp_path / 'site.tar'}: ")
    assert "deprecated" not in done.stderr
    as_json = _cli(tmp_path, "-m", str(manifest), "bundle", "export", "--out", "b.tar", "--json")
    document = _json(as_json)
    assert document == {
        "out": str(tmp_path / "b.tar"),
        "specs": document["specs"],
        "sources": 0,
        "keys": 1,
    }
    assert document["specs"] >= 3
    imported = _json(_cli(tmp_path, "bundle", "import", "b.tar", str(tmp_path / "site"), "--json"))
    assert imported["signed"] is True and imported["dest"] == str(tmp_path / "site")
    assert Path(imported["manifest"]).is_file()


def test_bundle_export_names_its_file_one_way(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "work")
    old = _cli(tmp_path, "-m", str(manifest), "bundle", "export", str(tmp_path / "old.tar"))
    assert old.returncode == 0, old.stderr
    assert "warning: 'bundle export OUT.tar' is deprecated; use --out FILE" in old.stderr
    assert (tmp_path / "old.tar").is_file()
    for argv in ([], ["--out", "a.tar", "b.tar"]):
        done = _cli(tmp_path, "-m", str(manifest), "bundle", "export", *argv, "--json")
        assert done.returncode != 0
        document = json.loads(done.stdout)
        jsonschema.validate(document, ERROR_SCHEMA)
        assert document["error"]["reference"] == "usage"
        assert "--out" in document["error"]["message"]
