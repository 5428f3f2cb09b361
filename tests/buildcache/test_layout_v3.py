"""Reading layout-v3 caches written from the Spack-made fixture specs and tarballs: layout
detection, the index, spec manifests verified with real gpg (and refused with the wrong key,
without a signature, tampered, or of another layout version), blobs checked against their
manifest, and keys."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
from collections.abc import Iterator
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
    SIGNED_CACHE,
    UNSIGNED_CACHE,
)

from reconcile.buildcache.layout_v2 import FetchedSpec, read_index
from reconcile.buildcache.layout_v3 import (
    MAX_SPEC_BYTES,
    FetchedSpecV3,
    blob_url,
    fetch_spec_v3,
    is_v3,
    key_manifest_url,
    read_index_v3,
    read_key_index_v3,
    read_mirror_key_v3,
    spec_manifest_url,
)
from reconcile.buildcache.manifest_v3 import BlobRecord
from reconcile.buildcache.writer_v3 import (
    index_manifest_path,
    publish_key_v3,
    spec_manifest_path,
    write_index_v3,
    write_spec_v3,
)
from reconcile.errors import NotFoundError, VerificationError
from reconcile.spack.spec import SpecNode, parse_spec_document
from reconcile.transport.file import FileTransport
from reconcile.trust.gnupg import isolated_home
from reconcile.trust.policy import TrustPolicy
from reconcile.trust.sign import GpgSigner, generate_key

BUILD_CACHE = UNSIGNED_CACHE / "build_cache"
PUSH_ORDER = [GCC_RUNTIME_HASH, GREETLIB_HASH, HELLO_HASH]
TARBALL_SHA256 = {
    HELLO_HASH: "ef1205a792c3b247df955a6c0a7ece622883c2ef5e0d9a65ad6630c2439fb393",
    GREETLIB_HASH: "7411478146e45bbac005244078efa2c619aa390dd5589d745c14b3e9e7c15426",
    GCC_RUNTIME_HASH: "0448526af2bad1701bc3b7e009f0890e47285e5c4c34da04ad21b7e45eb35fdf",
}
TARBALL_SIZE = {HELLO_HASH: 9861, GREETLIB_HASH: 9708, GCC_RUNTIME_HASH: 9566481}

transport = FileTransport()


def fixture_document(dag_hash: str) -> dict[str, Any]:
    (found,) = BUILD_CACHE.glob(f"*-{dag_hash}.spec.json")
    loaded: dict[str, Any] = json.loads(found.read_bytes())
    return loaded


def fixture_tarball(dag_hash: str) -> Path:
    (found,) = BUILD_CACHE.glob(f"*/*/*/*-{dag_hash}.spack")
    return found


def node(dag_hash: str) -> SpecNode:
    return parse_spec_document(fixture_document(dag_hash)).root


def publish(mirror: Path, signer: GpgSigner | None) -> Path:
    for dag_hash in PUSH_ORDER:
        write_spec_v3(
            mirror,
            spec_document=fixture_document(dag_hash),
            tarball=fixture_tarball(dag_hash),
            signer=signer,
        )
        document = parse_spec_document(fixture_document(dag_hash))
        write_index_v3(mirror, [n for n in document.nodes if n.is_external] + [document.root])
    publish_key_v3(mirror, FIXTURE_KEY.read_bytes())
    if signer is not None:
        publish_key_v3(mirror, signer.public_key())
    return mirror


def copy_of(mirror: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "copy"
    shutil.copytree(mirror, dest)
    return dest


def manifest_record(manifest_file: Path, position: int) -> dict[str, Any]:
    text = manifest_file.read_bytes()
    if text.startswith(b"-----BEGIN PGP SIGNED MESSAGE-----"):
        text = text[text.index(b"{") : text.rindex(b"}") + 1]
    record: dict[str, Any] = json.loads(text)["data"][position]
    return record


def blob_file(mirror: Path, record: dict[str, Any]) -> Path:
    checksum = str(record["checksum"])
    return mirror / "blobs/sha256" / checksum[:2] / checksum


def rewrite_manifest(path: Path, change: Any, signer: GpgSigner | None = None) -> None:
    """Rewrite an unsigned manifest through ``change(manifest_dict)``; sign it if asked."""
    manifest = json.loads(path.read_bytes())
    change(manifest)
    text = json.dumps(manifest, indent=0, separators=(",", ":")).encode()
    path.write_bytes(signer.clearsign(text) if signer else text)


@pytest.fixture(scope="module")
def signer() -> Iterator[GpgSigner]:
    with isolated_home() as home:
        fingerprint = generate_key(home, "Mirror Owner V3", "owner-v3@example.invalid")
        yield GpgSigner(gnupghome=home, fingerprint=fingerprint)


@pytest.fixture(scope="module")
def other_signer() -> Iterator[GpgSigner]:
    with isolated_home() as home:
        fingerprint = generate_key(home, "Somebody Else", "else@example.invalid")
        yield GpgSigner(gnupghome=home, fingerprint=fingerprint)


@pytest.fixture(scope="module")
def signed_mirror(tmp_path_factory: pytest.TempPathFactory, signer: GpgSigner) -> Path:
    return publish(tmp_path_factory.mktemp("signed-v3"), signer)


@pytest.fixture(scope="module")
def unsigned_mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return publish(tmp_path_factory.mktemp("unsigned-v3"), None)


@pytest.fixture(scope="module")
def verifier(signer: GpgSigner) -> Iterator[TrustPolicy]:
    with TrustPolicy.gpg({signer.fingerprint: signer.public_key()}) as pinned:
        yield pinned


# --- layout and index ----------------------------------------------------------------------


def test_layout_is_detected_by_layout_json(signed_mirror: Path, tmp_path: Path) -> None:
    assert is_v3(transport, signed_mirror.as_uri())
    assert not is_v3(transport, SIGNED_CACHE.as_uri())
    assert not is_v3(transport, tmp_path.as_uri())


def test_index_lists_the_same_specs_as_spacks_v2_index(signed_mirror: Path) -> None:
    entries = read_index_v3(transport, signed_mirror.as_uri())
    v2_entries = read_index(transport, SIGNED_CACHE.as_uri())
    assert set(entries) == {*PUSH_ORDER, GLIBC_HASH}
    assert entries == v2_entries
    assert entries[GLIBC_HASH].in_buildcache is False
    assert entries[GLIBC_HASH].node.external_path == "/usr"
    assert all(entries[h].in_buildcache for h in PUSH_ORDER)


def test_index_local_copy_with_the_right_checksum_is_used_without_download(
    signed_mirror: Path, tmp_path: Path
) -> None:
    mirror = copy_of(signed_mirror, tmp_path)
    record = manifest_record(index_manifest_path(mirror), 0)
    local_copy = tmp_path / "index-copy"
    local_copy.write_bytes(b"stale bytes from an older index")
    counting = FileTransport()
    assert set(read_index_v3(counting, mirror.as_uri(), local_copy=local_copy)) == {
        *PUSH_ORDER,
        GLIBC_HASH,
    }
    assert counting.bytes_received > record["contentLength"]  # the blob was downloaded

    shutil.copyfile(blob_file(mirror, record), local_copy)
    blob_file(mirror, record).unlink()  # the mirror no longer has it: the copy must do
    counting = FileTransport()
    entries = read_index_v3(counting, mirror.as_uri(), local_copy=local_copy)
    assert set(entries) == {*PUSH_ORDER, GLIBC_HASH}
    assert counting.bytes_received == index_manifest_path(mirror).stat().st_size


def test_index_blob_that_does_not_match_its_manifest_is_refused(
    signed_mirror: Path, tmp_path: Path
) -> None:
    mirror = copy_of(signed_mirror, tmp_path)
    target = blob_file(mirror, manifest_record(index_manifest_path(mirror), 0))
    target.write_bytes(target.read_bytes().replace(b"greetlib", b"greetlix"))
    with pytest.raises(VerificationError, match=r"sha256 is .* but the manifest says"):
        read_index_v3(transport, mirror.as_uri())
    target.unlink()
    with pytest.raises(NotFoundError, match="index blob named by the index manifest"):
        read_index_v3(transport, mirror.as_uri())


def test_missing_or_foreign_index_is_reported(tmp_path: Path, unsigned_mirror: Path) -> None:
    with pytest.raises(NotFoundError) as missing:
        read_index_v3(transport, tmp_path.as_uri())
    assert "no binary cache index (layout v3)" in missing.value.message
    assert missing.value.hint is not None and "update-index" in missing.value.hint

    mirror = copy_of(unsigned_mirror, tmp_path)
    rewrite_manifest(
        index_manifest_path(mirror),
        lambda m: m["data"][0].update(mediaType="application/vnd.spack.db.v7+json"),
    )
    with pytest.raises(VerificationError, match=r"no blob of media type .*db\.v8\+json") as bad:
        read_index_v3(transport, mirror.as_uri())
    assert bad.value.reference == "malformed-metadata"


# --- spec manifests ------------------------------------------------------------------------


@pytest.mark.parametrize("dag_hash", PUSH_ORDER)
def test_signed_spec_verifies_and_names_the_tarball_blob(
    signed_mirror: Path, verifier: TrustPolicy, signer: GpgSigner, dag_hash: str
) -> None:
    mirror = signed_mirror.as_uri()
    fetched = fetch_spec_v3(transport, mirror, node(dag_hash), trust=verifier)
    assert isinstance(fetched, FetchedSpecV3)
    assert isinstance(fetched, FetchedSpec)  # usable wherever a v2 result is
    assert fetched.signer == signer.fingerprint
    assert fetched.document.root == node(dag_hash)
    assert fetched.document.tarball_sha256 == fetched.tarball_sha256 == TARBALL_SHA256[dag_hash]
    assert fetched.tarball_size == TARBALL_SIZE[dag_hash]
    checksum = TARBALL_SHA256[dag_hash]
    assert fetched.tarball_url == f"{mirror}/blobs/sha256/{checksum[:2]}/{checksum}"
    spec = node(dag_hash)
    assert (
        fetched.url
        == spec_manifest_url(mirror, spec)
        == (
            f"{mirror}/v3/manifests/spec/{spec.name}/{spec.name}-{spec.version}-{dag_hash}"
            ".spec.manifest.json"
        )
    )
    manifest_bytes = spec_manifest_path(signed_mirror, node(dag_hash)).read_bytes()
    assert fetched.metadata_sha256 == hashlib.sha256(manifest_bytes).hexdigest()
    tarball = transport.read_bytes(fetched.tarball_url)
    assert hashlib.sha256(tarball).hexdigest() == checksum


def test_refused_when_signed_by_a_key_the_manifest_does_not_pin(
    signed_mirror: Path, other_signer: GpgSigner
) -> None:
    with (
        TrustPolicy.gpg({other_signer.fingerprint: other_signer.public_key()}) as wrong,
        pytest.raises(VerificationError, match="does not pin") as caught,
    ):
        fetch_spec_v3(
            transport, signed_mirror.as_uri(), node(HELLO_HASH), trust=wrong, mirror_name="team"
        )
    assert "spec hello-app@3.0/d7r6xmz from mirror 'team'" in caught.value.message


def test_unsigned_manifest_is_refused_when_signatures_are_required(
    unsigned_mirror: Path, verifier: TrustPolicy
) -> None:
    with pytest.raises(VerificationError, match="is not signed") as caught:
        fetch_spec_v3(
            transport,
            unsigned_mirror.as_uri(),
            node(HELLO_HASH),
            trust=verifier,
            mirror_name="plain",
        )
    assert (
        caught.value.hint
        == "set signed = false on mirror 'plain' to accept unsigned binaries from it"
    )


def test_unsigned_mirror_accepts_plain_and_signed_manifests_unverified(
    unsigned_mirror: Path, signed_mirror: Path
) -> None:
    for mirror in (unsigned_mirror, signed_mirror):
        fetched = fetch_spec_v3(transport, mirror.as_uri(), node(GREETLIB_HASH), trust=None)
        assert fetched.signer is None
        assert fetched.tarball_sha256 == TARBALL_SHA256[GREETLIB_HASH]


def test_edited_signed_manifest_fails_its_signature(
    signed_mirror: Path, verifier: TrustPolicy, tmp_path: Path
) -> None:
    mirror = copy_of(signed_mirror, tmp_path)
    path = spec_manifest_path(mirror, node(HELLO_HASH))
    # Point the tarball entry at greetlib's tarball: the signature must catch it.
    forged = path.read_bytes().replace(
        TARBALL_SHA256[HELLO_HASH].encode(), TARBALL_SHA256[GREETLIB_HASH].encode()
    )
    path.write_bytes(forged)
    with pytest.raises(VerificationError, match="BAD signature"):
        fetch_spec_v3(transport, mirror.as_uri(), node(HELLO_HASH), trust=verifier)


def test_tampered_spec_blob_is_refused_before_it_is_read(
    signed_mirror: Path, verifier: TrustPolicy, tmp_path: Path
) -> None:
    mirror = copy_of(signed_mirror, tmp_path)
    record = manifest_record(spec_manifest_path(mirror, node(HELLO_HASH)), 1)
    target = blob_file(mirror, record)
    content = gzip.decompress(target.read_bytes()).replace(b'"3.0"', b'"3.1"')
    target.write_bytes(gzip.compress(content, mtime=0))
    with pytest.raises(VerificationError) as caught:
        fetch_spec_v3(transport, mirror.as_uri(), node(HELLO_HASH), trust=verifier)
    assert "spec blob" in caught.value.message
    assert "the manifest says" in caught.value.message
    target.unlink()
    with pytest.raises(NotFoundError, match=r"spec blob .* does not exist"):
        fetch_spec_v3(transport, mirror.as_uri(), node(HELLO_HASH), trust=verifier)


def test_tampered_tarball_keeps_the_manifests_checksum(
    signed_mirror: Path, verifier: TrustPolicy, tmp_path: Path
) -> None:
    """The reader hands back the signed checksum, never one computed from the blob, so the
    installer's check of the downloaded tarball catches the tampering."""
    mirror = copy_of(signed_mirror, tmp_path)
    tarball = mirror / "blobs/sha256/ef" / TARBALL_SHA256[HELLO_HASH]
    tarball.write_bytes(tarball.read_bytes() + b"\0")
    fetched = fetch_spec_v3(transport, mirror.as_uri(), node(HELLO_HASH), trust=verifier)
    assert fetched.tarball_sha256 == TARBALL_SHA256[HELLO_HASH]
    downloaded = transport.read_bytes(fetched.tarball_url)
    assert hashlib.sha256(downloaded).hexdigest() != fetched.tarball_sha256
    assert len(downloaded) != fetched.tarball_size


