"""``reconcile cache list`` and ``reconcile cache gc`` on a manifest with layered roots."""

from __future__ import annotations

import argparse
import importlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cache_support import (
    GCC_RUNTIME_SHA,
    GREETLIB_SHA,
    HELLO_SHA,
    file_download,
    sha256_hex,
    tarball_url,
)
from conftest import FIXTURE_FPR, FIXTURE_KEY, SIGNED_CACHE

from reconcile.cache.roots import cache_roots_of
from reconcile.cache.store import BlobCache
from reconcile.cli.cache_cmd import run_cache
from reconcile.cli.verb_parsers import add_cache_parser
from reconcile.errors import ReconcileError
from reconcile.manifest.load import load_manifest

PR_PREFIX = "https://mirror.example.org/pr-1234/"
JUNK = b"an old build of this pull request"
JUNK_SHA = sha256_hex(JUNK)
WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LABELS = {
    GCC_RUNTIME_SHA: "gcc-runtime@12.2.0/75b4t5r",
    GREETLIB_SHA: "greetlib@2.1/yrhiacw",
    HELLO_SHA: "hello-app@3.0/d7r6xmz",
}
NAMES = {GCC_RUNTIME_SHA: "gcc-runtime", GREETLIB_SHA: "greetlib", HELLO_SHA: "hello-app"}


def _manifest(folder: Path, *, caches: bool = True) -> Path:
    text = f"""version = 1

[install]
root = "opt"
padded_length = 128
specs = ["hello-app@3.0"]

[[mirror]]
name = "fixture"
url = "{SIGNED_CACHE}"

[[key]]
name = "fixture"
fingerprint = "{FIXTURE_FPR}"
file = "{FIXTURE_KEY}"
"""
    if caches:
        text += f"""
[[cache]]
root = "ci-cache/pr"
prefixes = ["{PR_PREFIX}"]

[[cache]]
root = "ci-cache/shared"
"""
    path = folder / "reconcile.toml"
    path.write_text(text)
    return path


def _filled(tmp_path: Path) -> Path:
    """The fixture's three tarballs in the shared root, an unrelated blob in the PR's."""
    manifest = _manifest(tmp_path)
    cache = BlobCache(cache_roots_of(load_manifest(manifest)), clock=lambda: WHEN)
    for sha, name in NAMES.items():
        url = tarball_url(name)
        assert cache.store_download(url, sha, LABELS[sha], file_download(url)) is not None
    junk_url = PR_PREFIX + "junk.spack"
    stored = cache.store_download(
        junk_url, JUNK_SHA, "junk@1/aaaaaaa", lambda p: p.write_bytes(JUNK)
    )
    assert stored is not None
    return manifest


def _run(manifest: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="reconcile")
    add_cache_parser(parser.add_subparsers(dest="command", required=True))
    return run_cache(parser.parse_args(["cache", *argv]), manifest)


def test_list_shows_each_root_with_its_blobs_and_totals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _filled(tmp_path)
    assert _run(manifest, "list") == 0
    when = WHEN.astimezone().strftime("%Y-%m-%d %H:%M")
    shared = sorted(NAMES)
    expected = [
        f"{tmp_path}/ci-cache/pr (for URLs under {PR_PREFIX})",
        f"  {JUNK_SHA[:12]}        {len(JUNK)} B  used {when}  junk@1/aaaaaaa",
        f"      from {PR_PREFIX}junk.spack",
        f"  1 blob, {len(JUNK)} B",
        f"{tmp_path}/ci-cache/shared (for every URL)",
    ]
    sizes = {GCC_RUNTIME_SHA: "   9.1 MiB", GREETLIB_SHA: "   9.5 KiB", HELLO_SHA: "   9.6 KiB"}
    for sha in shared:
        expected.append(f"  {sha[:12]}  {sizes[sha]}  used {when}  {LABELS[sha]}")
        expected.append(f"      from {tarball_url(NAMES[sha])}")
    expected += ["  3 blobs, 9.1 MiB", "Total: 4 blobs, 9.1 MiB in 2 cache roots."]
    assert capsys.readouterr().out.splitlines() == expected


