"""The signed statement, the sidecar format, and where sidecars sit in a mirror."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import pytest

from reconcile.buildcache.layout_v2 import sidecar_url
from reconcile.buildcache.layout_v3 import sidecar_url_v3
from reconcile.publish.sidecars import sidecar_path, sign_package
from reconcile.spack.spec import SpecNode, parse_spec_document
from reconcile.trust.clearsign import unverified_text
from reconcile.trust.sidecar import (
    MAX_SIDECAR_BYTES,
    Sidecar,
    SidecarSignature,
    merged,
    parse_sidecar,
    render_sidecar,
)
from reconcile.trust.statement import statement, statement_for
from tests.conftest import (
    GCC_RUNTIME_HASH,
    GLIBC_HASH,
    GREETLIB_HASH,
    HELLO_HASH,
    SIGNED_CACHE,
)

HELLO_SHA256 = "ef1205a792c3b247df955a6c0a7ece622883c2ef5e0d9a65ad6630c2439fb393"
HELLO_STEM = "linux-debian12-x86_64_v4-gcc-12.2.0-hello-app-3.0-" + HELLO_HASH


def hello_node() -> SpecNode:
    signed = SIGNED_CACHE / "build_cache" / f"{HELLO_STEM}.spec.json.sig"
    return parse_spec_document(json.loads(unverified_text(signed.read_bytes()))).root


class Signs:
    """A statement signer that records what it signed (the format, not the cryptography)."""

    scheme = "test"

    def __init__(self, key_name: str) -> None:
        self.key_name = key_name
        self.signed: list[bytes] = []

    def sign_statement(self, statement: bytes) -> str:
        self.signed.append(statement)
        return f"{self.key_name}:{len(statement)}"


def test_statement_of_the_fixture_names_every_direct_dependency_sorted() -> None:
    made = statement_for(hello_node(), tarball_sha256=HELLO_SHA256, tarball_size=9861)
    deps = ",".join(sorted([GREETLIB_HASH, GCC_RUNTIME_HASH, GLIBC_HASH]))
    assert made == f"reconcile-sig-1;{HELLO_HASH};sha256:{HELLO_SHA256};9861;{deps}".encode()


def test_statement_counts_every_edge_type_once() -> None:
    made = statement(
        dag_hash=HELLO_HASH,
        tarball_sha256=HELLO_SHA256,
        tarball_size=0,
        dependencies=[GREETLIB_HASH, GLIBC_HASH, GREETLIB_HASH],
    )
    assert made.endswith(f";0;{GLIBC_HASH},{GREETLIB_HASH}".encode())
    leaf = statement(
        dag_hash=GLIBC_HASH, tarball_sha256=HELLO_SHA256, tarball_size=1, dependencies=[]
    )
    assert leaf.endswith(b";1;")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dag_hash", HELLO_HASH + ";x"),
        ("dag_hash", HELLO_HASH.upper()),
        ("dag_hash", ""),
        ("tarball_sha256", HELLO_SHA256.upper()),
        ("tarball_sha256", HELLO_SHA256[:-1] + ";"),
        ("tarball_size", -1),
        ("tarball_size", True),
        ("tarball_size", "9861"),
        ("dependencies", [GREETLIB_HASH + "," + GLIBC_HASH]),
        ("dependencies", ["../x"]),
    ],
)
def test_statement_refuses_fields_that_could_shift_others(field: str, value: object) -> None:
    fields: dict[str, object] = {
        "dag_hash": HELLO_HASH,
        "tarball_sha256": HELLO_SHA256,
        "tarball_size": 9861,
        "dependencies": [GREETLIB_HASH],
    }
    fields[field] = value
    with pytest.raises(ValueError, match="not a"):
        statement(**fields)  # type: ignore[arg-type]


def test_sidecar_round_trip_and_merge() -> None:
    first = merged(None, b"s-1", [SidecarSignature(scheme="ed25519", signature="a:AAA")])
    assert parse_sidecar(render_sidecar(first)) == first
    # Another key's signature over the same statement is kept; the same key's is replaced.
    second = merged(
        first,
        b"s-1",
        [
            SidecarSignature(scheme="ed25519", signature="b:BBB"),
            SidecarSignature(scheme="ed25519", signature="a:CCC"),
        ],
    )
    assert [s.signature for s in second.signatures] == ["b:BBB", "a:CCC"]
    # A new statement (a new tarball) drops every older signature.
    third = merged(second, b"s-2", [SidecarSignature(scheme="ed25519", signature="b:DDD")])
    assert third == Sidecar(
        statement="s-2", signatures=(SidecarSignature(scheme="ed25519", signature="b:DDD"),)
    )
    assert second.detached() == [("ed25519", b"b:BBB"), ("ed25519", b"a:CCC")]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff\xfe", "not valid JSON"),
        (b"[]", "expected a JSON object"),
        (b'{"format": "reconcile-sig-2", "statement": "", "signatures": []}', "format is"),
        (b'{"format": "reconcile-sig-1", "statement": 1, "signatures": []}', "expected a"),
        (b'{"format": "reconcile-sig-1", "statement": "", "signatures": {}}', "expected a"),
        (b'{"format": "reconcile-sig-1", "statement": "", "signatures": [1]}', "signature 1"),
        (
            b'{"format": "reconcile-sig-1", "statement": "", "signatures": '
            b'[{"scheme": "ed25519", "signature": 5}]}',
            "signature 1",
        ),
        (b" " * (MAX_SIDECAR_BYTES + 1), "over the limit"),
    ],
)
def test_hostile_sidecars_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_sidecar(data)


def test_sign_package_writes_the_sidecar_where_readers_look(tmp_path: Path) -> None:
    node = hello_node()
    tarball = tmp_path / "t.spack"
    tarball.write_bytes(b"x" * 10)
    one, two = Signs("one"), Signs("two")
    assert sign_package(tmp_path, node=node, layout=2, tarball=tarball, signers=[]) is None
    written = sign_package(tmp_path, node=node, layout=2, tarball=tarball, signers=[one])
    assert written == tmp_path / "build_cache" / f"{HELLO_STEM}.spec.json.reconcile-sig"
    assert sidecar_url("file:///m", node) == f"file:///m/build_cache/{written.name}"
    sign_package(tmp_path, node=node, layout=2, tarball=tarball, signers=[two])
    sidecar = parse_sidecar(written.read_bytes())
    assert one.signed == two.signed == [sidecar.statement.encode()]
    assert ";10;" in sidecar.statement
    assert [s.signature for s in sidecar.signatures] == ["one:" + str(len(one.signed[0]))] * 1 + [
        "two:" + str(len(two.signed[0]))
    ]
    v3 = sidecar_path(tmp_path, node, layout=3)
    assert v3.relative_to(tmp_path).as_posix() == (
        f"v3/manifests/spec/hello-app/hello-app-3.0-{HELLO_HASH}.spec.manifest.json.reconcile-sig"
    )
    assert sidecar_url_v3("file:///m", node) == f"file:///m/{v3.relative_to(tmp_path).as_posix()}"


# What Spack lists in a mirror, from its source (facts, not code):
# 0.23 ``binary_distribution.py``: update-index keeps names ending in "spec.json" or
# "spec.json.sig", and its S3 path syncs "*.spec.json.sig" / "*.spec.json";
# 1.1 ``url_buildcache.py``: manifests are listed by fnmatch with "*.manifest.json",
# "*.spec.manifest.json", ".*index.manifest.json", "*.key.manifest.json", "keys.manifest.json";
# ``buildcache_prune.py`` removes only unreferenced files under ``blobs/``.
SPACK_023_SUFFIXES = ("spec.json", "spec.json.sig")
SPACK_11_PATTERNS = (
    "*.manifest.json",
    "*.spec.manifest.json",
    ".*index.manifest.json",
    "*.key.manifest.json",
    "keys.manifest.json",
    "*.spec.json.sig",
    "*.spec.json",
)


def test_spack_reads_no_sidecar_and_prunes_none(tmp_path: Path) -> None:
    node = hello_node()
    for layout in (2, 3):
        path = sidecar_path(tmp_path, node, layout=layout).relative_to(tmp_path).as_posix()
        assert not path.endswith(SPACK_023_SUFFIXES)
        assert not any(fnmatch.fnmatch(path, pattern) for pattern in SPACK_11_PATTERNS)
        assert not path.startswith("blobs/")
