"""``bundle import BUNDLE.tar s3://...``: a verified bundle written straight into a bucket (a
moto server on 127.0.0.1) through the write seam, in the order readers need (tarballs, then
signed metadata, then the index), and installed from there."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from bundle_support import write_manifest
from conftest import FIXTURES, REPO
from moto_harness import MotoS3, moto_s3
from test_bundle import SOURCE, repack, unpacked

from reconcile.bundle.errors import BundleError
from reconcile.bundle.export import export_bundle
from reconcile.bundle.into_mirror import StoreDestination, import_into_mirror
from reconcile.transport.s3 import S3Transport
from reconcile.transport.s3_store import S3MirrorStore

SPACK1 = FIXTURES / "spack1-v3-signed"
SPACK1_FPR = "E19558C059B19311A4EB227B03683E7D4E8545AB"
SPACK1_KEY = FIXTURES / "keys" / f"{SPACK1_FPR}.pub"


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """A layout-2 bundle (Spack 0.23's signed cache, with a source archive) and a layout-3
    one (Spack 1.1's signed cache)."""
    folder = tmp_path_factory.mktemp("bundles")
    v2 = folder / "v2.tar"
    export_bundle(write_manifest(folder / "v2", extra=SOURCE), v2)
    v3 = folder / "v3.tar"
    manifest = write_manifest(
        folder / "v3", mirror=SPACK1, key_file=SPACK1_KEY, fingerprint=SPACK1_FPR
    )
    export_bundle(manifest, v3)
    return {2: v2, 3: v3}


@pytest.fixture
def s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoS3]:
    with moto_s3(tmp_path / "aws") as server:
        for name, value in server.env.items():
            monkeypatch.setenv(name, value)
        yield server


def _keys(s3: MotoS3, bucket: str) -> list[str]:
    client = s3.client()
    try:
        listing = client.list_objects_v2(Bucket=bucket)
    finally:
        client.close()
    return sorted(item["Key"] for item in listing.get("Contents", []))


class RecordingStore(S3MirrorStore):
    """An S3 store that records the key of every write, and can fail on one."""

    def __init__(self, url: str, transport: S3Transport, fail_at: str | None = None) -> None:
        super().__init__(url, transport)
        self.writes: list[str] = []
        self.fail_at = fail_at

    def _record(self, key: str) -> None:
        if self.fail_at is not None and key.endswith(self.fail_at):
            raise OSError(f"connection lost while writing {key}")
        self.writes.append(key)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._record(key)
        super().put_bytes(key, data)

    def put_file(self, key: str, source: Path) -> str:
        self._record(key)
        return super().put_file(key, source)


def _destination(s3: MotoS3, url: str, fail_at: str | None = None) -> StoreDestination:
    store = RecordingStore(url, S3Transport(endpoint_url=s3.endpoint_url), fail_at=fail_at)
    return StoreDestination(store, {"url": url, "endpoint_url": s3.endpoint_url})


def _phase(key: str) -> int:
    """0: content (tarballs, blobs, sources), 1: signed metadata, 2: the index."""
    if "index" in key or key.endswith("layout.json"):
        return 2
    if key.endswith((".spec.json.sig", ".spec.manifest.json")):
        return 1
    return 0


@pytest.mark.parametrize("layout", [2, 3])
def test_bundle_into_s3_then_install_from_it(
    bundles: dict[int, Path], s3: MotoS3, tmp_path: Path, layout: int
) -> None:
    bucket = f"air-gapped-{layout}"
    s3.create_bucket(bucket)
    url = s3.url(bucket, "spack/site")
    out = tmp_path / "site"
    command = ["bundle", "import", str(bundles[layout]), url, "--endpoint-url", s3.endpoint_url]
    done = subprocess.run(
        [sys.executable, "-m", "reconcile", *command, "--out", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Imported 3 specs" in done.stdout and url in done.stdout
    assert f"reconcile -m {out / 'reconcile.toml'} apply" in done.stdout
    keys = _keys(s3, bucket)
    index = "build_cache/index.json" if layout == 2 else "v3/manifests/index/index.manifest.json"
    assert f"spack/site/{index}" in keys
    if layout == 2:  # the source archive, in Spack's source-mirror layout
        assert any(k.startswith("spack/site/_source-cache/archive/fa/") for k in keys)
    text = (out / "reconcile.toml").read_text()
    assert f'url = "{url}"' in text and f'endpoint_url = "{s3.endpoint_url}"' in text
    assert "[[source]]" not in text

    installed = subprocess.run(
        [sys.executable, "-m", "reconcile", "-m", str(out / "reconcile.toml"), "apply", "--yes"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    [hello] = (out / "opt").glob("hello-app-3.0-*")
    ran = subprocess.run([hello / "bin/hello-app"], capture_output=True, text=True, check=True)
    assert str(hello) in ran.stdout and "greetlib 2.1 says hello." in ran.stdout


@pytest.mark.parametrize("layout", [2, 3])
def test_tarballs_then_signed_metadata_then_index(
    bundles: dict[int, Path], s3: MotoS3, layout: int
) -> None:
    s3.create_bucket(f"ordered-{layout}")
    destination = _destination(s3, s3.url(f"ordered-{layout}", "m"))
    summary = import_into_mirror(bundles[layout], destination)
    writes = destination.store.writes  # type: ignore[attr-defined]
    if layout == 3:  # the new index blob, which the index manifest then names
        assert writes[-3].startswith("blobs/sha256/")
        writes = writes[:-3] + writes[-2:]
    phases = [_phase(key) for key in writes]
    assert phases == sorted(phases), writes
    assert phases.count(1) == 3 and phases[-1] == 2
    assert summary.files == phases.count(0) + phases.count(1)
    if layout == 3:  # the index manifest names the new index blob, so it is written last
        assert writes[-1] in ("v3/layout.json", "v3/manifests/index/index.manifest.json")


def test_an_interrupted_import_leaves_no_index_and_a_second_run_completes_it(
    bundles: dict[int, Path], s3: MotoS3
) -> None:
    s3.create_bucket("interrupted")
    url = s3.url("interrupted", "m")
    with pytest.raises(OSError, match="connection lost"):
        import_into_mirror(bundles[2], _destination(s3, url, fail_at=".spec.json.sig"))
    keys = _keys(s3, "interrupted")
    assert any(k.endswith(".spack") for k in keys)  # tarballs went first
    assert not any(k.endswith((".spec.json.sig", "index.json")) for k in keys)
    summary = import_into_mirror(bundles[2], _destination(s3, url))
    assert summary.check.specs == 3
    assert "m/build_cache/index.json" in _keys(s3, "interrupted")


def test_a_tampered_bundle_writes_nothing_into_the_bucket(
    bundles: dict[int, Path], s3: MotoS3, tmp_path: Path
) -> None:
    tree = unpacked(bundles[2], tmp_path / "tree")
    [tarball] = tree.rglob("*hello-app-3.0-*.spack")
    data = bytearray(tarball.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tarball.write_bytes(bytes(data))
    tampered = repack(tree, tmp_path / "tampered.tar")
    s3.create_bucket("tampered")
    with pytest.raises(BundleError, match="signed metadata says"):
        import_into_mirror(tampered, _destination(s3, s3.url("tampered", "m")))
    assert _keys(s3, "tampered") == []


def test_a_mirror_in_the_other_layout_is_refused(bundles: dict[int, Path], s3: MotoS3) -> None:
    s3.create_bucket("other-layout")
    s3.put("other-layout", "m/v3/layout.json", b'{"signing": "gpg"}')
    with pytest.raises(BundleError, match="is a layout-3 binary cache"):
        import_into_mirror(bundles[2], _destination(s3, s3.url("other-layout", "m")))
    assert _keys(s3, "other-layout") == ["m/v3/layout.json"]