def test_list_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = _filled(tmp_path)
    assert _run(manifest, "list", "--json") == 0
    document = json.loads(capsys.readouterr().out)
    assert document["total_blobs"] == 4
    pr, shared = document["roots"]
    assert pr["path"] == str(tmp_path / "ci-cache" / "pr")
    assert pr["prefixes"] == [PR_PREFIX]
    assert [blob["sha256"] for blob in pr["blobs"]] == [JUNK_SHA]
    assert shared["prefixes"] == []
    assert {blob["sha256"]: blob["specs"] for blob in shared["blobs"]} == {
        sha: [label] for sha, label in LABELS.items()
    }
    assert document["total_bytes"] == pr["bytes"] + shared["bytes"]
    assert shared["blobs"][0]["last_used"] == WHEN.isoformat()


def test_list_before_anything_is_cached(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = _manifest(tmp_path)
    assert _run(manifest, "list") == 0
    out = capsys.readouterr().out
    assert "(the folder does not exist yet)" in out
    assert out.endswith("Total: 0 blobs, 0 B in 2 cache roots.\n")
    assert not (tmp_path / "ci-cache").exists()  # listing writes nothing


def test_a_manifest_without_cache_roots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = _manifest(tmp_path, caches=False)
    assert _run(manifest, "list") == 0
    assert "no [[cache]] roots are declared" in capsys.readouterr().out
    assert _run(manifest, "gc", "--max-size", "0") == 0
    assert "nothing to remove" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "reference"),
    [
        (["gc"], "usage"),
        (["gc", "--max-size", "10XB"], "invalid-size"),
        (["gc", "--older-than", "7"], "invalid-age"),
    ],
)
def test_gc_refuses_bad_limits_before_touching_anything(
    tmp_path: Path, argv: list[str], reference: str
) -> None:
    manifest = _filled(tmp_path)
    with pytest.raises(ReconcileError) as caught:
        _run(manifest, *argv)
    assert caught.value.reference == reference
    assert caught.value.hint
    assert len(BlobCache(cache_roots_of(load_manifest(manifest))).entries()) == 4


def _has_needed_blobs() -> bool:
    return hasattr(importlib.import_module("reconcile.engine"), "needed_blobs")


@pytest.mark.skipif(
    not _has_needed_blobs(),
    reason="reconcile.engine.needed_blobs (the lead's) does not exist yet",
)
def test_gc_keeps_what_the_manifest_needs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _filled(tmp_path)
    assert _run(manifest, "gc", "--max-size", "0", "--dry-run", "--json") == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["dry_run"] is True
    assert [blob["sha256"] for blob in dry["removed"]] == [JUNK_SHA]
    assert dry["needed_blobs"] == 3
    assert dry["over_budget"] is True
    assert _run(manifest, "gc", "--max-size", "0") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        f"- remove {JUNK_SHA[:12]} ({len(JUNK)} B, junk@1/aaaaaaa) from "
        f"{tmp_path}/ci-cache/pr: least recently used, over --max-size"
    )
    assert out[1] == (
        f"Freed {len(JUNK)} B: 1 blob removed, 3 kept (9.1 MiB, 3 needed by the manifest)."
    )
    assert out[2].startswith("note: the blobs the manifest needs take 9.1 MiB")
    remaining = BlobCache(cache_roots_of(load_manifest(manifest))).entries()
    assert sorted(entry.sha256 for entry in remaining) == sorted(NAMES)


def test_list_shows_the_mirror_indexes_kept_for_revalidation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _manifest(tmp_path)
    cache = BlobCache(cache_roots_of(load_manifest(manifest)))
    index_url = PR_PREFIX + "build_cache/index.json"
    copy = cache.index_copy(index_url)
    assert copy is not None
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_text('{"database": {}}')
    copy.with_name("index.json.meta.json").write_text(json.dumps({"url": index_url}))
    assert _run(manifest, "list", "--json") == 0
    pr, shared = json.loads(capsys.readouterr().out)["roots"]
    assert pr["index_copies"] == [{"url": index_url, "path": str(copy), "size": 16}]
    assert shared["index_copies"] == []
    assert _run(manifest, "list") == 0
    assert "  0 blobs, 0 B; 1 mirror index kept for revalidation, 16 B" in capsys.readouterr().out
