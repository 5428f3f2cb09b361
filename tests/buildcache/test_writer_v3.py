"""Writing layout-v3 caches from the Spack-made fixture specs and tarballs: Spack's file
shapes (as its documentation shows them), signing with a real GnuPG key, incremental
indexes and key indexes, determinism, and refusals of bad input."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    FIXTURE_FPR,
    FIXTURE_KEY,
    GCC_RUNTIME_HASH,
    GLIBC_HASH,
    GREETLIB_HASH,
    HELLO_HASH,
    UNSIGNED_CACHE,
)

from reconcile.buildcache.manifest_v3 import (
    INDEX_MEDIA_TYPE,
    KEY_INDEX_MEDIA_TYPE,
    KEY_MEDIA_TYPE,
    SPEC_MEDIA_TYPE_V5,
    SPEC_MEDIA_TYPE_V6,
    TARBALL_MEDIA_TYPE,
)
from reconcile.buildcache.writer_v3 import (
    LAYOUT_JSON_BYTES,
    index_manifest_path,
    key_index_manifest_path,
    publish_key_v3,
    write_index_v3,
    write_spec_v3,
)
from reconcile.errors import ReconcileError
from reconcile.spack.spec import SpecNode, parse_spec_document
from reconcile.trust.gnupg import isolated_home
from reconcile.trust.policy import TrustPolicy
from reconcile.trust.sign import GpgSigner, generate_key

BUILD_CACHE = UNSIGNED_CACHE / "build_cache"
PUSH_ORDER = [GCC_RUNTIME_HASH, GREETLIB_HASH, HELLO_HASH]
HELLO_TARBALL_SHA256 = "ef1205a792c3b247df955a6c0a7ece622883c2ef5e0d9a65ad6630c2439fb393"


def fixture_document(dag_hash: str) -> dict[str, Any]:
    (found,) = BUILD_CACHE.glob(f"*-{dag_hash}.spec.json")
    loaded: dict[str, Any] = json.loads(found.read_bytes())
    return loaded


def fixture_tarball(dag_hash: str) -> Path:
    (found,) = BUILD_CACHE.glob(f"*/*/*/*-{dag_hash}.spack")
    return found


def index_nodes(dag_hash: str) -> list[SpecNode]:
    """What a publisher lists for one pushed spec: its externals and itself."""
    document = parse_spec_document(fixture_document(dag_hash))
    return [node for node in document.nodes if node.is_external] + [document.root]


def publish_fixture_cache(mirror: Path, signer: GpgSigner | None) -> None:
    for dag_hash in PUSH_ORDER:
        write_spec_v3(
            mirror,
            spec_document=fixture_document(dag_hash),
            tarball=fixture_tarball(dag_hash),
            signer=signer,
        )
        write_index_v3(mirror, index_nodes(dag_hash))
    publish_key_v3(mirror, FIXTURE_KEY.read_bytes())


def all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def blob(mirror: Path, record: dict[str, Any]) -> bytes:
    checksum = str(record["checksum"])
    return (mirror / "blobs" / "sha256" / checksum[:2] / checksum).read_bytes()


def manifest_json(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_bytes())
    return loaded


@pytest.fixture(scope="module")
def signer() -> Iterator[GpgSigner]:
    with isolated_home() as home:
        fingerprint = generate_key(home, "Publisher V3", "publisher-v3@example.invalid")
        yield GpgSigner(gnupghome=home, fingerprint=fingerprint)


# --- Spack's shapes ------------------------------------------------------------------------


def test_spec_manifest_names_tarball_and_spec_blobs_like_spack(tmp_path: Path) -> None:
    published = write_spec_v3(
        tmp_path,
        spec_document=fixture_document(HELLO_HASH),
        tarball=fixture_tarball(HELLO_HASH),
        signer=None,
    )
    expected_manifest = (
        tmp_path / "v3/manifests/spec/hello-app" / f"hello-app-3.0-{HELLO_HASH}.spec.manifest.json"
    )
    assert published.manifest == expected_manifest
    text = expected_manifest.read_bytes()
    # Spack's json.dump(indent=0, separators=(",", ":")): a line per token, no indent.
    assert text.startswith(b'{\n"version":3,\n"data":[\n{\n"contentLength":9861,\n')
    assert max(len(line) for line in text.splitlines()) < 200
    manifest = json.loads(text)
    tarball_record, spec_record = manifest["data"]
    assert tarball_record == {
        "contentLength": 9861,
        "mediaType": TARBALL_MEDIA_TYPE,
        "compression": "gzip",
        "checksumAlgorithm": "sha256",
        "checksum": HELLO_TARBALL_SHA256,
    }
    assert published.tarball == tmp_path / "blobs/sha256/ef" / HELLO_TARBALL_SHA256
    assert published.tarball.read_bytes() == fixture_tarball(HELLO_HASH).read_bytes()
    assert (published.tarball_sha256, published.tarball_size) == (HELLO_TARBALL_SHA256, 9861)

    assert spec_record["mediaType"] == SPEC_MEDIA_TYPE_V5
    assert spec_record["compression"] == "gzip"
    spec_blob = blob(tmp_path, spec_record)
    assert published.spec_blob.read_bytes() == spec_blob
    assert spec_record["contentLength"] == len(spec_blob)
    # gzip without a file name (FLG 0) and with mtime 0: the same bytes every time.
    assert spec_blob[:2] == b"\x1f\x8b"
    assert spec_blob[3] == 0
    assert spec_blob[4:8] == b"\0\0\0\0"
    content = gzip.decompress(spec_blob)
    # The spec dictionary plus buildcache_layout_version 2; the checksum is in the manifest.
    expected = {"spec": fixture_document(HELLO_HASH)["spec"], "buildcache_layout_version": 2}
    assert content == json.dumps(expected, separators=(",", ":")).encode()

    # v3/layout.json comes with the index, after it: never a layout-3 mirror without an index
    assert not (tmp_path / "v3/layout.json").exists()
    write_index_v3(tmp_path, [])
    assert (tmp_path / "v3/layout.json").read_bytes() == b'{"signing": "gpg"}' == LAYOUT_JSON_BYTES


@pytest.mark.parametrize("spec_format", [4, 5, 6])
def test_spec_media_type_is_always_v5(tmp_path: Path, spec_format: int) -> None:
    # Spack 1.x looks spec blobs up by exactly the v5 media type; none writes v6.
    document = fixture_document(GREETLIB_HASH)
    document["spec"]["_meta"] = {"version": spec_format}
    published = write_spec_v3(
        tmp_path, spec_document=document, tarball=fixture_tarball(GREETLIB_HASH), signer=None
    )
    _, spec_record = manifest_json(published.manifest)["data"]
    assert spec_record["mediaType"] == SPEC_MEDIA_TYPE_V5
    assert spec_record["mediaType"] != SPEC_MEDIA_TYPE_V6


def test_index_lists_what_spack_1x_lists_for_spack_023_specs(tmp_path: Path) -> None:
    for dag_hash in PUSH_ORDER:
        write_spec_v3(
            tmp_path,
            spec_document=fixture_document(dag_hash),
            tarball=fixture_tarball(dag_hash),
            signer=None,
        )
        write_index_v3(tmp_path, index_nodes(dag_hash))
    manifest_file = index_manifest_path(tmp_path)
    assert manifest_file == tmp_path / "v3/manifests/index/index.manifest.json"
    (record,) = manifest_json(manifest_file)["data"]
    assert record["mediaType"] == INDEX_MEDIA_TYPE
    assert record["compression"] == "none"  # Spack stores the (unsigned) index as is
    index = json.loads(blob(tmp_path, record))
    assert index["database"]["version"] == "8"
    # The entries Spack 0.23 indexed for these pushes, in the form Spack 1.x's update-index
    # writes them into a version-8 database: no `compiler` (its spec format 5 reader refuses
    # one), the compiler in annotations, and format-4 edges marked direct.
    spack_index = json.loads((BUILD_CACHE / "index.json").read_bytes())
    expected = {}
    for dag_hash, entry in spack_index["database"]["installs"].items():
        node = dict(entry["spec"])
        compiler = node.pop("compiler")
        node["annotations"] = {
            "original_specfile_version": 4,
            "compiler": f"{compiler['name']}@={compiler['version']}",
        }
        for edge in node.get("dependencies", []):
            edge["parameters"] = {**edge["parameters"], "direct": True}
        expected[dag_hash] = {**entry, "spec": node}
    assert index["database"]["installs"] == expected
    assert not any("compiler" in e["spec"] for e in index["database"]["installs"].values())
    assert index["database"]["installs"][GLIBC_HASH]["in_buildcache"] is False


def test_index_is_incremental_and_keeps_entries_of_other_publishers(tmp_path: Path) -> None:
    write_index_v3(tmp_path, index_nodes(GREETLIB_HASH))
    first = manifest_json(index_manifest_path(tmp_path))["data"][0]
    write_index_v3(tmp_path, index_nodes(HELLO_HASH))
    (second,) = manifest_json(index_manifest_path(tmp_path))["data"]
    assert second["checksum"] != first["checksum"]
    installs = json.loads(blob(tmp_path, second))["database"]["installs"]
    assert set(installs) == {GREETLIB_HASH, HELLO_HASH, GLIBC_HASH}
    assert installs[GREETLIB_HASH]["ref_count"] == 1  # hello-app links it
    # The old blob stays: a reader holding the old manifest can still fetch it.
    assert blob(tmp_path, first)


def test_concurrent_index_writers_lose_nothing(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(lambda h: write_index_v3(tmp_path, index_nodes(h)), PUSH_ORDER))
    (record,) = manifest_json(index_manifest_path(tmp_path))["data"]
    installs = json.loads(blob(tmp_path, record))["database"]["installs"]
    assert set(installs) == {*PUSH_ORDER, GLIBC_HASH}


def test_keys_and_key_index_have_spacks_shape(tmp_path: Path, signer: GpgSigner) -> None:
    armored = FIXTURE_KEY.read_bytes()
    assert publish_key_v3(tmp_path, armored) == FIXTURE_FPR
    key_manifest = tmp_path / "v3/manifests/key" / f"{FIXTURE_FPR}.key.manifest.json"
    (record,) = manifest_json(key_manifest)["data"]
    assert record["mediaType"] == KEY_MEDIA_TYPE
    assert record["compression"] == "none"
    assert blob(tmp_path, record) == armored
    (index_record,) = manifest_json(key_index_manifest_path(tmp_path))["data"]
    assert index_record["mediaType"] == KEY_INDEX_MEDIA_TYPE
    # 56 bytes for one key, as in Spack's documented example of a key index manifest.
    assert index_record["contentLength"] == 56
    assert json.loads(blob(tmp_path, index_record)) == {"keys": {FIXTURE_FPR: {}}}

    publish_key_v3(tmp_path, signer.public_key())
    (index_record,) = manifest_json(key_index_manifest_path(tmp_path))["data"]
    keys = json.loads(blob(tmp_path, index_record))["keys"]
    assert list(keys) == [FIXTURE_FPR, signer.fingerprint]


# --- signing -------------------------------------------------------------------------------


def test_signed_manifest_is_the_unsigned_one_clear_signed(
    tmp_path: Path, signer: GpgSigner
) -> None:
    unsigned = write_spec_v3(
        tmp_path / "unsigned",
        spec_document=fixture_document(HELLO_HASH),
        tarball=fixture_tarball(HELLO_HASH),
        signer=None,
    )
    signed = write_spec_v3(
        tmp_path / "signed",
        spec_document=fixture_document(HELLO_HASH),
        tarball=fixture_tarball(HELLO_HASH),
        signer=signer,
    )
    data = signed.manifest.read_bytes()
    assert data.startswith(b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n")
    assert signed.manifest.name == unsigned.manifest.name
    assert signed.spec_blob.read_bytes() == unsigned.spec_blob.read_bytes()
    with TrustPolicy.gpg({signer.fingerprint: signer.public_key()}) as verifier:
        verified = verifier.verify_clearsigned(data, what="v3 manifest")
    assert verified.signers[0].identity == signer.fingerprint
    assert verified.payload.rstrip(b"\n") == unsigned.manifest.read_bytes()


# --- determinism ---------------------------------------------------------------------------


def test_publishing_twice_gives_byte_identical_files(tmp_path: Path) -> None:
    publish_fixture_cache(tmp_path / "one", signer=None)
    publish_fixture_cache(tmp_path / "two", signer=None)
    first = all_files(tmp_path / "one")
    assert first == all_files(tmp_path / "two")
    publish_fixture_cache(tmp_path / "one", signer=None)  # again, into the same mirror
    assert all_files(tmp_path / "one") == first
    # Three tarballs, three spec blobs, three indexes (one per push), a key, a key index.
    assert sum(name.startswith("blobs/") for name in first) == 11


def test_signed_pushes_differ_only_in_signatures(tmp_path: Path, signer: GpgSigner) -> None:
    publish_fixture_cache(tmp_path / "signed", signer=signer)
    publish_fixture_cache(tmp_path / "unsigned", signer=None)
    signed, unsigned = all_files(tmp_path / "signed"), all_files(tmp_path / "unsigned")
    assert signed.keys() == unsigned.keys()
    differing = {name for name in signed if signed[name] != unsigned[name]}
    assert differing == {name for name in signed if name.endswith(".spec.manifest.json")}


def test_a_damaged_blob_is_replaced_when_published_again(tmp_path: Path) -> None:
    published = write_spec_v3(
        tmp_path,
        spec_document=fixture_document(HELLO_HASH),
        tarball=fixture_tarball(HELLO_HASH),
        signer=None,
    )
    published.tarball.write_bytes(b"damaged")
    write_spec_v3(
        tmp_path,
        spec_document=fixture_document(HELLO_HASH),
        tarball=fixture_tarball(HELLO_HASH),
        signer=None,
    )
    assert published.tarball.read_bytes() == fixture_tarball(HELLO_HASH).read_bytes()


# --- bad input -----------------------------------------------------------------------------


def test_refuses_a_spec_document_without_nodes(tmp_path: Path) -> None:
    with pytest.raises(ReconcileError) as caught:
        write_spec_v3(
            tmp_path,
            spec_document={"spec": {"nodes": []}},
            tarball=fixture_tarball(HELLO_HASH),
            signer=None,
        )
    assert caught.value.reference == "bad-spec"
    assert not (tmp_path / "v3").exists()


def test_refuses_unsafe_names(tmp_path: Path) -> None:
    document = fixture_document(HELLO_HASH)
    document["spec"]["nodes"][0]["name"] = "../escape"
    with pytest.raises(ReconcileError, match="cannot be part of a mirror path"):
        write_spec_v3(
            tmp_path, spec_document=document, tarball=fixture_tarball(HELLO_HASH), signer=None
        )
    assert list(tmp_path.iterdir()) == []


def test_refuses_missing_or_uncompressed_tarballs(tmp_path: Path) -> None:
    with pytest.raises(ReconcileError) as missing:
        write_spec_v3(
            tmp_path,
            spec_document=fixture_document(HELLO_HASH),
            tarball=tmp_path / "absent.spack",
            signer=None,
        )
    assert missing.value.reference == "tarball-missing"
    plain = tmp_path / "plain.tar"
    plain.write_bytes(b"not gzip at all")
    with pytest.raises(ReconcileError) as uncompressed:
        write_spec_v3(
            tmp_path, spec_document=fixture_document(HELLO_HASH), tarball=plain, signer=None
        )
    assert uncompressed.value.reference == "bad-tarball"
    assert "not gzip-compressed" in uncompressed.value.message


def test_refuses_to_extend_a_damaged_index(tmp_path: Path) -> None:
    write_index_v3(tmp_path, index_nodes(GREETLIB_HASH))
    (record,) = manifest_json(index_manifest_path(tmp_path))["data"]
    blob_file = tmp_path / "blobs/sha256" / record["checksum"][:2] / record["checksum"]
    blob_file.write_bytes(blob_file.read_bytes().replace(b"greetlib", b"greetlig"))
    with pytest.raises(ReconcileError) as caught:
        write_index_v3(tmp_path, index_nodes(HELLO_HASH))
    assert caught.value.reference == "malformed-metadata"
    assert "sha256" in caught.value.message
    assert caught.value.hint is not None and "move the damaged manifest away" in caught.value.hint

    blob_file.unlink()
    with pytest.raises(ReconcileError, match="is missing"):
        write_index_v3(tmp_path, index_nodes(HELLO_HASH))

    index_manifest_path(tmp_path).write_text('{"version": 2, "data": []}')
    with pytest.raises(ReconcileError, match="layout version is 2, expected 3"):
        write_index_v3(tmp_path, index_nodes(HELLO_HASH))


def test_refuses_to_publish_anything_but_one_key(tmp_path: Path, signer: GpgSigner) -> None:
    with pytest.raises(ReconcileError, match="no OpenPGP public key") as none:
        publish_key_v3(tmp_path, b"not a key")
    assert none.value.reference == "bad-public-key"
    with pytest.raises(ReconcileError, match=FIXTURE_FPR):
        publish_key_v3(tmp_path, FIXTURE_KEY.read_bytes() + signer.public_key())
    assert not (tmp_path / "v3").exists()


def test_a_file_where_the_blobs_folder_belongs_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "blobs").write_text("not a folder")
    with pytest.raises(ReconcileError) as caught:
        write_spec_v3(
            tmp_path,
            spec_document=fixture_document(HELLO_HASH),
            tarball=fixture_tarball(HELLO_HASH),
            signer=None,
        )
    assert caught.value.reference == "mirror-unwritable"
    assert str(tmp_path) in caught.value.message
    assert not (tmp_path / "v3").exists()  # no manifest names a blob that is not there


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_mirror_is_a_clear_error(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    mirror.chmod(0o555)
    try:
        with pytest.raises(ReconcileError) as caught:
            write_spec_v3(
                mirror,
                spec_document=fixture_document(HELLO_HASH),
                tarball=fixture_tarball(HELLO_HASH),
                signer=None,
            )
    finally:
        mirror.chmod(0o755)
    assert caught.value.reference == "mirror-unwritable"
