"""Installing from a layout-3 mirror (written by reconcile from the Spack fixture packages),
and from a mix: a v3 mirror whose tarball is corrupt falls back to the v2 copy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SIGNED_CACHE, UNSIGNED_CACHE
from support import run, write_manifest
from test_fixture_install import check_hello_works

from reconcile.buildcache.writer_v3 import publish_key_v3, write_index_v3, write_spec_v3
from reconcile.spack.spec import parse_spec_document
from reconcile.trust.sign import GpgSigner, generate_key


@pytest.fixture(scope="module")
def v3_mirror(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    """(mirror, fingerprint, public key file): the fixture's three specs in layout 3."""
    base = tmp_path_factory.mktemp("v3")
    home = base / "gnupg"
    home.mkdir(mode=0o700)
    fingerprint = generate_key(home, "Team", "team@example.invalid")
    signer = GpgSigner(gnupghome=home, fingerprint=fingerprint)
    mirror = base / "mirror"
    nodes = []
    for spec_json in sorted((UNSIGNED_CACHE / "build_cache").glob("*.spec.json")):
        document = json.loads(spec_json.read_text())
        parsed = parse_spec_document(document)
        tarball = next(SIGNED_CACHE.rglob(f"*-{parsed.root.hash}.spack"))
        spec_only = {"spec": document["spec"]}
        write_spec_v3(mirror, spec_document=spec_only, tarball=tarball, signer=signer)
        nodes += [parsed.root, *(n for n in parsed.nodes if n.is_external)]
    write_index_v3(mirror, nodes)
    publish_key_v3(mirror, signer.public_key())
    key_file = base / "team.pub"
    key_file.write_bytes(signer.public_key())
    return mirror, fingerprint, key_file


def test_install_from_layout_3(
    tmp_path: Path, v3_mirror: tuple[Path, str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    mirror, fingerprint, key_file = v3_mirror
    manifest = write_manifest(tmp_path, mirror=mirror, key_file=key_file, fingerprint=fingerprint)
    assert run(manifest, "apply", "--yes") == 0
    check_hello_works(tmp_path / "opt")
    assert run(manifest, "plan", "--detailed-exitcode") == 0


def test_key_taken_from_a_layout_3_mirror(
    tmp_path: Path, v3_mirror: tuple[Path, str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    mirror, fingerprint, _ = v3_mirror
    manifest = write_manifest(
        tmp_path, mirror=mirror, key_source="mirror:team", fingerprint=fingerprint
    )
    assert run(manifest, "apply", "--yes") == 0
    check_hello_works(tmp_path / "opt")


def test_v3_signature_by_an_unpinned_key_is_refused(
    tmp_path: Path, v3_mirror: tuple[Path, str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    mirror, _, _ = v3_mirror
    manifest = write_manifest(tmp_path, mirror=mirror)  # pins the fixture's key instead
    assert run(manifest, "apply", "--yes") == 1
    err = capsys.readouterr().err
    assert "pin" in err
    assert not (tmp_path / "opt").exists()
