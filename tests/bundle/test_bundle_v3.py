"""Bundles of a layout 3 mirror: signed manifests and blobs are carried as served."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from bundle_support import write_manifest
from conftest import REPO, SIGNED_CACHE, UNSIGNED_CACHE

from reconcile.buildcache.writer_v3 import write_index_v3, write_spec_v3
from reconcile.bundle.export import export_bundle
from reconcile.bundle.importer import import_bundle
from reconcile.spack.spec import SpecNode, parse_spec_document
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
    nodes: list[SpecNode] = []
    for spec_json in sorted((UNSIGNED_CACHE / "build_cache").glob("*.spec.json")):
        document = json.loads(spec_json.read_text())
        parsed = parse_spec_document(document)
        tarball = next(SIGNED_CACHE.rglob(f"*-{parsed.root.hash}.spack"))
        write_spec_v3(
            mirror, spec_document={"spec": document["spec"]}, tarball=tarball, signer=signer
        )
        nodes += [parsed.root, *(n for n in parsed.nodes if n.is_external)]
    write_index_v3(mirror, nodes)
    key_file = base / "team.pub"
    key_file.write_bytes(signer.public_key())
    return mirror, fingerprint, key_file


def test_layout_3_bundle_installs_and_runs(
    v3_mirror: tuple[Path, str, Path], tmp_path: Path
) -> None:
    mirror, fingerprint, key_file = v3_mirror
    manifest = write_manifest(
        tmp_path / "p", mirror=mirror, key_file=key_file, fingerprint=fingerprint
    )
    out = tmp_path / "v3.tar"
    assert export_bundle(manifest, out).specs == 3
    again = tmp_path / "again.tar"
    export_bundle(manifest, again)
    assert again.read_bytes() == out.read_bytes()
    with tarfile.open(out) as tar:
        names = tar.getnames()
    manifests = sorted(n for n in names if n.endswith(".spec.manifest.json"))
    assert len(manifests) == 3
    for name in manifests:  # the signed manifests exactly as the mirror serves them
        original = mirror / name.removeprefix("mirror/")
        with tarfile.open(out) as tar:
            member = tar.extractfile(name)
            assert member is not None and member.read() == original.read_bytes()
    dest = tmp_path / "dest"
    import_bundle(out, dest)
    assert "layout = 3" in (dest / "reconcile.toml").read_text()
    done = subprocess.run(
        [sys.executable, "-m", "reconcile", "-m", str(dest / "reconcile.toml"), "apply", "--yes"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    [hello] = (dest / "opt").glob("hello-app-3.0-*")
    ran = subprocess.run([hello / "bin/hello-app"], capture_output=True, text=True, check=True)
    assert "greetlib 2.1 says hello." in ran.stdout
