"""One prefix, one spec; one hash, one spec. Real gpg-signed caches made here: two signed
specs that ``{name}-{hash:1}`` maps to one prefix are refused by plan (before, apply died with
a traceback and left two records for one prefix); install records that already share a prefix
are refused; and signed metadata whose identity (its ``hash``) disagrees with its file name,
the index or a dependent's metadata is refused."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import GCC_RUNTIME_HASH, GREETLIB_HASH, HELLO_HASH, UNSIGNED_CACHE
from support import installed_prefix, run, run_hello, snapshot, write_manifest

from reconcile.buildcache.writer_v2 import write_index_v2, write_spec_v2
from reconcile.spack.spec import parse_spec_document
from reconcile.trust.gnupg import isolated_home
from reconcile.trust.sign import GpgSigner, generate_key

BUILD_CACHE = UNSIGNED_CACHE / "build_cache"
# Another hello-app whose hash also starts with "d": {hash:1} cannot tell it from HELLO_HASH.
TWIN_HASH = "d" + "a" * 31
COLLIDING = "{name}-{hash:1}"


def fixture_document(dag_hash: str) -> dict[str, Any]:
    (found,) = BUILD_CACHE.glob(f"*-{dag_hash}.spec.json")
    loaded: dict[str, Any] = json.loads(found.read_bytes())
    return {"spec": loaded["spec"]}


def fixture_tarball(dag_hash: str) -> Path:
    (found,) = BUILD_CACHE.glob(f"*/*/*/*-{dag_hash}.spack")
    return found


def twin_of_hello(new_hash: str = TWIN_HASH) -> dict[str, Any]:
    """hello-app's signed document under another hash (a variant built with other flags)."""
    document = copy.deepcopy(fixture_document(HELLO_HASH))
    root = document["spec"]["nodes"][0]
    root["hash"] = new_hash
    root.setdefault("parameters", {})["cflags"] = ["-O3"]
    return document


@pytest.fixture
def signer() -> Iterator[GpgSigner]:
    with isolated_home() as home:
        fingerprint = generate_key(home, "Collision Test", "collision@example.invalid")
        yield GpgSigner(gnupghome=home, fingerprint=fingerprint)


def publish(mirror: Path, signer: GpgSigner, document: dict[str, Any], tarball: Path) -> Path:
    published = write_spec_v2(mirror, spec_document=document, tarball=tarball, signer=signer)
    parsed = parse_spec_document(document)
    write_index_v2(mirror, [n for n in parsed.nodes if n.is_external] + [parsed.root])
    return published.metadata


def fixture_mirror(tmp_path: Path, signer: GpgSigner) -> Path:
    """The fixture's three specs, signed by ``signer``, dependencies first."""
    mirror = tmp_path / "mirror"
    for dag_hash in (GCC_RUNTIME_HASH, GREETLIB_HASH, HELLO_HASH):
        publish(mirror, signer, fixture_document(dag_hash), fixture_tarball(dag_hash))
    return mirror


def manifest_for(tmp_path: Path, signer: GpgSigner, mirror: Path, **options: Any) -> Path:
    key = tmp_path / "publisher.pub"
    key.write_bytes(signer.public_key())
    return write_manifest(
        tmp_path, mirror=mirror, key_file=key, fingerprint=signer.fingerprint, **options
    )


