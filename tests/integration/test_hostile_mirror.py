"""Hostile tarballs served from a mirror: refused with the rule named, root untouched.

The tarballs come from ``tests/archive/hostile.py``; here each is published (with a correct
checksum: the attack is in the archive, not in transit) and installed through the CLI.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import GREETLIB_HASH, REPO, UNSIGNED_CACHE
from support import run, snapshot, write_manifest

from reconcile.buildcache.writer_v2 import write_index_v2, write_spec_v2
from reconcile.spack.spec import parse_node

sys.path.insert(0, str(REPO / "tests" / "archive"))
import hostile


def victim_document(depends_on: dict[str, Any] | None = None) -> dict[str, Any]:
    node: dict[str, Any] = {
        "name": "victim",
        "version": "1.0",
        "arch": {"platform": "linux", "platform_os": "debian12", "target": "x86_64_v4"},
        "compiler": {"name": "gcc", "version": "12.2.0"},
        "namespace": "builtin",
        "parameters": {},
        "hash": hostile.DAG_HASH,
    }
    nodes = [node]
    if depends_on is not None:
        node["dependencies"] = [
            {
                "name": depends_on["name"],
                "hash": depends_on["hash"],
                "parameters": {"deptypes": ["link", "run"], "virtuals": []},
            }
        ]
        nodes.append(depends_on)
    return {"spec": {"_meta": {"version": 4}, "nodes": nodes}}


def publish_victim(mirror: Path, tarball: Path, depends_on: dict[str, Any] | None = None) -> None:
    document = victim_document(depends_on)
    write_spec_v2(mirror, spec_document=document, tarball=tarball, signer=None)
    write_index_v2(mirror, [parse_node(n) for n in document["spec"]["nodes"]])


def refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], mirror: Path) -> str:
    root = tmp_path / "opt"
    root.mkdir()
    (root / "keep.txt").write_text("mine\n")
    before = snapshot(root)
    manifest = write_manifest(
        tmp_path, specs=["victim"], mirror=mirror, signed=False, key_file=None
    )
    assert run(manifest, "apply", "--yes") == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert snapshot(root) == before
    assert not (tmp_path / hostile.ESCAPED).exists()
    assert not list(tmp_path.rglob(hostile.ESCAPED))
    return err


@pytest.mark.parametrize("attack", sorted(hostile.ATTACKS))
def test_hostile_tarball_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], attack: str
) -> None:
    spec = hostile.ATTACKS[attack]
    tarball = spec.build(tmp_path / f"{attack}.spack")
    mirror = tmp_path / "mirror"
    publish_victim(mirror, tarball)
    err = refused(tmp_path, capsys, mirror)
    assert "victim" in err
    assert spec.rule in err


def test_three_specs_last_one_bad_commits_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """gcc-runtime and greetlib are fine; victim (installed last) is hostile: nothing lands."""
    mirror = tmp_path / "mirror"
    shutil.copytree(UNSIGNED_CACHE, mirror)
    for path in [mirror, *mirror.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    index = json.loads((mirror / "build_cache" / "index.json").read_text())
    greetlib = index["database"]["installs"][GREETLIB_HASH]["spec"]
    tarball = hostile.ATTACKS["symlink_escape_absolute"].build(tmp_path / "victim.spack")
    publish_victim(mirror, tarball, depends_on=greetlib)
    manifest = write_manifest(
        tmp_path, specs=["victim"], mirror=mirror, signed=False, key_file=None
    )
    assert run(manifest, "plan") == 0
    plan_out = capsys.readouterr().out
    assert plan_out.index("gcc-runtime") < plan_out.index("greetlib") < plan_out.index("victim")
    err = refused(tmp_path, capsys, mirror)
    assert "symlink" in err
