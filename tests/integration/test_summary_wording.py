"""What plan and apply say about source mirrors and the quickstart, in words a newcomer can
take literally: a sources-only manifest has no install tree, an upstream URL is not a
mirror, source bytes are not "of tarballs", adopted archives are counted, and an external
counted as unchanged is named as one."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from shared_with_symlinks import build_shared_copy
from support import installed_prefix, run
from test_source_mirror_cli import SOURCE_MIRROR, source_manifest

from reconcile.state.sources import STATE_FILE


def test_a_sources_only_manifest_from_plan_to_no_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = source_manifest(tmp_path)
    assert run(manifest, "plan") == 0
    out = capsys.readouterr().out
    assert "0 B of tarballs and 2 source archive(s) to fetch" in out

    assert run(manifest, "apply", "--yes") == 0
    out = capsys.readouterr().out
    fetched = [line for line in out.splitlines() if line.startswith("fetched source ")]
    assert len(fetched) == 2
    assert all(" from file:///" in line and "mirror '" not in line for line in fetched)
    assert "2 source archive(s) fetched, 2 linked, 0 B of tarballs and " in out
    assert "of source archives fetched." in out

    assert run(manifest, "plan") == 0
    out = capsys.readouterr().out
    assert "No changes: everything the manifest declares is in place" in out
    assert "install tree" not in out


def test_adopting_archives_counts_the_records_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = source_manifest(tmp_path)
    # the mirror already holds both archives (made by Spack), but reconcile never verified them
    build_shared_copy(SOURCE_MIRROR, tmp_path / "sources", links="symlinks")
    (tmp_path / "sources" / STATE_FILE).unlink(missing_ok=True)
    assert run(manifest, "apply", "--yes") == 0
    out = capsys.readouterr().out
    assert "2 verification record(s) written" in out
    assert "0 source archive(s) fetched" in out


def test_the_quickstarts_unchanged_external_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = tmp_path / "quickstart"
    shutil.copytree(REPO / "examples/quickstart", example, ignore=shutil.ignore_patterns("opt"))
    assert run(example / "reconcile.toml", "plan") == 0
    out = capsys.readouterr().out
    assert "8.2 KiB of tarballs to fetch; 1 unchanged, 1 of them external; plan -v lists" in out
    assert run(example / "reconcile.toml", "plan", "-v") == 0
    assert "external at /usr: never fetched, installed or relocated" in capsys.readouterr().out


def _quickstart_apply_json(tmp_path: Path, *, terminal: bool) -> str:
    example = tmp_path / ("tty" if terminal else "pipe")
    shutil.copytree(REPO / "examples/quickstart", example, ignore=shutil.ignore_patterns("opt"))
    command = [sys.executable, "-m", "reconcile", "-m", "reconcile.toml", "apply", "--yes"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "TERM": "dumb"}
    if not terminal:
        done = subprocess.run(
            [*command, "--json"], cwd=example, env=env, capture_output=True, text=True, check=True
        )
        return done.stdout
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [*command, "--json"],
        cwd=example,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=subprocess.DEVNULL,
    )
    os.close(secondary)
    output = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.close(primary)
    assert process.wait(timeout=120) == 0
    return output.decode().replace("\r\n", "\n")


def test_apply_json_is_indented_on_a_terminal_and_one_line_in_a_pipe(tmp_path: Path) -> None:
    piped = _quickstart_apply_json(tmp_path, terminal=False)
    on_terminal = _quickstart_apply_json(tmp_path, terminal=True)
    assert piped.count("\n") == 1
    assert on_terminal.count("\n") > 10 and on_terminal.startswith("{\n ")
    for text in (piped, on_terminal):
        document = json.loads(text)
        assert len(document["installed"]) == 2
        for documented in ("synced", "mirror_permissions", "sources_recorded"):
            assert documented in document
    table = (REPO / "docs/cli.md").read_text()
    for field in json.loads(piped):
        assert f"`{field}`" in table or f"`{field}`," in table, field


def test_installed_prefixes_keep_the_tarballs_mtimes_and_the_record_says_when(
    tmp_path: Path,
) -> None:
    """The documented decision (docs/cli.md, "Timestamps inside installed prefixes")."""
    _quickstart_apply_json(tmp_path, terminal=False)
    root = tmp_path / "pipe" / "opt"
    prefix = installed_prefix(root, "qs-hello")
    assert prefix.stat().st_mtime == 0 and (prefix / "bin").stat().st_mtime == 0
    record = json.loads(next((root / ".reconcile/records").glob("*.json")).read_text())
    assert not record["installed_at"].startswith("1970")
