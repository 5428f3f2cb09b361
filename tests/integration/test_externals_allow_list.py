"""Externals are allowed only in the folders ``[install] externals`` lists (default /usr),
never at ``/``. A real gpg-signed spec that names an external at ``/`` used to make any
absolute symlink acceptable (a link to /etc/shadow was installed); now the plan refuses it,
and an allowed external limits absolute symlinks to itself."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from support import run, snapshot, write_manifest

from reconcile.buildcache.writer_v2 import write_index_v2, write_spec_v2
from reconcile.spack.spec import parse_spec_document
from reconcile.trust.gnupg import isolated_home
from reconcile.trust.sign import GpgSigner, generate_key

sys.path.insert(0, str(REPO / "tests" / "archive"))
import hostile

EXTERNAL_HASH = "sitexternalaaaabbbbccccddddeeee2"
ARCH = {"platform": "linux", "platform_os": "debian12", "target": "x86_64_v4"}


@pytest.fixture
def signer() -> Iterator[GpgSigner]:
    with isolated_home() as home:
        fingerprint = generate_key(home, "Externals Test", "externals@example.invalid")
        yield GpgSigner(gnupghome=home, fingerprint=fingerprint)


def victim_with_external(path: str) -> dict[str, Any]:
    """The hostile test package, depending on an external 'site-files' at ``path``."""
    external = {
        "name": "site-files",
        "version": "1.0",
        "arch": ARCH,
        "compiler": {"name": "gcc", "version": "12.2.0"},
        "namespace": "builtin",
        "parameters": {},
        "external": {"path": path, "module": None, "extra_attributes": {}},
        "hash": EXTERNAL_HASH,
    }
    victim = {
        "name": "victim",
        "version": "1.0",
        "arch": ARCH,
        "compiler": {"name": "gcc", "version": "12.2.0"},
        "namespace": "builtin",
        "parameters": {},
        "dependencies": [
            {
                "name": "site-files",
                "hash": EXTERNAL_HASH,
                "parameters": {"deptypes": ["link", "run"], "virtuals": []},
            }
        ],
        "hash": hostile.DAG_HASH,
    }
    return {"spec": {"_meta": {"version": 4}, "nodes": [victim, external]}}


def signed_mirror(tmp_path: Path, signer: GpgSigner, external: str, link_target: str) -> Path:
    """A mirror holding the victim, signed, whose tarball has one absolute symlink."""
    link = hostile.Member(f"{hostile.PREFIX}/share/victim/site", "symlink", linkname=link_target)
    tarball = hostile.spack_tarball(tmp_path / "victim.spack", [link])
    mirror = tmp_path / "mirror"
    document = victim_with_external(external)
    write_spec_v2(mirror, spec_document=document, tarball=tarball, signer=signer)
    write_index_v2(mirror, parse_spec_document(document).nodes)
    return mirror


def manifest_for(
    tmp_path: Path, signer: GpgSigner, mirror: Path, externals: list[str] | None = None
) -> Path:
    key = tmp_path / "publisher.pub"
    key.write_bytes(signer.public_key())
    manifest = write_manifest(
        tmp_path,
        specs=["victim"],
        mirror=mirror,
        key_file=key,
        fingerprint=signer.fingerprint,
    )
    if externals is not None:
        listed = ", ".join(f'"{folder}"' for folder in externals)
        text = manifest.read_text().replace(
            'root = "opt"\n', f'root = "opt"\nexternals = [{listed}]\n'
        )
        manifest.write_text(text)
    return manifest


def refused(manifest: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert run(manifest, *args) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def victim_prefix(root: Path) -> Path:
    (prefix,) = [p for p in root.iterdir() if p.name.startswith("victim-")]
    return prefix


@pytest.mark.parametrize("external", ["/", "//", "/usr/..", "/etc", "/usr/../etc", "/opt/site"])
def test_an_external_outside_the_allowed_folders_is_refused(
    tmp_path: Path, signer: GpgSigner, capsys: pytest.CaptureFixture[str], external: str
) -> None:
    mirror = signed_mirror(tmp_path, signer, external, "/etc/shadow")
    manifest = manifest_for(tmp_path, signer, mirror)
    for command in (("plan",), ("apply", "--yes")):
        err = refused(manifest, capsys, *command)
        assert err.startswith("error[external-not-allowed]: site-files@1.0/")
        assert "(needed by victim@1.0/" in err
        assert "hint: list the folder in [install] externals" in err
    assert not (tmp_path / "opt").exists()
    assert "[install] externals: /usr" in err or "[install] externals allows (/usr)" in err


def test_root_is_refused_even_when_the_spec_is_otherwise_fine(
    tmp_path: Path, signer: GpgSigner, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = signed_mirror(tmp_path, signer, "/", "/etc/shadow")
    manifest = manifest_for(tmp_path, signer, mirror, externals=["/usr", "/opt/site"])
    err = refused(manifest, capsys, "plan")
    assert "is an external at '/': its dependents could point symlinks at any file" in err


def test_an_allowed_external_permits_links_into_it_only(
    tmp_path: Path, signer: GpgSigner, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = signed_mirror(tmp_path, signer, "/opt/site", "/opt/site/lib/libsite.so")
    manifest = manifest_for(tmp_path, signer, mirror, externals=["/usr", "/opt/site"])
    assert run(manifest, "apply", "--yes") == 0
    link = victim_prefix(tmp_path / "opt") / "share" / "victim" / "site"
    assert os.readlink(link) == "/opt/site/lib/libsite.so"


def test_an_allowed_external_does_not_permit_links_elsewhere(
    tmp_path: Path, signer: GpgSigner, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = signed_mirror(tmp_path, signer, "/opt/site", "/etc/shadow")
    manifest = manifest_for(tmp_path, signer, mirror, externals=["/usr", "/opt/site"])
    root = tmp_path / "opt"
    root.mkdir()
    before = snapshot(root)
    err = refused(manifest, capsys, "apply", "--yes")
    assert "error[unsafe-archive]" in err and "/etc/shadow" in err
    assert snapshot(root) == before


def test_the_default_allows_usr(
    tmp_path: Path, signer: GpgSigner, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = signed_mirror(tmp_path, signer, "/usr", "/usr/lib/os-release")
    manifest = manifest_for(tmp_path, signer, mirror)
    assert run(manifest, "apply", "--yes") == 0
    link = victim_prefix(tmp_path / "opt") / "share" / "victim" / "site"
    assert os.readlink(link) == "/usr/lib/os-release"


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ('"/"', "'/' would let a signed spec point symlinks anywhere"),
        ('"usr"', "'usr' is not an absolute path"),
        ('"/usr/../etc"', "'/usr/../etc' is not a normalised path (expected '/etc')"),
    ],
)
def test_validate_refuses_bad_allowed_folders(tmp_path: Path, entry: str, problem: str) -> None:
    manifest = write_manifest(tmp_path)
    text = manifest.read_text().replace('root = "opt"\n', f'root = "opt"\nexternals = [{entry}]\n')
    manifest.write_text(text)
    from reconcile.errors import ManifestError
    from reconcile.manifest.load import load_manifest

    with pytest.raises(ManifestError) as caught:
        load_manifest(manifest)
    (shown,) = [str(p) for p in caught.value.problems]
    assert shown.startswith(f"{manifest}:5:14: install.externals[0]: ")
    assert problem in shown


def test_root_never_counts_as_allowed_even_if_listed() -> None:
    """validate refuses '/' in the list; the planner's own check does not rely on that."""
    from reconcile.plan.externals import allowed_external

    assert allowed_external("/", ["/"]) is None
    assert allowed_external("//", ["/", "//"]) is None
    assert allowed_external("/usr/lib/../../etc", ["/usr"]) is None
    assert allowed_external("usr/lib", ["/usr"]) is None
    assert allowed_external("/usr/lib/", ["/usr"]) == "/usr/lib"
    assert allowed_external("/usrlocal", ["/usr"]) is None
