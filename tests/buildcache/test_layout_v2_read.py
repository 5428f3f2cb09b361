"""Reading the Spack-made layout v2 fixture caches: URLs, the index, and spec metadata, signed
(verified with real gpg) and unsigned."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import (
    FIXTURE_FPR,
    FIXTURE_KEY,
    GCC_RUNTIME_HASH,
    GLIBC_HASH,
    GREETLIB_HASH,
    HELLO_HASH,
    SIGNED_CACHE,
    UNSIGNED_CACHE,
)

from reconcile.buildcache import reads
from reconcile.buildcache.layout_v2 import (
    fetch_spec,
    key_url,
    read_index,
    read_mirror_key,
    spec_url,
    tarball_url,
)
from reconcile.errors import NotFoundError, VerificationError
from reconcile.spack.spec import SpecNode
from reconcile.transport.file import FileTransport
from reconcile.trust.policy import TrustPolicy

TARBALL_SHA256 = {
    HELLO_HASH: "ef1205a792c3b247df955a6c0a7ece622883c2ef5e0d9a65ad6630c2439fb393",
    GREETLIB_HASH: "7411478146e45bbac005244078efa2c619aa390dd5589d745c14b3e9e7c15426",
    GCC_RUNTIME_HASH: "0448526af2bad1701bc3b7e009f0890e47285e5c4c34da04ad21b7e45eb35fdf",
}
HELLO_STEM = "linux-debian12-x86_64_v4-gcc-12.2.0-hello-app-3.0-" + HELLO_HASH

transport = FileTransport()


@pytest.fixture(scope="module")
def verifier() -> Iterator[TrustPolicy]:
    with TrustPolicy.gpg({FIXTURE_FPR: FIXTURE_KEY.read_bytes()}) as pinned_fixture:
        yield pinned_fixture


@pytest.fixture(scope="module")
def nodes() -> dict[str, SpecNode]:
    return {h: e.node for h, e in read_index(transport, SIGNED_CACHE.as_uri()).items()}


@pytest.fixture
def unsigned_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "unsigned"
    shutil.copytree(UNSIGNED_CACHE, dest)
    for path in dest.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dest


# --- URLs -----------------------------------------------------------------------------------


def test_urls_name_the_files_spack_wrote(nodes: dict[str, SpecNode]) -> None:
    mirror = SIGNED_CACHE.as_uri()
    hello = nodes[HELLO_HASH]
    assert (
        spec_url(mirror, hello, signed=True) == f"{mirror}/build_cache/{HELLO_STEM}.spec.json.sig"
    )
    assert spec_url(mirror + "/", hello, signed=False).endswith(f"/{HELLO_STEM}.spec.json")
    assert tarball_url(mirror, hello) == (
        f"{mirror}/build_cache/linux-debian12-x86_64_v4/gcc-12.2.0/hello-app-3.0/{HELLO_STEM}.spack"
    )
    for dag_hash in TARBALL_SHA256:
        tarball = transport.read_bytes(tarball_url(mirror, nodes[dag_hash]))
        assert hashlib.sha256(tarball).hexdigest() == TARBALL_SHA256[dag_hash]
        assert transport.size(spec_url(mirror, nodes[dag_hash], signed=True)) > 0
        unsigned = UNSIGNED_CACHE.as_uri()
        assert transport.size(spec_url(unsigned, nodes[dag_hash], signed=False)) > 0


def test_a_name_that_would_climb_folders_is_refused(nodes: dict[str, SpecNode]) -> None:
    hostile = SpecNode(
        name="../../etc",
        version="1.0",
        hash=HELLO_HASH,
        platform="linux",
        platform_os="debian12",
        target="x86_64_v4",
        compiler_name="gcc",
        compiler_version="12.2.0",
        namespace=None,
        dependencies=(),
        external_path=None,
        raw={},
    )
    with pytest.raises(VerificationError, match="unusable path component"):
        spec_url(SIGNED_CACHE.as_uri(), hostile, signed=True)
    with pytest.raises(VerificationError, match="unusable path component"):
        tarball_url(SIGNED_CACHE.as_uri(), hostile)


def test_the_published_key_is_read_from_pgp_folder() -> None:
    mirror = SIGNED_CACHE.as_uri()
    assert key_url(mirror, FIXTURE_FPR.lower()).endswith(f"/build_cache/_pgp/{FIXTURE_FPR}.pub")
    assert read_mirror_key(transport.read_bytes, mirror, FIXTURE_FPR) == FIXTURE_KEY.read_bytes()
    with pytest.raises(ValueError, match="fingerprint"):
        key_url(mirror, "../../secret")


# --- index ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cache", [SIGNED_CACHE, UNSIGNED_CACHE], ids=["signed", "unsigned"])
def test_index_of_the_fixture_caches(cache: Path) -> None:
    index = read_index(transport, cache.as_uri())
    assert set(index) == {HELLO_HASH, GREETLIB_HASH, GCC_RUNTIME_HASH, GLIBC_HASH}
    glibc = index[GLIBC_HASH]
    assert glibc.in_buildcache is False
    assert glibc.node.is_external and glibc.node.external_path == "/usr"
    for dag_hash in TARBALL_SHA256:
        assert index[dag_hash].in_buildcache is True
        assert not index[dag_hash].node.is_external
    hello = index[HELLO_HASH].node
    assert (hello.name, hello.version, hello.compiler, hello.arch) == (
        "hello-app",
        "3.0",
        "gcc-12.2.0",
        "linux-debian12-x86_64_v4",
    )
    assert {d.hash for d in hello.runtime_dependencies()} == {
        GREETLIB_HASH,
        GCC_RUNTIME_HASH,
        GLIBC_HASH,
    }


def test_an_index_hash_mismatch_is_refused(signed_cache_copy: Path) -> None:
    index = signed_cache_copy / "build_cache" / "index.json"
    index.write_bytes(index.read_bytes().replace(b'"ref_count":0', b'"ref_count":1', 1))
    with pytest.raises(VerificationError) as caught:
        read_index(transport, signed_cache_copy.as_uri())
    assert "index.json" in caught.value.message
    assert hashlib.sha256(index.read_bytes()).hexdigest() in caught.value.message


def test_an_index_without_its_hash_file_is_read(signed_cache_copy: Path) -> None:
    (signed_cache_copy / "build_cache" / "index.json.hash").unlink()
    assert len(read_index(transport, signed_cache_copy.as_uri())) == 4


def test_a_mirror_without_an_index(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as caught:
        read_index(transport, tmp_path.as_uri())
    assert f"{tmp_path.as_uri()}/build_cache/index.json" in caught.value.message
    assert "update-index" in (caught.value.hint or "")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"database": {"version": "7"}}', "expected a Spack database"),
        (b'{"database": {"installs": {"abc": {"ref_count": 1}}}}', "has no 'spec'"),
        (b'{"database": {"installs": {"abc": {"spec": {"name": "x"}}}}}', "lacks field"),
        (
            b'{"database": {"installs": {"abc": {"spec": {"hash": "xyz"}}}}}',
            "holds a spec with hash",
        ),
    ],
)
def test_a_malformed_index_names_the_url(tmp_path: Path, content: bytes, reason: str) -> None:
    (tmp_path / "build_cache").mkdir()
    (tmp_path / "build_cache" / "index.json").write_bytes(content)
    with pytest.raises(VerificationError) as caught:
        read_index(transport, tmp_path.as_uri())
    assert caught.value.reference == "malformed-metadata"
    assert caught.value.message.startswith(f"{tmp_path.as_uri()}/build_cache/index.json: ")
    assert reason in caught.value.message


@pytest.mark.parametrize("cache", [SIGNED_CACHE, UNSIGNED_CACHE], ids=["signed", "unsigned"])
def test_a_large_index_reads_the_same_with_its_values_shared(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above the size where repeated values are shared (to bound memory), the index is what
    it is below it: every node, field for field."""
    plain = read_index(transport, cache.as_uri())
    monkeypatch.setattr(reads, "SHARE_INDEX_ABOVE", 0)
    shared = read_index(transport, cache.as_uri())
    assert shared == plain
    for dag_hash, entry in plain.items():
        assert json.dumps(shared[dag_hash].node.raw) == json.dumps(entry.node.raw)
    assert len({id(entry.node.raw.get("arch")) for entry in shared.values()}) == 1


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"{not json", "not valid JSON"), (b'"\xff', "not valid JSON"), (b"[[[[", "not valid JSON")],
)
def test_a_malformed_large_index_names_the_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes, reason: str
) -> None:
    monkeypatch.setattr(reads, "SHARE_INDEX_ABOVE", 0)
    (tmp_path / "build_cache").mkdir()
    (tmp_path / "build_cache" / "index.json").write_bytes(content)
    with pytest.raises(VerificationError) as caught:
        read_index(transport, tmp_path.as_uri())
    assert caught.value.reference == "malformed-metadata"
    assert reason in caught.value.message


