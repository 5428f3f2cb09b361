"""The layout-3 index reconcile writes for the specs of a cache made by Spack 1.1.0 is the
index Spack 1.1.0 wrote for them (as parsed JSON): every node of every pushed spec, the
build-only compiler-wrapper and the external compiler and libc included, `ref_count` over
every edge type, nodes kept in spec format 5."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from conftest import FIXTURES

from reconcile.buildcache.manifest_v3 import SPEC_MEDIA_TYPE_V5
from reconcile.buildcache.writer_v3 import index_manifest_path, write_index_v3
from reconcile.spack.spec import SpecNode, parse_node, parse_spec_document
from reconcile.trust.clearsign import unverified_text

SPACK1_CACHE = FIXTURES / "spack1-v3-signed"
COMPILER_WRAPPER = "ju7dhgjlhyquorl25n4rysehxpdzagpw"
GCC_EXTERNAL = "7hpvzmw7t4gm77pyj6cyp62ayivt7ryf"
GLIBC_EXTERNAL = "2dxfl3zus4n6g2gz4iarmmuluwuxaqmn"


def _blob(root: Path, checksum: str) -> bytes:
    return (root / "blobs" / "sha256" / checksum[:2] / checksum).read_bytes()


def _spack1_documents() -> list[dict[str, Any]]:
    documents = []
    for manifest in sorted((SPACK1_CACHE / "v3/manifests/spec").glob("*/*.spec.manifest.json")):
        records = json.loads(unverified_text(manifest.read_bytes()))["data"]
        (spec,) = [r for r in records if r["mediaType"] == SPEC_MEDIA_TYPE_V5]
        documents.append(json.loads(gzip.decompress(_blob(SPACK1_CACHE, spec["checksum"]))))
    return documents


def _spack1_index() -> dict[str, Any]:
    manifest = json.loads((SPACK1_CACHE / "v3/manifests/index/index.manifest.json").read_bytes())
    (record,) = manifest["data"]
    loaded: dict[str, Any] = json.loads(_blob(SPACK1_CACHE, record["checksum"]))
    return loaded


def _written_index(mirror: Path) -> dict[str, Any]:
    manifest = json.loads(index_manifest_path(mirror).read_bytes())
    (record,) = manifest["data"]
    loaded: dict[str, Any] = json.loads(_blob(mirror, record["checksum"]))
    return loaded


def test_index_equals_spack_11_index(tmp_path: Path) -> None:
    documents = [parse_spec_document(d) for d in _spack1_documents()]
    pushed = {document.root.hash for document in documents}
    assert COMPILER_WRAPPER in pushed and len(pushed) == 5
    for document in documents:  # one push at a time, as incremental publishing does
        write_index_v3(tmp_path, document.nodes, in_buildcache={document.root.hash})
    ours = _written_index(tmp_path)
    spack = _spack1_index()
    assert ours["database"]["version"] == spack["database"]["version"] == "8"
    assert ours["database"]["installs"] == spack["database"]["installs"]


def test_build_only_dependency_not_pushed_is_listed_without_its_tarball(tmp_path: Path) -> None:
    (rpath,) = [
        parse_spec_document(d)
        for d in _spack1_documents()
        if d["spec"]["nodes"][0]["name"] == "hello-rpath"
    ]
    write_index_v3(tmp_path, rpath.nodes, in_buildcache={rpath.root.hash})
    installs = _written_index(tmp_path)["database"]["installs"]
    assert installs[COMPILER_WRAPPER]["in_buildcache"] is False
    assert installs[GCC_EXTERNAL]["in_buildcache"] is False
    assert installs[GCC_EXTERNAL]["ref_count"] >= 1  # a build edge counts in Spack 1.x
    # Publishing compiler-wrapper later marks it, and never the other way round.
    (wrapper,) = [n for n in rpath.nodes if n.hash == COMPILER_WRAPPER]
    write_index_v3(tmp_path, [wrapper], in_buildcache={COMPILER_WRAPPER})
    write_index_v3(tmp_path, rpath.nodes, in_buildcache={rpath.root.hash})
    assert _written_index(tmp_path)["database"]["installs"][COMPILER_WRAPPER]["in_buildcache"]


def test_compiler_of_converted_nodes_is_read_from_annotations() -> None:
    node: SpecNode = parse_node(
        {
            "name": "hello-app",
            "version": "3.0",
            "hash": "d7r6xmzoqurk6flnbcq6ygnn57fqrl35",
            "arch": {"platform": "linux", "platform_os": "debian12", "target": "x86_64_v4"},
            "annotations": {"original_specfile_version": 4, "compiler": "gcc@=12.2.0"},
        }
    )
    assert (node.compiler_name, node.compiler_version) == ("gcc", "12.2.0")
