"""The prefixes a real Spack gives specs in its default tree, as recorded in the tarballs it
pushed (``binary_distribution``), are the lengths reconcile computes for `for_spack`."""

from __future__ import annotations

import gzip
import json
import tarfile
from pathlib import Path

import pytest
from conftest import FIXTURES, SIGNED_CACHE

from reconcile.buildcache.build_info import parse_build_info
from reconcile.buildcache.manifest_v3 import SPEC_MEDIA_TYPE_V5, TARBALL_MEDIA_TYPE
from reconcile.spack.consumers import consumer_prefix_length
from reconcile.spack.spec import SpecNode, parse_spec_document
from reconcile.trust.clearsign import unverified_text

SPACK1_CACHE = FIXTURES / "spack1-v3-signed"


def _old_prefix(tarball: Path, dag_hash: str) -> tuple[str, str]:
    """(buildpath, the spec's own prefix) that Spack recorded when it built the package."""
    with tarfile.open(tarball) as archive:
        member = next(m for m in archive if m.name.endswith(".spack/binary_distribution"))
        extracted = archive.extractfile(member)
        assert extracted is not None
        info = parse_build_info(extracted.read().decode(), dag_hash=dag_hash)
    return info.buildpath, info.old_prefix


def _spack_023_packages() -> list[tuple[SpecNode, Path]]:
    found = []
    for spec_file in sorted((SIGNED_CACHE / "build_cache").glob("*.spec.json.sig")):
        document = parse_spec_document(json.loads(unverified_text(spec_file.read_bytes())))
        (tarball,) = SIGNED_CACHE.rglob(f"*-{document.root.hash}.spack")
        found.append((document.root, tarball))
    return found


def _spack_11_packages() -> list[tuple[SpecNode, Path]]:
    blobs = SPACK1_CACHE / "blobs" / "sha256"
    found = []
    for manifest in sorted((SPACK1_CACHE / "v3/manifests/spec").glob("*/*.json")):
        records = {
            r["mediaType"]: r["checksum"]
            for r in json.loads(unverified_text(manifest.read_bytes()))["data"]
        }
        spec = records[SPEC_MEDIA_TYPE_V5]
        document = json.loads(gzip.decompress((blobs / spec[:2] / spec).read_bytes()))
        tarball = records[TARBALL_MEDIA_TYPE]
        found.append((parse_spec_document(document).root, blobs / tarball[:2] / tarball))
    return found


@pytest.mark.parametrize(
    ("release", "packages"), [("0.23", _spack_023_packages), ("1.x", _spack_11_packages)]
)
def test_default_tree_lengths_match_real_spack(release: str, packages: object) -> None:
    assert callable(packages)
    checked = 0
    for node, tarball in packages():
        buildpath, prefix = _old_prefix(tarball, node.hash)
        assert len(buildpath) == 128  # both fixtures were built with padded_length 128
        assert consumer_prefix_length(node, release, 128) == len(prefix), prefix  # type: ignore[arg-type]
        checked += 1
    assert checked >= 3
