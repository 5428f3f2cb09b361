"""What plan and apply say about source mirrors and the quickstart, in words a newcomer can
take literally: a sources-only manifest has no install tree, an upstream URL is not a
mirror, source bytes are not "of tarballs", adopted archives are counted, and an external
counted as unchanged is named as one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import REPO
from shared_with_symlinks import build_shared_copy
from support import run
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
