"""Every stream of the hostile corpus (``hostile_blocks.py``) through ``unpack_package``:
refused with exactly its rule, in a message of readable length, nothing written outside
staging; or accepted with the package intact."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hostile_blocks import CORPUS

from reconcile.archive.unpack import unpack_package
from reconcile.errors import ArchiveError


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_each_hostile_archive_gets_its_verdict(name: str, tmp_path: Path) -> None:
    build, rule = CORPUS[name]
    tarball = tmp_path / "t.spack"
    tarball.write_bytes(gzip.compress(build(), 1))
    staging = tmp_path / "staging"
    if rule is None:
        unpacked = unpack_package(tarball, staging, signed_size=tarball.stat().st_size)
        assert (unpacked.prefix_dir / "tool").read_bytes() == b"#!/bin/sh\n"
        return
    with pytest.raises(ArchiveError) as caught:
        unpack_package(tarball, staging, signed_size=tarball.stat().st_size)
    message = str(caught.value)
    assert f"breaks rule '{rule}'" in message
    assert "Traceback" not in message and len(message) < 2000
    assert not list(tmp_path.rglob("*evil*")) and not list(tmp_path.rglob("late"))
