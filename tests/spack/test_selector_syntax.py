"""Spack's spec syntax in selectors, matched against real spec metadata of both formats:
Spack 0.23 (format 4: `compiler` on the node) and Spack 1.1 (format 5: the compiler is a
build dependency providing `c`)."""

from __future__ import annotations

import gzip
import json

import pytest
from conftest import FIXTURES, SIGNED_CACHE

from reconcile.buildcache.manifest_v3 import SPEC_MEDIA_TYPE_V5
from reconcile.spack.database_node import database_node
from reconcile.spack.selector import parse_selector
from reconcile.spack.spec import SpecNode, parse_node, parse_spec_document
from reconcile.trust.clearsign import unverified_text

SPACK1 = FIXTURES / "spack1-v3-signed"


def _v2_nodes() -> dict[str, SpecNode]:
    nodes: dict[str, SpecNode] = {}
    for path in (SIGNED_CACHE / "build_cache").glob("*.spec.json.sig"):
        document = parse_spec_document(json.loads(unverified_text(path.read_bytes())))
        nodes.update({n.hash: n for n in document.nodes})
    return nodes


def _v3_nodes() -> dict[str, SpecNode]:
    nodes: dict[str, SpecNode] = {}
    blobs = SPACK1 / "blobs" / "sha256"
    for path in (SPACK1 / "v3/manifests/spec").glob("*/*.json"):
        records = json.loads(unverified_text(path.read_bytes()))["data"]
        (spec,) = [r["checksum"] for r in records if r["mediaType"] == SPEC_MEDIA_TYPE_V5]
        document = json.loads(gzip.decompress((blobs / spec[:2] / spec).read_bytes()))
        nodes.update({n.hash: n for n in parse_spec_document(document).nodes})
    return nodes


V2 = _v2_nodes()
V3 = _v3_nodes()


def _matching(text: str, nodes: dict[str, SpecNode]) -> set[str]:
    selector = parse_selector(text)
    return {n.name for n in nodes.values() if selector.matches(n, nodes.get)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello-app", {"hello-app"}),
        ("hello-app@3", {"hello-app"}),
        ("hello-app@=3", set()),
        ("hello-app@2.9:3.1", {"hello-app"}),
        ("hello-app %gcc", {"hello-app"}),
        ("hello-app %gcc@12", {"hello-app"}),
        ("hello-app%gcc@=12.2.0", {"hello-app"}),
        ("hello-app %gcc@11", set()),
        ("hello-app %clang", set()),
        ("hello-app target=x86_64_v4", {"hello-app"}),
        ("hello-app target=icelake", set()),
        ("hello-app os=debian12 platform=linux", {"hello-app"}),
        ("hello-app arch=linux-debian12-x86_64_v4", {"hello-app"}),
        ("hello-app build_system=generic", {"hello-app"}),
        ("hello-app build_system=cmake", set()),
        ("hello-app ^greetlib@2.1", {"hello-app"}),
        ("hello-app ^greetlib@3", set()),
        ("greetlib ^hello-app", set()),
        ("hello-app/d7r6xmz", {"hello-app"}),
        ("/75b4t5r", {"gcc-runtime"}),
    ],
)
def test_spack_023_nodes(text: str, expected: set[str]) -> None:
    assert _matching(text, V2) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello-rpath", {"hello-rpath"}),
        ("hello-rpath %gcc", {"hello-rpath"}),
        ("hello-rpath %gcc@12.2", {"hello-rpath"}),
        ("hello-rpath %gcc@13", set()),
        ("hello-rpath target=icelake", {"hello-rpath"}),
        ("hello-rpath ^compiler-wrapper", {"hello-rpath"}),
        ("hello-rpath ^gcc-runtime@12", {"hello-rpath"}),
    ],
)
def test_spack_11_nodes(text: str, expected: set[str]) -> None:
    assert _matching(text, V3) == expected


def test_converted_node_keeps_its_compiler() -> None:
    (app,) = [n for n in V2.values() if n.name == "hello-app"]
    converted = parse_node(database_node({**app.raw, "hash": app.hash}))
    assert parse_selector("hello-app %gcc@12.2.0").matches(converted)
    assert not parse_selector("hello-app %gcc@13").matches(converted)


def test_variants() -> None:
    raw = {
        "name": "zlib",
        "version": "1.3",
        "hash": "a" * 32,
        "arch": {"platform": "linux", "platform_os": "debian12", "target": "x86_64"},
        "parameters": {"shared": True, "optimize": False, "libs": ["shared", "static"]},
    }
    node = parse_node(raw)
    assert parse_selector("zlib+shared~optimize").matches(node)
    assert not parse_selector("zlib~shared").matches(node)
    assert parse_selector("zlib libs=shared,static").matches(node)
    assert not parse_selector("zlib libs=shared,debug").matches(node)
    assert not parse_selector("zlib+missing").matches(node)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "expected Spack's spec syntax"),
        ("hello-app@", "the version after '@' is missing"),
        ("hello-app@1@2", "version given twice"),
        ("hello-app %gcc %clang", "compiler given twice"),
        ("hello-app ^", "'^' must be followed by a dependency"),
        ("@3.0", "name a package or a /hash prefix"),
        ("hello-app zlib", "a name comes first"),
        ("/XYZ", "a DAG hash uses only a-z and 2-7"),
        ("hello-app target=", "'target=' needs a value"),
        ("hello-app!", "expected Spack's spec syntax"),
    ],
)
def test_malformed(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=r"not a spec selector") as caught:
        parse_selector(text)
    assert why in str(caught.value)
