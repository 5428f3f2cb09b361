"""A symlink planted inside a cache root, an install root's state folder or a mirror being
written is never followed (issue 14, item 3): each run below ends in ``error[...]`` naming
the link, and the victim folder the link points at is left exactly as it was.

The links are relative (``cache/blobs/sha256/74 -> ../../../victim``), as a co-tenant with
write access to the shared folder would plant them. Every case runs the real CLI.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import FIXTURE_FPR, FIXTURE_KEY, FIXTURES, SIGNED_CACHE
from support import run_subprocess, write_manifest
from test_fixture_install import SPACK_PROJECTION
from test_mirror_sync import sync_manifest
from test_source_mirror_cli import source_manifest

SPACK1 = FIXTURES / "spack1-v3-signed"
SPACK1_FPR = "E19558C059B19311A4EB227B03683E7D4E8545AB"


def _install(folder: Path) -> Path:
    return write_manifest(folder, extra='\n[[cache]]\nroot = "cache"\n')


def _install_in_folders(folder: Path) -> Path:
    return write_manifest(folder, projection=SPACK_PROJECTION)


def _sync_v2(folder: Path) -> Path:
    return sync_manifest(folder, layout=2)


def _sync_v3(folder: Path) -> Path:
    manifest = sync_manifest(folder, layout=3)
    text = manifest.read_text().replace(str(SIGNED_CACHE), str(SPACK1))
    text = text.replace(str(FIXTURE_KEY), str(FIXTURES / "keys" / f"{SPACK1_FPR}.pub"))
    manifest.write_text(text.replace(FIXTURE_FPR, SPACK1_FPR))
    return manifest


def _sources(folder: Path) -> Path:
    return source_manifest(folder)


# (case, manifest maker, where the link is planted, relative to the manifest's folder)
CASES: list[tuple[str, Callable[[Path], Path], str]] = [
    ("cache blob folder", _install, "cache/blobs/sha256/74"),
    ("cache blobs/sha256", _install, "cache/blobs/sha256"),
    ("cache blobs", _install, "cache/blobs"),
    ("install state folder", _install, "opt/.reconcile"),
    ("install records", _install, "opt/.reconcile/records"),
    ("install staging", _install, "opt/.reconcile/staging"),
    ("install prefix parent", _install_in_folders, "opt/linux-debian12-x86_64_v4"),
    ("install prefix grandparent", _install_in_folders, "opt/linux-debian12-x86_64_v4/gcc-12.2.0"),
    ("mirror build_cache", _sync_v2, "site/build_cache"),
    ("mirror build_cache arch folder", _sync_v2, "site/build_cache/linux-debian12-x86_64_v4"),
    ("mirror layout-3 blobs", _sync_v3, "site/blobs"),
    ("mirror layout-3 blobs/sha256", _sync_v3, "site/blobs/sha256"),
    ("mirror layout-3 manifests", _sync_v3, "site/v3/manifests"),
    ("source mirror archive folder", _sources, "sources/_source-cache/archive"),
    ("source mirror package folder", _sources, "sources/greetlib"),
]


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    return {
        str(path.relative_to(folder)): None if path.is_dir() else path.read_bytes()
        for path in sorted(folder.rglob("*"))
    }


def _plant(base: Path, where: str, victim: Path) -> Path:
    link = base / where
    link.parent.mkdir(parents=True, exist_ok=True)
    # A staging folder of an "older run" in the victim: a sweep through the link would
    # remove it; a record-like file: a write through it would replace it.
    link.symlink_to(os.path.relpath(victim, link.parent))
    return link


@pytest.mark.parametrize(("make", "where"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_planted_link_is_refused_and_nothing_outside_is_touched(
    tmp_path: Path, make: Callable[[Path], Path], where: str
) -> None:
    victim = tmp_path / "victim"
    (victim / "run-1-deadbeef").mkdir(parents=True)
    (victim / "run-1-deadbeef" / "keep").write_text("not reconcile's")
    (victim / "precious.txt").write_text("owned by someone else\n")
    before = _snapshot(victim)
    base = tmp_path / "job"
    manifest = make(base)
    link = _plant(base, where, victim)

    done = run_subprocess(manifest, "apply", "--yes")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "error[" in done.stderr
    assert str(link) in done.stderr, done.stderr
    assert _snapshot(victim) == before
    assert link.is_symlink()  # refused, not "repaired" either


@pytest.mark.parametrize(
    "command",
    [("cache", "list"), ("cache", "gc", "--max-size", "0"), ("plan",), ("apply", "--yes")],
    ids=["cache-list", "cache-gc", "plan", "apply"],
)
def test_a_link_planted_in_a_used_cache_root_is_refused_by_every_command(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    """After a good run filled the cache, a co-tenant swaps a blob folder for a link to a
    folder holding a file under the blob's name: nothing reads, lists or removes it."""
    base = tmp_path / "job"
    manifest = _install(base)
    first = run_subprocess(manifest, "apply", "--yes")
    assert first.returncode == 0, first.stderr
    blobs = base / "cache/blobs/sha256/74"
    victim = tmp_path / "victim"
    blobs.rename(victim)  # the victim holds files named like blobs and records
    before = _snapshot(victim)
    if command[0] in ("plan", "apply"):  # greetlib is to be installed again: from the cache
        (record,) = (base / "opt/.reconcile/records").glob("yrhiacw*.json")
        record.unlink()
        (prefix,) = (base / "opt").glob("greetlib-*")
        shutil.rmtree(prefix)
    link = _plant(base, "cache/blobs/sha256/74", victim)

    done = run_subprocess(manifest, *command)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "error[link-in-root]" in done.stderr, done.stderr
    assert str(link) in done.stderr
    assert _snapshot(victim) == before
