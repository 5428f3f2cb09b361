"""Air-gapped bundles end to end: export from the Spack-made signed fixture cache, import into
a fresh folder, apply from it and run what it installed; and bundles that must be refused."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from bundle_support import write_manifest
from conftest import FIXTURE_FPR, FIXTURE_KEY, HELLO_HASH, REPO, SHARED, SIGNED_CACHE

from reconcile.bundle.archive import write_archive
from reconcile.bundle.errors import BundleError
from reconcile.bundle.export import export_bundle
from reconcile.bundle.importer import import_bundle
from reconcile.bundle.listing import LISTING_NAME, listing_bytes
from reconcile.cli.bundle_cmd import run_bundle
from reconcile.cli.verb_parsers import add_bundle_parser
from reconcile.errors import ReconcileError, VerificationError
from reconcile.hashing import digest_file
from reconcile.trust.clearsign import unverified_text
from reconcile.trust.gnupg import isolated_home, run_gpg

HELLO_SIG = (
    "mirror/build_cache/linux-debian12-x86_64_v4-gcc-12.2.0-hello-app-3.0-"
    f"{HELLO_HASH}.spec.json.sig"
)
SOURCE_ARCHIVE = (
    SHARED
    / "fixtures/spack-source-mirror/_source-cache/archive/fa"
    / "fa2d16c7c3e49771597f3368c60265178be903aa6705b848ae6a82ef262e98df.tar.gz"
)
SOURCE = (
    '\n[[source]]\nname = "greetlib"\nversion = "2.1"\n'
    f'url = "{SOURCE_ARCHIVE}"\nsha256 = "{SOURCE_ARCHIVE.name.split(".")[0]}"\nmirror = "team"\n'
)
NO_PASSPHRASE = ("--pinentry-mode", "loopback", "--passphrase", "")


def run_cli(manifest: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_bundle_parser(parser.add_subparsers(dest="command"))
    return run_bundle(parser.parse_args(["bundle", *argv]), manifest)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("export")
    out = folder / "site.tar"
    summary = export_bundle(write_manifest(folder / "project", extra=SOURCE), out)
    assert (summary.specs, summary.sources, summary.keys) == (3, 1, 1)
    return out


def members(bundle: Path) -> dict[str, bytes]:
    with tarfile.open(bundle) as tar:
        return {
            info.name: tar.extractfile(info).read()  # type: ignore[union-attr]
            for info in tar
            if info.isreg()
        }


def unpacked(bundle: Path, into: Path) -> Path:
    into.mkdir()
    for name, data in members(bundle).items():
        (into / name).parent.mkdir(parents=True, exist_ok=True)
        (into / name).write_bytes(data)
    return into


def repack(tree: Path, out: Path) -> Path:
    """A bundle of ``tree`` whose bundle.json matches its (possibly altered) files."""
    (tree / LISTING_NAME).unlink()
    files = {p.relative_to(tree).as_posix(): digest_file(p) for p in tree.rglob("*") if p.is_file()}
    (tree / LISTING_NAME).write_bytes(listing_bytes(files))
    write_archive(tree, out)
    return out


def test_export_import_apply_runs_hello(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "air-gapped" / "stack"
    assert run_cli(tmp_path / "unused.toml", "import", str(bundle), str(dest)) == 0
    out = capsys.readouterr().out
    assert f"reconcile -m {dest / 'reconcile.toml'} apply" in out
    assert f"Verified 3 specs signed by pinned keys: {FIXTURE_FPR}" in out
    text = (dest / "reconcile.toml").read_text()
    assert 'url = "mirror"' in text and 'file = "keys/team-gpg.pub"' in text
    assert str(SIGNED_CACHE) not in text
    assert (dest / "keys" / "team-gpg.pub").read_bytes() == FIXTURE_KEY.read_bytes()
    # the exact signed bytes the mirror serves
    assert (dest / HELLO_SIG).read_bytes() == (
        SIGNED_CACHE / HELLO_SIG.removeprefix("mirror/")
    ).read_bytes()
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
    assert "3 installed" in done.stdout
    # the bundled source archive, in Spack's source-mirror layout, linked by the apply
    link = dest / "mirror/greetlib/greetlib-2.1.tar.gz"
    assert link.read_bytes() == SOURCE_ARCHIVE.read_bytes()
    [hello] = (dest / "opt").glob("hello-app-3.0-*")
    ran = subprocess.run([hello / "bin/hello-app"], capture_output=True, text=True, check=True)
    assert ran.stdout.startswith(f"hello-app 3.0 installed at {hello}")
    assert "greetlib 2.1 says hello." in ran.stdout


def test_export_is_deterministic_and_lists_every_file(bundle: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.tar"
    manifest = write_manifest(tmp_path / "project", extra=SOURCE)
    assert run_cli(manifest, "export", str(again)) == 0
    assert again.read_bytes() == bundle.read_bytes()
    with tarfile.open(bundle) as tar:
        infos = tar.getmembers()
    assert infos[0].name == LISTING_NAME
    assert [i.name for i in infos[1:]] == sorted(i.name for i in infos[1:])
    assert {(i.mtime, i.uid, i.gid, i.uname, i.gname) for i in infos} == {(0, 0, 0, "", "")}
    contents = members(bundle)
    listing = json.loads(contents.pop(LISTING_NAME))
    assert {f["path"] for f in listing["files"]} == set(contents)
    assert not list(tmp_path.glob(".again.tar*")), "temporary files left behind"


def test_a_tampered_byte_is_refused_before_anything_is_written(
    bundle: Path, tmp_path: Path
) -> None:
    data = bytearray(bundle.read_bytes())
    spot = data.index(b"greetlib 2.1") if b"greetlib 2.1" in data else len(data) // 2
    data[spot] ^= 0x01
    tampered = tmp_path / "tampered.tar"
    tampered.write_bytes(bytes(data))
    dest = tmp_path / "dest"
    with pytest.raises(BundleError, match="sha256"):
        import_bundle(tampered, dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tampered.tar"]


def test_a_parent_member_is_refused(bundle: Path, tmp_path: Path) -> None:
    evil = tmp_path / "evil.tar"
    with tarfile.open(bundle) as source, tarfile.open(evil, "w") as tar:
        for info in source:
            tar.addfile(info, source.extractfile(info) if info.isreg() else None)
        payload = b"owned\n"
        info = tarfile.TarInfo("mirror/../../escaped")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(BundleError, match=r"'\.\.' component"):
        import_bundle(evil, tmp_path / "dest")
    assert not (tmp_path / "escaped").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.tar"]


def test_a_symlink_member_is_refused(bundle: Path, tmp_path: Path) -> None:
    evil = tmp_path / "link.tar"
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo("keys")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc"
        tar.addfile(info)
    with pytest.raises(BundleError, match="not a regular file or folder"):
        import_bundle(evil, tmp_path / "dest")


@pytest.fixture
def intruder_home() -> Iterator[tuple[Path, str]]:
    with isolated_home() as home:
        uid = "Intruder <intruder@example.invalid>"
        made = run_gpg(
            home, (*NO_PASSPHRASE, "--quick-gen-key", uid, "ed25519", "sign", "never"), agent=True
        )
        assert made.returncode == 0, made.stderr
        colons = run_gpg(home, ("--with-colons", "--list-keys", uid)).stdout.decode()
        fpr = next(line.split(":")[9] for line in colons.splitlines() if line.startswith("fpr:"))
        yield home, fpr


def test_a_spec_signed_by_an_unpinned_key_is_refused(
    bundle: Path, tmp_path: Path, intruder_home: tuple[Path, str]
) -> None:
    home, fpr = intruder_home
    tree = unpacked(bundle, tmp_path / "tree")
    text = unverified_text((tree / HELLO_SIG).read_bytes())
    signed = run_gpg(
        home, (*NO_PASSPHRASE, "--local-user", fpr, "--clearsign"), stdin=text, agent=True
    )
    assert signed.returncode == 0, signed.stderr
    (tree / HELLO_SIG).write_bytes(signed.stdout)
    # the intruder's key rides along too: only the manifest's pinned fingerprint counts
    public = run_gpg(home, ("--armor", "--export", fpr)).stdout
    (tree / "keys" / "intruder.pub").write_bytes(public)
    resigned = repack(tree, tmp_path / "resigned.tar")
    dest = tmp_path / "dest"
    with pytest.raises(VerificationError):
        import_bundle(resigned, dest)
    assert not dest.exists()
    assert not list(tmp_path.glob(".dest.import-*"))


def test_a_manifest_pointing_outside_the_bundle_is_refused(bundle: Path, tmp_path: Path) -> None:
    tree = unpacked(bundle, tmp_path / "tree")
    manifest = tree / "reconcile.toml"
    manifest.write_text(manifest.read_text().replace('url = "mirror"', f'url = "{SIGNED_CACHE}"'))
    with pytest.raises(BundleError, match="outside the bundle"):
        import_bundle(repack(tree, tmp_path / "outside.tar"), tmp_path / "dest")


def test_a_non_empty_destination_is_refused(bundle: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "mine.txt").write_text("keep me")
    with pytest.raises(ReconcileError, match="not empty"):
        import_bundle(bundle, dest)
    assert [p.name for p in dest.iterdir()] == ["mine.txt"]
