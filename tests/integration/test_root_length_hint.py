"""The cannot-grow-string hint gives the longest root that works for the manifest's
projection, and a root of exactly that length does install."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support import run, write_manifest
from test_fixture_install import check_hello_works


def _root_of_length(base: Path, length: int) -> Path:
    room = length - len(str(base)) - 1
    assert room > 0
    return base / ("r" * room)


def test_hint_names_the_longest_root_that_installs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    too_long = _root_of_length(tmp_path, 200)
    manifest = write_manifest(tmp_path, root=str(too_long))
    assert run(manifest, "apply", "--yes") == 1
    err = capsys.readouterr().err
    assert "error[cannot-grow-string]" in err
    found = re.search(r"use an install root of at most (\d+) characters", err)
    assert found is not None, err
    longest = int(found.group(1))
    assert 128 < longest < 200  # longer than the built root: the projection is shorter
    fits = _root_of_length(tmp_path, longest)
    assert run(write_manifest(tmp_path / "fits", root=str(fits)), "apply", "--yes") == 0
    check_hello_works(fits)
    one_more = _root_of_length(tmp_path, longest + 1)
    assert run(write_manifest(tmp_path / "over", root=str(one_more)), "apply", "--yes") == 1