def refused(manifest: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert run(manifest, *args) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.err


def test_two_signed_specs_projected_to_one_prefix_are_refused(
    tmp_path: Path, signer: GpgSigner, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = fixture_mirror(tmp_path, signer)
    publish(mirror, signer, twin_of_hello(), fixture_tarball(HELLO_HASH))
    manifest = manifest_for(
        tmp_path,
        signer,
        mirror,
        projection=COLLIDING,
        specs=[f"hello-app/{HELLO_HASH[:7]}", f"hello-app/{TWIN_HASH[:7]}"],
    )
    for command in (("plan",), ("apply", "--yes")):
        err = refused(manifest, capsys, *command)
        assert err.startswith("error[prefix-claimed-twice]: two specs claim one prefix ")
        assert f"{tmp_path}/opt/hello-app-d:" in err
        assert f"/{HELLO_HASH})" in err and f"/{TWIN_HASH})" in err
        assert "install.projection = '{name}-{hash:1}'" in err
        assert "hint: make install.projection tell the specs apart" in err
    assert not (tmp_path / "opt").exists()  # nothing written, not even the state folder
    # Told apart, both install, each at its own prefix.
    text = manifest.read_text().replace(COLLIDING, "{name}-{hash:7}")
    manifest.write_text(text)
    assert run(manifest, "apply", "--yes") == 0
    prefixes = sorted(p.name for p in (tmp_path / "opt").iterdir() if p.name != ".reconcile")
    assert prefixes == [
        f"gcc-runtime-{GCC_RUNTIME_HASH[:7]}",
        f"greetlib-{GREETLIB_HASH[:7]}",
        f"hello-app-{HELLO_HASH[:7]}",
        f"hello-app-{TWIN_HASH[:7]}",
    ]


def test_a_new_spec_on_an_installed_prefix_is_refused(
    tmp_path: Path, signer: GpgSigner, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = fixture_mirror(tmp_path, signer)
    publish(mirror, signer, twin_of_hello(), fixture_tarball(HELLO_HASH))
    manifest = manifest_for(
        tmp_path, signer, mirror, projection=COLLIDING, specs=[f"hello-app/{HELLO_HASH[:7]}"]
    )
    assert run(manifest, "apply", "--yes") == 0
    before = snapshot(tmp_path / "opt")
    manifest.write_text(manifest.read_text().replace(HELLO_HASH[:7], TWIN_HASH[:7]))
    err = refused(manifest, capsys, "apply", "--yes")
    assert err.startswith("error[prefix-claimed-twice]: two specs claim one prefix ")
    assert "one is installed over the other" in err
    assert snapshot(tmp_path / "opt") == before
    run_hello(installed_prefix(tmp_path / "opt", "hello-app"))


def test_install_records_sharing_one_prefix_are_refused(
    tmp_path: Path, signer: GpgSigner, capsys: pytest.CaptureFixture[str]
) -> None:
    """The state the old bug left: two records for one folder, while plan said No changes."""
    mirror = fixture_mirror(tmp_path, signer)
    manifest = manifest_for(tmp_path, signer, mirror, projection=COLLIDING)
    assert run(manifest, "apply", "--yes") == 0
    records = tmp_path / "opt" / ".reconcile" / "records"
    record = json.loads((records / f"{HELLO_HASH}.json").read_text())
    record["hash"] = TWIN_HASH
    record["spec"]["hash"] = TWIN_HASH
    (records / f"{TWIN_HASH}.json").write_text(json.dumps(record))
    err = refused(manifest, capsys, "plan")
    assert err.startswith(
        f"error[prefix-claimed-twice]: two install records name one prefix {tmp_path}/opt/"
        "hello-app-d: "
    )


def test_signed_metadata_under_another_specs_name_is_refused(
    tmp_path: Path, signer: GpgSigner, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file named after the twin holds hello-app's own signed metadata: the hash inside
    is what counts, so it is not the twin, whatever the file is called."""
    mirror = fixture_mirror(tmp_path, signer)
    twin = publish(mirror, signer, twin_of_hello(), fixture_tarball(HELLO_HASH))
    (hello,) = (mirror / "build_cache").glob(f"*-{HELLO_HASH}.spec.json.sig")
    shutil.copyfile(hello, twin)  # validly signed, by the pinned key
    manifest = manifest_for(tmp_path, signer, mirror, specs=[f"hello-app/{TWIN_HASH[:7]}"])
    err = refused(manifest, capsys, "plan")
    assert err.startswith("error[identity-mismatch]: ")
    assert f"the metadata describes hello-app@3.0/{HELLO_HASH[:7]} instead" in err
    assert f"(hash {HELLO_HASH}, expected {TWIN_HASH})" in err
    assert not (tmp_path / "opt").exists()


def test_an_index_naming_a_hash_differently_than_its_signed_metadata_is_refused(
    tmp_path: Path, signer: GpgSigner, capsys: pytest.CaptureFixture[str]
) -> None:
    """The index says /TWIN is greetlib (so the selector 'greetlib' picks it); its signed
    metadata says it is hello-app."""
    mirror = fixture_mirror(tmp_path, signer)
    publish(mirror, signer, twin_of_hello(), fixture_tarball(HELLO_HASH))
    index_file = mirror / "build_cache" / "index.json"
    index = json.loads(index_file.read_text())
    entry = index["database"]["installs"][TWIN_HASH]["spec"]
    entry["name"] = "greetlib"
    entry["version"] = "2.1"
    index_file.write_text(json.dumps(index))
    (mirror / "build_cache" / "index.json.hash").unlink()
    # the signed file has to be found under the name the index gives
    (signed,) = (mirror / "build_cache").glob(f"*-{TWIN_HASH}.spec.json.sig")
    signed.rename(signed.with_name(signed.name.replace("hello-app-3.0", "greetlib-2.1")))
    manifest = manifest_for(tmp_path, signer, mirror, specs=[f"greetlib/{TWIN_HASH[:7]}"])
    err = refused(manifest, capsys, "plan")
    assert err.startswith("error[identity-mismatch]: ")
    assert (
        f"the index of mirror 'team' names /{TWIN_HASH} greetlib@2.1, but its signed metadata "
        "says it is hello-app@3.0"
    ) in err
    assert "hint: do not use this mirror until its owner fixes it" in err


def test_a_dependency_named_differently_by_its_dependent_is_refused(
    tmp_path: Path, signer: GpgSigner, capsys: pytest.CaptureFixture[str]
) -> None:
    """hello-app's signed metadata says its dependency /GREETLIB is 'libevil@9'; greetlib's
    own signed metadata says otherwise."""
    mirror = fixture_mirror(tmp_path, signer)
    document = twin_of_hello()
    for node in document["spec"]["nodes"]:
        if node["hash"] == GREETLIB_HASH:
            node["name"], node["version"] = "libevil", "9"
    publish(mirror, signer, document, fixture_tarball(HELLO_HASH))
    manifest = manifest_for(tmp_path, signer, mirror, specs=[f"hello-app/{TWIN_HASH[:7]}"])
    err = refused(manifest, capsys, "plan")
    assert err.startswith("error[identity-mismatch]: ")
    assert (
        f"the index of mirror 'team' names /{GREETLIB_HASH} greetlib@2.1, but the signed "
        f"metadata of hello-app@3.0/{TWIN_HASH[:7]} names it libevil@9"
    ) in err


def test_identity_checks_of_one_signed_document() -> None:
    """What the planner re-checks itself, behind the readers: the document's root is the
    hash asked for, and no hash is named twice as two different specs."""
    from reconcile.plan.claims import identity_problems

    hello = parse_spec_document(fixture_document(HELLO_HASH))
    assert identity_problems(HELLO_HASH, hello, named_as=[]) == []
    assert identity_problems(TWIN_HASH, hello, named_as=[]) == [
        f"the signed metadata fetched for /{TWIN_HASH} describes hello-app@3.0/"
        f"{HELLO_HASH[:7]} (/{HELLO_HASH}): its file name and its content disagree"
    ]
    doubled = fixture_document(HELLO_HASH)
    evil = copy.deepcopy(doubled["spec"]["nodes"][1])
    evil["name"] = "evil"
    doubled["spec"]["nodes"].append(evil)
    (problem,) = identity_problems(HELLO_HASH, parse_spec_document(doubled), named_as=[])
    assert f"names /{evil['hash']} twice, as " in problem and "and as evil@" in problem
