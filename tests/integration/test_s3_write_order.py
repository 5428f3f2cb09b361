"""The order of writes into an s3:// mirror (a moto server on 127.0.0.1): a reader of the
bucket must never find an index entry whose metadata is missing, or metadata whose tarball is
missing. So publishing and syncing put every tarball first, then the metadata that names it,
then the index (and, in layout 3, ``v3/layout.json`` with it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FIXTURES
from moto_harness import MotoS3, moto_s3
from support import run, write_manifest

from reconcile.transport.s3_store import S3MirrorStore

SPACK1 = FIXTURES / "spack1-v3-signed"
SPACK1_FPR = "E19558C059B19311A4EB227B03683E7D4E8545AB"
SPACK1_KEY = FIXTURES / "keys" / f"{SPACK1_FPR}.pub"


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[MotoS3, list[str]]]:
    """A moto server, and the key of every write any S3 store makes, in order."""
    writes: list[str] = []
    put_bytes, put_file = S3MirrorStore.put_bytes, S3MirrorStore.put_file

    def record_bytes(self: S3MirrorStore, key: str, data: bytes) -> None:
        writes.append(key)
        put_bytes(self, key, data)

    def record_file(self: S3MirrorStore, key: str, source: Path) -> str:
        writes.append(key)
        return put_file(self, key, source)

    monkeypatch.setattr(S3MirrorStore, "put_bytes", record_bytes)
    monkeypatch.setattr(S3MirrorStore, "put_file", record_file)
    with moto_s3(tmp_path / "aws") as s3:
        for name, value in s3.env.items():
            monkeypatch.setenv(name, value)
        yield s3, writes


def _phase(key: str) -> int:
    """0: tarballs and other blobs, 1: spec metadata, 2: the index."""
    if key.startswith(("build_cache/index.json", "v3/manifests/index/")):
        return 2
    if key.endswith((".spec.json", ".spec.json.sig", ".spec.manifest.json")):
        return 1
    return 0


def _check_order(writes: list[str], layout: int) -> None:
    """Spec by spec (publishing adds one at a time): its tarball before its metadata, and an
    index write after its metadata. The signer's public key (``_pgp/``, the key manifests
    and their blobs) belongs to no spec and may come at any time."""
    writes = [k for k in writes if "/_pgp/" not in k and "/manifests/key/" not in k]
    metadata = [i for i, key in enumerate(writes) if _phase(key) == 1]
    assert len(metadata) == 3, writes
    for i in metadata:
        if layout == 2:  # the tarball's name holds the spec's hash, as its metadata's does
            dag_hash = writes[i].rsplit("-", 1)[1].split(".")[0]
            assert any(k.endswith(f"-{dag_hash}.spack") for k in writes[:i]), writes
        else:  # content-addressed: the blobs its manifest names come right before it
            assert writes[i - 1].startswith("blobs/sha256/"), writes
        assert any(_phase(k) == 2 for k in writes[i + 1 :]), writes
    if layout == 3:  # layout.json last: a reader never sees layout 3 without an index
        first_layout = writes.index("v3/layout.json")
        assert any(k.startswith("v3/manifests/index/") for k in writes[:first_layout]), writes


@pytest.mark.parametrize("layout", [2, 3])
def test_publishing_puts_tarballs_then_metadata_then_the_index(
    recorded: tuple[MotoS3, list[str]], tmp_path: Path, layout: int
) -> None:
    s3, writes = recorded
    s3.create_bucket(f"order-publish-{layout}")
    extra = f"""
[[mirror]]
name = "published"
url = "{s3.url(f"order-publish-{layout}", "spack")}"
endpoint_url = "{s3.endpoint_url}"
signed = false
layout = {layout}

[[publish]]
specs = ["hello-app"]
mirror = "published"
"""
    assert run(write_manifest(tmp_path, padded_length=128, extra=extra), "apply", "--yes") == 0
    _check_order(writes, layout)


@pytest.mark.parametrize("layout", [2, 3])
def test_syncing_puts_tarballs_then_metadata_then_the_index(
    recorded: tuple[MotoS3, list[str]], tmp_path: Path, layout: int
) -> None:
    """Signed specs copied verbatim from a mirror of the same layout: Spack 0.23's cache into
    layout 2, Spack 1.1's into layout 3."""
    s3, writes = recorded
    s3.create_bucket(f"order-sync-{layout}")
    extra = f"""
[[mirror]]
name = "site"
url = "{s3.url(f"order-sync-{layout}", "spack")}"
endpoint_url = "{s3.endpoint_url}"
layout = {layout}
specs = ["hello-app"]
"""
    source = {} if layout == 2 else {"mirror": SPACK1, "key_file": SPACK1_KEY}
    if layout == 3:
        source["fingerprint"] = SPACK1_FPR
    assert run(write_manifest(tmp_path, extra=extra, **source), "apply", "--yes") == 0
    _check_order(writes, layout)