def test_spec_blob_naming_another_tarball_checksum_is_refused(
    unsigned_mirror: Path, tmp_path: Path
) -> None:
    mirror = copy_of(unsigned_mirror, tmp_path)
    document = fixture_document(HELLO_HASH)  # a v2 document: carries binary_cache_checksum
    document["binary_cache_checksum"]["hash"] = TARBALL_SHA256[GREETLIB_HASH]
    spec_blob = gzip.compress(json.dumps(document).encode(), mtime=0)
    record = BlobRecord(
        content_length=len(spec_blob),
        media_type="application/vnd.spack.spec.v5+json",
        compression="gzip",
        checksum_algorithm="sha256",
        checksum=hashlib.sha256(spec_blob).hexdigest(),
    )
    blob_file(mirror, record.to_json()).parent.mkdir(parents=True, exist_ok=True)
    blob_file(mirror, record.to_json()).write_bytes(spec_blob)
    rewrite_manifest(
        spec_manifest_path(mirror, node(HELLO_HASH)),
        lambda m: m["data"].__setitem__(1, record.to_json()),
    )
    with pytest.raises(VerificationError, match="names tarball sha256"):
        fetch_spec_v3(transport, mirror.as_uri(), node(HELLO_HASH), trust=None)


def test_manifest_of_another_layout_version_is_refused(
    unsigned_mirror: Path, signer: GpgSigner, verifier: TrustPolicy, tmp_path: Path
) -> None:
    mirror = copy_of(unsigned_mirror, tmp_path)
    path = spec_manifest_path(mirror, node(HELLO_HASH))
    rewrite_manifest(path, lambda m: m.update(version=2), signer=signer)  # validly signed
    with pytest.raises(VerificationError) as caught:
        fetch_spec_v3(transport, mirror.as_uri(), node(HELLO_HASH), trust=verifier)
    assert caught.value.reference == "unsupported-layout"
    assert "layout version is 2, expected 3" in caught.value.message