# --- spec metadata --------------------------------------------------------------------------


@pytest.mark.parametrize("dag_hash", list(TARBALL_SHA256))
def test_signed_specs_verify_and_carry_the_tarball_checksum(
    verifier: TrustPolicy, nodes: dict[str, SpecNode], dag_hash: str
) -> None:
    mirror = SIGNED_CACHE.as_uri()
    fetched = fetch_spec(transport, mirror, nodes[dag_hash], trust=verifier, mirror_name="team")
    assert fetched.signer == FIXTURE_FPR
    assert fetched.url == spec_url(mirror, nodes[dag_hash], signed=True)
    assert fetched.metadata_sha256 == hashlib.sha256(transport.read_bytes(fetched.url)).hexdigest()
    assert fetched.document.root.hash == dag_hash
    assert fetched.document.tarball_sha256 == TARBALL_SHA256[dag_hash]


def test_unsigned_specs_are_refused_when_signatures_are_required(
    verifier: TrustPolicy, nodes: dict[str, SpecNode]
) -> None:
    with pytest.raises(VerificationError) as caught:
        fetch_spec(
            transport,
            UNSIGNED_CACHE.as_uri(),
            nodes[HELLO_HASH],
            trust=verifier,
            mirror_name="team",
        )
    assert "hello-app@3.0/d7r6xmz" in caught.value.message
    assert "unsigned" in caught.value.message and "requires signatures" in caught.value.message
    assert caught.value.hint == (
        "set signed = false on mirror 'team' to accept unsigned binaries from it"
    )


