"""Writing layout-v2 caches: golden tests against the Spack-made fixtures, signing with real
GnuPG keys, incremental indexes, and a round trip through reconcile's own reader."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
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
    REPO,
    SIGNED_CACHE,
    UNSIGNED_CACHE,
)

from reconcile.buildcache.layout_v2 import fetch_spec, read_index, tarball_url
from reconcile.buildcache.writer_v2 import (
    publish_key_v2,
    spec_json_bytes,
    write_index_v2,
    write_package_v2,
    write_spec_v2,
)
from reconcile.errors import ReconcileError, VerificationError
from reconcile.spack.dag_hash import dag_hash
from reconcile.spack.spec import SpecNode, parse_node, parse_spec_document
from reconcile.transport.file import FileTransport
from reconcile.trust.gnupg import isolated_home, run_gpg
from reconcile.trust.policy import TrustPolicy
from reconcile.trust.sign import GpgSigner, generate_key

BUILD_CACHE = UNSIGNED_CACHE / "build_cache"
PUSH_ORDER = [GCC_RUNTIME_HASH, GREETLIB_HASH, HELLO_HASH]  # dependencies first, as Spack pushed


def fixture_spec_file(dag_hash_: str) -> Path:
    (found,) = BUILD_CACHE.glob(f"*-{dag_hash_}.spec.json")
    return found


def fixture_document(dag_hash_: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(fixture_spec_file(dag_hash_).read_bytes())
    return loaded


def fixture_tarball(dag_hash_: str) -> Path:
    (found,) = BUILD_CACHE.glob(f"*/*/*/*-{dag_hash_}.spack")
    return found


def relative_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def signer() -> Iterator[GpgSigner]:
    # A short GnuPG home (the agent's socket path must stay under ~100 characters).
    with isolated_home() as home:
        fingerprint = generate_key(home, "Publisher Test", "publisher@example.invalid")
        yield GpgSigner(gnupghome=home, fingerprint=fingerprint)


# --- golden tests against the fixture caches --------------------------------------------------


@pytest.mark.parametrize("dag_hash_", PUSH_ORDER)
def test_spec_json_is_written_one_token_per_line_like_spack(dag_hash_: str) -> None:
    original = fixture_spec_file(dag_hash_).read_bytes()
    assert spec_json_bytes(json.loads(original)) == original


def test_unsigned_cache_written_from_fixture_parts_equals_spacks(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    for dag_hash_ in PUSH_ORDER:
        document = fixture_document(dag_hash_)
        spec_only = {"spec": document["spec"]}  # what a publisher starts from
        published = write_spec_v2(
            mirror, spec_document=spec_only, tarball=fixture_tarball(dag_hash_), signer=None
        )
        assert published.tarball_sha256 == document["binary_cache_checksum"]["hash"]
        parsed = parse_spec_document(document)
        write_index_v2(mirror, [n for n in parsed.nodes if n.is_external] + [parsed.root])

    # Same files at the same places, with the same bytes (the index included).
    assert relative_files(mirror) == relative_files(UNSIGNED_CACHE)
    for relative in relative_files(UNSIGNED_CACHE):
        assert (mirror / relative).read_bytes() == (UNSIGNED_CACHE / relative).read_bytes(), (
            relative
        )


def test_published_fixture_key_matches_spacks_key_folder(tmp_path: Path) -> None:
    fingerprint = publish_key_v2(tmp_path, FIXTURE_KEY.read_bytes())
    assert fingerprint == FIXTURE_FPR
    keys = SIGNED_CACHE / "build_cache" / "_pgp"
    written = tmp_path / "build_cache" / "_pgp"
    assert relative_files(written) == relative_files(keys)
    assert (written / "index.json").read_bytes() == (keys / "index.json").read_bytes()
    assert (written / f"{FIXTURE_FPR}.pub").read_bytes() == FIXTURE_KEY.read_bytes()


def test_signed_spec_has_spacks_shape_and_verifies(tmp_path: Path, signer: GpgSigner) -> None:
    mirror = tmp_path / "mirror"
    document = {"spec": fixture_document(HELLO_HASH)["spec"]}
    published = write_spec_v2(
        mirror, spec_document=document, tarball=fixture_tarball(HELLO_HASH), signer=signer
    )
    assert published.metadata.name.endswith(f"-{HELLO_HASH}.spec.json.sig")
    signed = published.metadata.read_bytes()
    spack_signed = next((SIGNED_CACHE / "build_cache").glob(f"*{HELLO_HASH}.spec.json.sig"))
    assert published.metadata.name == spack_signed.name
    header = b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n"
    assert signed.startswith(header)
    # The signed body is the unsigned file, token per line: the same as in Spack's .sig.
    body = signed[len(header) : signed.index(b"\n-----BEGIN PGP SIGNATURE-----")]
    assert body == fixture_spec_file(HELLO_HASH).read_bytes()
    spack_body = spack_signed.read_bytes()[len(header) :]
    assert spack_body.startswith(body + b"\n-----BEGIN PGP SIGNATURE-----")

    with TrustPolicy.gpg({signer.fingerprint: signer.public_key()}) as verifier:
        verified = verifier.verify_clearsigned(signed, what="test spec")
    assert verified.signers[0].identity == signer.fingerprint
    assert json.loads(verified.payload) == fixture_document(HELLO_HASH)


def test_signed_cache_has_the_fixture_layout(tmp_path: Path, signer: GpgSigner) -> None:
    mirror = tmp_path / "mirror"
    for dag_hash_ in PUSH_ORDER:
        spec = {"spec": fixture_document(dag_hash_)["spec"]}
        write_spec_v2(mirror, spec_document=spec, tarball=fixture_tarball(dag_hash_), signer=signer)
        parsed = parse_spec_document(spec)
        write_index_v2(mirror, [n for n in parsed.nodes if n.is_external] + [parsed.root])
    publish_key_v2(mirror, signer.public_key())
    expected = {
        name.replace(FIXTURE_FPR, signer.fingerprint) for name in relative_files(SIGNED_CACHE)
    }
    assert relative_files(mirror) == expected
    index = "build_cache/index.json"
    assert (mirror / index).read_bytes() == (SIGNED_CACHE / index).read_bytes()


# --- a real round trip: publish a compiled prefix, read it back with reconcile's reader ------


def build_demo(tmp_path: Path, old_prefix: str) -> Path:
    prefix = tmp_path / "demo-prefix"
    (prefix / "bin").mkdir(parents=True)
    (prefix / ".spack").mkdir()
    source = tmp_path / "demo.c"
    source.write_text(
        '#include <stdio.h>\nint main(void) { puts("' + old_prefix + '"); return 0; }\n'
    )
    subprocess.run(["gcc", "-o", str(prefix / "bin/demo"), str(source)], check=True)
    (prefix / "bin/demo-wrapper").write_text(f"#!/bin/sh\nexec {old_prefix}/bin/demo\n")
    (prefix / "bin/demo-wrapper").chmod(0o755)
    return prefix


def demo_document() -> dict[str, Any]:
    arch = {"platform": "linux", "platform_os": "debian12", "target": "x86_64"}
    compiler = {"name": "gcc", "version": "12.2.0"}
    glibc: dict[str, Any] = {
        "name": "glibc",
        "version": "2.36",
        "arch": arch,
        "compiler": compiler,
        "namespace": "builtin",
        "parameters": {},
        "external": {"path": "/usr", "module": None, "extra_attributes": {}},
    }
    glibc["hash"] = dag_hash(glibc)
    demo: dict[str, Any] = {
        "name": "demo",
        "version": "1.0",
        "arch": arch,
        "compiler": compiler,
        "namespace": "test",
        "parameters": {"build_system": "generic"},
        "dependencies": [
            {"name": "glibc", "hash": glibc["hash"], "parameters": {"deptypes": ["link"]}}
        ],
    }
    demo["hash"] = dag_hash(demo)
    return {"spec": {"_meta": {"version": 4}, "nodes": [demo, glibc]}}


def publish_demo(
    tmp_path: Path, mirror: Path, signer: GpgSigner | None
) -> tuple[dict[str, Any], str]:
    document = demo_document()
    demo = document["spec"]["nodes"][0]
    buildpath = "/tmp/publish-roundtrip/opt/__spack_path_placeholder__"
    old_prefix = f"{buildpath}/linux-debian12-x86_64/gcc-12.2.0/demo-1.0-{demo['hash']}"
    prefix = build_demo(tmp_path, old_prefix)
    write_package_v2(
        mirror,
        prefix=prefix,
        spec_document=document,
        buildpath=buildpath,
        hash_to_prefix={demo["hash"]: old_prefix},
        signer=signer,
    )
    return document, old_prefix


def test_round_trip_through_reader_and_verifier(tmp_path: Path, signer: GpgSigner) -> None:
    mirror = tmp_path / "mirror"
    document, old_prefix = publish_demo(tmp_path, mirror, signer)
    demo_hash = document["spec"]["nodes"][0]["hash"]
    glibc_hash = document["spec"]["nodes"][1]["hash"]
    url = mirror.as_uri()
    transport = FileTransport()

    index = read_index(transport, url)
    assert set(index) == {demo_hash, glibc_hash}
    assert index[demo_hash].in_buildcache and not index[glibc_hash].in_buildcache

    # The key published on the mirror is the signer's; the reader trusts it once pinned.
    published_key = (mirror / "build_cache" / "_pgp" / f"{signer.fingerprint}.pub").read_bytes()
    with TrustPolicy.gpg({signer.fingerprint: published_key}) as verifier:
        fetched = fetch_spec(transport, url, index[demo_hash].node, trust=verifier)
    assert fetched.signer == signer.fingerprint
    tarball = transport.read_bytes(tarball_url(url, index[demo_hash].node))
    assert hashlib.sha256(tarball).hexdigest() == fetched.document.tarball_sha256

    # The recipe inside names what the installer must rewrite.
    tar_path = tmp_path / "fetched.spack"
    tar_path.write_bytes(tarball)
    with tarfile.open(tar_path) as archive:
        last = archive.getmembers()[-1]
        recipe = archive.extractfile(last).read().decode()  # type: ignore[union-attr]
    assert last.name == old_prefix.lstrip("/") + "/.spack/binary_distribution"
    assert "relocate_binaries: [bin/demo]" in recipe
    assert "relocate_textfiles: [bin/demo-wrapper]" in recipe


def test_another_key_is_refused_by_the_reader(tmp_path: Path, signer: GpgSigner) -> None:
    mirror = tmp_path / "mirror"
    document, _ = publish_demo(tmp_path, mirror, signer)
    node = parse_node(document["spec"]["nodes"][0])
    with (
        TrustPolicy.gpg({FIXTURE_FPR: FIXTURE_KEY.read_bytes()}) as verifier,
        pytest.raises(VerificationError),
    ):
        fetch_spec(FileTransport(), mirror.as_uri(), node, trust=verifier)


def test_unsigned_publish_and_switch_to_signed_removes_the_stale_variant(
    tmp_path: Path, signer: GpgSigner
) -> None:
    mirror = tmp_path / "mirror"
    document, _ = publish_demo(tmp_path, mirror, None)
    stem_files = sorted(p.name for p in (mirror / "build_cache").glob("*.spec.json*"))
    assert len(stem_files) == 1 and stem_files[0].endswith(".spec.json")
    node = parse_node(document["spec"]["nodes"][0])
    fetched = fetch_spec(FileTransport(), mirror.as_uri(), node, trust=None)
    assert fetched.signer is None
    assert not (mirror / "build_cache" / "_pgp").exists()

    publish_demo(tmp_path / "again", mirror, signer)
    stem_files = sorted(p.name for p in (mirror / "build_cache").glob("*.spec.json*"))
    assert len(stem_files) == 1 and stem_files[0].endswith(".spec.json.sig")


def test_publishing_twice_is_byte_identical_and_leaves_no_temporary_files(
    tmp_path: Path,
) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    publish_demo(tmp_path / "a", first, None)
    publish_demo(tmp_path / "b", second, None)
    publish_demo(tmp_path / "c", second, None)  # again over itself
    assert relative_files(first) == relative_files(second)
    for relative in relative_files(first):
        assert (first / relative).read_bytes() == (second / relative).read_bytes(), relative
    assert not [p for p in second.rglob("*") if p.name.startswith(".")]


# --- the index: incremental, atomic, concurrent -----------------------------------------------


def fixture_nodes() -> dict[str, SpecNode]:
    document = parse_spec_document(fixture_document(HELLO_HASH))
    return {node.hash: node for node in document.nodes}


def read_installs(mirror: Path) -> dict[str, Any]:
    index = mirror / "build_cache" / "index.json"
    data = index.read_bytes()
    assert (mirror / "build_cache" / "index.json.hash").read_text() == hashlib.sha256(
        data
    ).hexdigest()
    installs: dict[str, Any] = json.loads(data)["database"]["installs"]
    return installs


def test_index_keeps_entries_and_counts_references(tmp_path: Path) -> None:
    nodes = fixture_nodes()
    write_index_v2(tmp_path, [nodes[GLIBC_HASH], nodes[GREETLIB_HASH]])
    write_index_v2(tmp_path, [nodes[HELLO_HASH]])
    installs = read_installs(tmp_path)
    assert list(installs) == [GLIBC_HASH, GREETLIB_HASH, HELLO_HASH]
    assert installs[GLIBC_HASH]["in_buildcache"] is False
    assert installs[HELLO_HASH]["in_buildcache"] is True
    assert installs[GLIBC_HASH]["ref_count"] == 2
    assert installs[GREETLIB_HASH]["ref_count"] == 1
    assert installs[HELLO_HASH]["spec"] == dict(nodes[HELLO_HASH].raw)

    # Replacing an entry keeps its place; an external never demotes a cached spec.
    write_index_v2(tmp_path, [nodes[GREETLIB_HASH]])
    assert list(read_installs(tmp_path)) == [GLIBC_HASH, GREETLIB_HASH, HELLO_HASH]


def test_concurrent_index_writers_lose_nothing(tmp_path: Path) -> None:
    base = dict(fixture_nodes()[GREETLIB_HASH].raw)
    nodes = []
    for number in range(12):
        raw = {**base, "version": f"2.{number}", "hash": ""}
        raw["hash"] = dag_hash(raw)
        nodes.append(parse_node(raw))
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda node: write_index_v2(tmp_path, [node]), nodes))
    assert set(read_installs(tmp_path)) == {node.hash for node in nodes}
    assert sorted(p.name for p in (tmp_path / "build_cache").iterdir()) == [
        "index.json",
        "index.json.hash",
    ]


def test_damaged_index_is_reported_not_overwritten(tmp_path: Path) -> None:
    folder = tmp_path / "build_cache"
    folder.mkdir()
    (folder / "index.json").write_text('{"database": ')
    with pytest.raises(ReconcileError, match="not valid JSON") as caught:
        write_index_v2(tmp_path, [fixture_nodes()[HELLO_HASH]])
    assert caught.value.hint
    assert (folder / "index.json").read_text() == '{"database": '
    (folder / "index.json").write_text("[1, 2]")
    with pytest.raises(ReconcileError, match="JSON list"):
        write_index_v2(tmp_path, [fixture_nodes()[HELLO_HASH]])


def test_key_index_merges_several_signers(tmp_path: Path, signer: GpgSigner) -> None:
    publish_key_v2(tmp_path, FIXTURE_KEY.read_bytes())
    publish_key_v2(tmp_path, signer.public_key())
    publish_key_v2(tmp_path, signer.public_key())
    index = json.loads((tmp_path / "build_cache" / "_pgp" / "index.json").read_bytes())
    assert index == {"keys": {FIXTURE_FPR: {}, signer.fingerprint: {}}}


# --- bad input --------------------------------------------------------------------------------


def test_publishing_garbage_as_a_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReconcileError, match="exactly one armored public key") as caught:
        publish_key_v2(tmp_path, b"not a key\n")
    assert caught.value.hint
    assert not (tmp_path / "build_cache" / "_pgp" / "index.json").exists()


def test_spec_document_without_nodes_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReconcileError, match=r"no spec\.nodes") as caught:
        write_spec_v2(tmp_path, spec_document={"nodes": []}, tarball=tmp_path / "x", signer=None)
    assert caught.value.reference == "bad-spec"


def test_spec_with_path_characters_in_its_name_is_refused(tmp_path: Path) -> None:
    document = demo_document()
    document["spec"]["nodes"][0]["name"] = "../../etc"
    tarball = tmp_path / "t.spack"
    tarball.write_bytes(b"x")
    with pytest.raises(ReconcileError, match="cannot be part of a mirror path"):
        write_spec_v2(tmp_path / "m", spec_document=document, tarball=tarball, signer=None)
    assert not (tmp_path / "m").exists()


def test_missing_tarball_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReconcileError, match="does not exist") as caught:
        write_spec_v2(
            tmp_path,
            spec_document=demo_document(),
            tarball=tmp_path / "missing.spack",
            signer=None,
        )
    assert caught.value.reference == "tarball-missing"


def test_package_without_its_own_prefix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReconcileError, match=r"no prefix for demo@1\.0"):
        write_package_v2(
            tmp_path,
            prefix=tmp_path,
            spec_document=demo_document(),
            buildpath="/opt",
            hash_to_prefix={},
            signer=None,
        )


# --- the signer -------------------------------------------------------------------------------


def test_signer_refuses_a_home_without_that_secret_key(tmp_path: Path, signer: GpgSigner) -> None:
    with pytest.raises(ReconcileError, match="no usable secret key") as caught:
        GpgSigner(gnupghome=signer.gnupghome, fingerprint=FIXTURE_FPR)
    assert caught.value.reference == "signing-key-missing" and caught.value.hint
    with pytest.raises(ReconcileError, match="does not exist"):
        GpgSigner(gnupghome=tmp_path / "no-home", fingerprint=FIXTURE_FPR)
    with pytest.raises(ReconcileError, match="not a GnuPG fingerprint"):
        GpgSigner(gnupghome=signer.gnupghome, fingerprint="ABCD")


def test_public_key_only_home_cannot_sign(tmp_path: Path, signer: GpgSigner) -> None:
    with isolated_home() as home:
        run_gpg(home, ["--import"], stdin=signer.public_key())
        with pytest.raises(ReconcileError, match="no usable secret key"):
            GpgSigner(gnupghome=home, fingerprint=signer.fingerprint)


def test_generated_rsa_key_signs_like_spack_gpg_create(tmp_path: Path) -> None:
    with isolated_home() as home:
        fingerprint = generate_key(home, "RSA Test", "rsa@example.invalid", algorithm="rsa4096")
        rsa = GpgSigner(gnupghome=home, fingerprint=fingerprint)
        signed = rsa.clearsign(b"{\n}")
        with TrustPolicy.gpg({fingerprint: rsa.public_key()}) as verifier:
            assert verifier.verify_clearsigned(signed, what="t").signers[0].identity == fingerprint
    with pytest.raises(ReconcileError, match="unknown key algorithm"):
        generate_key(tmp_path / "h", "X", "x@example.invalid", algorithm="dsa1024")


# --- the committed quickstart example ---------------------------------------------------------


def test_quickstart_mirror_verifies_with_its_committed_key() -> None:
    example = REPO / "examples" / "quickstart"
    key = (example / "keys" / "quickstart.pub").read_bytes()
    manifest = (example / "reconcile.toml").read_text()
    url = (example / "mirror").as_uri()
    transport = FileTransport()
    index = read_index(transport, url)
    (hello,) = [e.node for e in index.values() if e.node.name == "qs-hello"]
    fingerprints = [line.split('"')[1] for line in manifest.splitlines() if "fingerprint" in line]
    with TrustPolicy.gpg({fingerprints[0]: key}) as verifier:
        for entry in index.values():
            if not entry.in_buildcache:
                continue
            fetched = fetch_spec(transport, url, entry.node, trust=verifier)
            blob = transport.read_bytes(tarball_url(url, entry.node))
            assert hashlib.sha256(blob).hexdigest() == fetched.document.tarball_sha256
    assert {d.name for d in hello.dependencies} == {"qs-greet", "glibc"}


def test_mirror_that_is_not_a_folder_is_reported(tmp_path: Path) -> None:
    (tmp_path / "build_cache").write_text("not a folder\n")
    with pytest.raises(ReconcileError, match="cannot publish into") as caught:
        write_index_v2(tmp_path, [fixture_nodes()[HELLO_HASH]])
    assert caught.value.reference == "mirror-unwritable" and caught.value.hint
    with pytest.raises(ReconcileError, match="cannot publish into"):
        write_spec_v2(
            tmp_path,
            spec_document={"spec": fixture_document(HELLO_HASH)["spec"]},
            tarball=fixture_tarball(HELLO_HASH),
            signer=None,
        )