def test_substituted_spec_is_refused(unsigned_mirror: Path, tmp_path: Path) -> None:
    mirror = copy_of(unsigned_mirror, tmp_path)
    shutil.copyfile(
        spec_manifest_path(mirror, node(GREETLIB_HASH)),
        spec_manifest_path(mirror, node(HELLO_HASH)),
    )
    with pytest.raises(VerificationError, match="a substituted spec"):
        fetch_spec_v3(transport, mirror.as_uri(), node(HELLO_HASH), trust=None)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m["data"].pop(0), "no blob of media type application/vnd.spack.install"),
        (lambda m: m["data"].append(m["data"][0]), "2 blobs of media type"),
        (lambda m: m["data"][1].update(checksum="../../../etc/passwd"), "64 lower-case hex"),
        (lambda m: m["data"][0].update(checksumAlgorithm="md5"), "expected 'sha256'"),
        (lambda m: m["data"][0].update(compression="none"), "expected 'gzip'"),
        (lambda m: m["data"][1].update(compression="zstd"), "expected 'gzip' or 'none'"),
        (lambda m: m["data"][1].update(contentLength=-1), "expected a byte count"),
        (lambda m: m["data"][1].pop("checksum"), "lacks checksum"),
        (lambda m: m.pop("data"), "expected a manifest object"),
    ],
)
def test_malformed_manifests_are_refused(
    unsigned_mirror: Path, tmp_path: Path, change: Any, message: str
) -> None:
    mirror = copy_of(unsigned_mirror, tmp_path)
    rewrite_manifest(spec_manifest_path(mirror, node(HELLO_HASH)), change)
    with pytest.raises(VerificationError, match=re.escape(message)) as caught:
        fetch_spec_v3(transport, mirror.as_uri(), node(HELLO_HASH), trust=None)
    assert caught.value.reference == "malformed-metadata"