def test_unsigned_specs_are_accepted_from_a_mirror_declared_unsigned(
    nodes: dict[str, SpecNode],
) -> None:
    mirror = UNSIGNED_CACHE.as_uri()
    fetched = fetch_spec(transport, mirror, nodes[HELLO_HASH], trust=None)
    assert fetched.signer is None
    assert fetched.url == spec_url(mirror, nodes[HELLO_HASH], signed=False)
    assert fetched.document.tarball_sha256 == TARBALL_SHA256[HELLO_HASH]
    raw = (UNSIGNED_CACHE / "build_cache" / f"{HELLO_STEM}.spec.json").read_bytes()
    assert fetched.metadata_sha256 == hashlib.sha256(raw).hexdigest()


def test_an_unsigned_mirror_may_serve_only_sig_files(nodes: dict[str, SpecNode]) -> None:
    fetched = fetch_spec(transport, SIGNED_CACHE.as_uri(), nodes[GREETLIB_HASH], trust=None)
    assert fetched.signer is None
    assert fetched.url.endswith(".spec.json.sig")
    assert fetched.document.tarball_sha256 == TARBALL_SHA256[GREETLIB_HASH]


def test_a_tampered_signed_spec_is_refused(
    signed_cache_copy: Path, verifier: TrustPolicy, nodes: dict[str, SpecNode]
) -> None:
    sig = signed_cache_copy / "build_cache" / f"{HELLO_STEM}.spec.json.sig"
    evil = "0" * 64
    sig.write_bytes(sig.read_bytes().replace(TARBALL_SHA256[HELLO_HASH].encode(), evil.encode()))
    with pytest.raises(VerificationError, match="BAD signature") as caught:
        fetch_spec(
            transport,
            signed_cache_copy.as_uri(),
            nodes[HELLO_HASH],
            trust=verifier,
            mirror_name="team",
        )
    assert "spec hello-app@3.0/d7r6xmz from mirror 'team'" in caught.value.message


def test_a_validly_signed_but_substituted_spec_is_refused(
    signed_cache_copy: Path, verifier: TrustPolicy, nodes: dict[str, SpecNode]
) -> None:
    """greetlib's genuine signed spec put where hello-app's belongs."""
    build_cache = signed_cache_copy / "build_cache"
    greetlib_sig = next(build_cache.glob(f"*-{GREETLIB_HASH}.spec.json.sig"))
    shutil.copy(greetlib_sig, build_cache / f"{HELLO_STEM}.spec.json.sig")
    with pytest.raises(VerificationError, match="substituted spec") as caught:
        fetch_spec(transport, signed_cache_copy.as_uri(), nodes[HELLO_HASH], trust=verifier)
    assert GREETLIB_HASH in caught.value.message and HELLO_HASH in caught.value.message


def test_a_spec_without_a_tarball_checksum_is_refused(
    unsigned_copy: Path, nodes: dict[str, SpecNode]
) -> None:
    spec = unsigned_copy / "build_cache" / f"{HELLO_STEM}.spec.json"
    document = json.loads(spec.read_bytes())
    del document["binary_cache_checksum"]
    spec.write_text(json.dumps(document))
    with pytest.raises(VerificationError, match="binary_cache_checksum"):
        fetch_spec(transport, unsigned_copy.as_uri(), nodes[HELLO_HASH], trust=None)


def test_a_spec_that_is_not_json_names_its_url(
    unsigned_copy: Path, nodes: dict[str, SpecNode]
) -> None:
    spec = unsigned_copy / "build_cache" / f"{HELLO_STEM}.spec.json"
    spec.write_text("<html>proxy error</html>")
    with pytest.raises(VerificationError, match="not valid JSON") as caught:
        fetch_spec(transport, unsigned_copy.as_uri(), nodes[HELLO_HASH], trust=None)
    assert spec.as_uri() in caught.value.message


def test_a_spec_missing_from_the_mirror(
    tmp_path: Path, verifier: TrustPolicy, nodes: dict[str, SpecNode]
) -> None:
    for chosen in (verifier, None):
        with pytest.raises(NotFoundError, match="neither") as caught:
            fetch_spec(transport, tmp_path.as_uri(), nodes[HELLO_HASH], trust=chosen)
        assert HELLO_STEM in caught.value.message
