"""End to end through the executor: a wiped install root is filled again from the cache
roots without downloading, and a corrupt cached tarball is evicted and fetched again."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cache_support import GCC_RUNTIME_SHA, GREETLIB_SHA, HELLO_SHA
from conftest import FIXTURE_FPR, FIXTURE_KEY

from reconcile.cache.open import open_blob_cache
from reconcile.cache.roots import cache_roots_of
from reconcile.cache.store import BlobCache
from reconcile.cli.main import main
from reconcile.manifest.load import load_manifest


def _manifest(folder: Path, mirror: Path) -> Path:
    path = folder / "reconcile.toml"
    path.write_text(
        f"""version = 1

[install]
root = "opt"
padded_length = 128
specs = ["hello-app@3.0"]

[[mirror]]
name = "team"
url = "{mirror}"

[[key]]
name = "fixture"
fingerprint = "{FIXTURE_FPR}"
file = "{FIXTURE_KEY}"

[[cache]]
root = "ci-cache/team"
prefixes = ["{mirror}/"]

[[cache]]
root = "ci-cache/shared"
"""
    )
    return path


def _hello_says_hello(install_root: Path) -> None:
    records = [json.loads(p.read_text()) for p in install_root.glob(".reconcile/records/*")]
    (prefix,) = [record["prefix"] for record in records if record["name"] == "hello-app"]
    done = subprocess.run(
        [f"{prefix}/bin/hello-app"], capture_output=True, text=True, check=True, timeout=30
    )
    assert "greetlib 2.1 says hello." in done.stdout


def _apply(manifest: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main(["-m", str(manifest), "apply", "--yes", "--json"]) == 0
    result: dict[str, object] = json.loads(capsys.readouterr().out)
    return result


def test_a_wiped_install_root_is_filled_again_from_the_cache(
    tmp_path: Path, signed_cache_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _manifest(tmp_path, signed_cache_copy)
    cold = _apply(manifest, capsys)
    assert cold["bytes_fetched"] == 9861 + 9708 + 9566481
    cache = BlobCache(cache_roots_of(load_manifest(manifest)))
    entries = cache.entries()
    # Written to the root whose prefix matches the mirror, not to the shared one.
    assert sorted(entry.sha256 for entry in entries) == sorted(
        [HELLO_SHA, GREETLIB_SHA, GCC_RUNTIME_SHA]
    )
    assert {entry.root for entry in entries} == {tmp_path / "ci-cache" / "team"}
    assert {label.split("@")[0] for entry in entries for label in entry.specs} == {
        "hello-app",
        "greetlib",
        "gcc-runtime",
    }
    _hello_says_hello(tmp_path / "opt")

    # The CI runner wipes its install tree; the next job finds every tarball cached.
    shutil.rmtree(tmp_path / "opt")
    warm = _apply(manifest, capsys)
    assert warm["bytes_fetched"] == 0
    _hello_says_hello(tmp_path / "opt")


def test_a_corrupt_cached_tarball_is_evicted_and_fetched_again(
    tmp_path: Path, signed_cache_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _manifest(tmp_path, signed_cache_copy)
    _apply(manifest, capsys)
    cache = BlobCache(cache_roots_of(load_manifest(manifest)))
    blob = cache.lookup(HELLO_SHA)
    assert blob is not None
    blob.write_bytes(b"poisoned by another job")
    shutil.rmtree(tmp_path / "opt")
    again = _apply(manifest, capsys)
    assert again["bytes_fetched"] == 9861  # hello-app only: the other two were good
    assert cache.verify(blob, HELLO_SHA)  # stored again, whole
    _hello_says_hello(tmp_path / "opt")


def test_open_blob_cache(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    without = tmp_path / "none.toml"
    without.write_text("version = 1\n")
    assert open_blob_cache(load_manifest(without)) is None
    blocked = tmp_path / "blocked"
    manifest = tmp_path / "reconcile.toml"
    manifest.write_text('version = 1\n[[cache]]\nroot = "blocked"\n')
    loaded = load_manifest(manifest)
    # validate refuses a file as a root (test_manifest_paths.py); one that appears later is
    # still only a warning
    blocked.write_text("a file where the cache root should be")
    cache = open_blob_cache(loaded)
    assert isinstance(cache, BlobCache)
    assert cache.roots[0].path == blocked
    assert cache.store_download("https://h/x", HELLO_SHA, "", lambda _path: None) is None
    # Nobody wired a warning callback: it still reaches the person, on stderr.
    assert capsys.readouterr().err.startswith(f"warning: cache root {blocked} cannot be written")