def test_spec_blob_that_expands_beyond_the_limit_is_refused(
    unsigned_mirror: Path, tmp_path: Path
) -> None:
    mirror = copy_of(unsigned_mirror, tmp_path)
    bomb = gzip.compress(b" " * (MAX_SPEC_BYTES + 1), compresslevel=1, mtime=0)
    record = BlobRecord(
        content_length=len(bomb),
        media_type="application/vnd.spack.spec.v5+json",
        compression="gzip",
        checksum_algorithm="sha256",
        checksum=hashlib.sha256(bomb).hexdigest(),
    )
    blob_file(mirror, record.to_json()).parent.mkdir(parents=True, exist_ok=True)
    blob_file(mirror, record.to_json()).write_bytes(bomb)
    rewrite_manifest(
        spec_manifest_path(mirror, node(HELLO_HASH)),
        lambda m: m["data"].__setitem__(1, record.to_json()),
    )
    with pytest.raises(VerificationError, match="expands to more than"):
        fetch_spec_v3(transport, mirror.as_uri(), node(HELLO_HASH), trust=None)


def test_missing_manifest_and_unsafe_names(unsigned_mirror: Path, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist") as missing:
        fetch_spec_v3(transport, tmp_path.as_uri(), node(HELLO_HASH), trust=None)
    assert missing.value.hint is not None and "update-index" in missing.value.hint
    raw = dict(node(HELLO_HASH).raw, name="../../escape")
    hostile = parse_spec_document({"spec": {"nodes": [raw]}}).root
    with pytest.raises(VerificationError, match="unusable path component"):
        fetch_spec_v3(transport, unsigned_mirror.as_uri(), hostile, trust=None)


# --- keys ----------------------------------------------------------------------------------


def test_keys_round_trip(signed_mirror: Path, signer: GpgSigner) -> None:
    mirror = signed_mirror.as_uri()
    assert read_mirror_key_v3(transport.read_bytes, mirror, FIXTURE_FPR) == FIXTURE_KEY.read_bytes()
    lower = signer.fingerprint.lower()
    assert read_mirror_key_v3(transport.read_bytes, mirror, lower) == signer.public_key()
    assert read_key_index_v3(transport.read_bytes, mirror) == (FIXTURE_FPR, signer.fingerprint)
    assert key_manifest_url(mirror, FIXTURE_FPR) == (
        f"{mirror}/v3/manifests/key/{FIXTURE_FPR}.key.manifest.json"
    )


def test_key_errors(signed_mirror: Path, other_signer: GpgSigner, tmp_path: Path) -> None:
    mirror = copy_of(signed_mirror, tmp_path)
    with pytest.raises(NotFoundError):
        read_mirror_key_v3(transport.read_bytes, mirror.as_uri(), other_signer.fingerprint)
    with pytest.raises(ValueError, match="not a GnuPG fingerprint"):
        read_mirror_key_v3(transport.read_bytes, mirror.as_uri(), "../../etc/passwd")
    record = manifest_record(mirror / "v3/manifests/key" / f"{FIXTURE_FPR}.key.manifest.json", 0)
    blob_file(mirror, record).write_bytes(other_signer.public_key())
    with pytest.raises(VerificationError, match="the manifest says"):
        read_mirror_key_v3(transport.read_bytes, mirror.as_uri(), FIXTURE_FPR)


def test_blob_urls_are_content_addressed() -> None:
    record = BlobRecord(
        content_length=1,
        media_type="application/pgp-keys",
        compression="none",
        checksum_algorithm="sha256",
        checksum="ab" * 32,
    )
    assert blob_url("https://mirror.example/cache/", record) == (
        "https://mirror.example/cache/blobs/sha256/ab/" + "ab" * 32
    )
