"""Publishing installed prefixes, in layouts 2 and 3, then installing from what was
published, in another root: the round trip the mirror tutorial does with spack commands."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from support import run, write_manifest
from test_fixture_install import check_hello_works

from reconcile.trust.sign import GpgSigner, generate_key


@pytest.fixture
def signing_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    home = tmp_path / "signing"
    home.mkdir(mode=0o700)
    fingerprint = generate_key(home, "Publisher", "publisher@example.invalid")
    monkeypatch.setenv("RECONCILE_SIGNING_HOME", str(home))
    public = tmp_path / "publisher.pub"
    public.write_bytes(GpgSigner(gnupghome=home, fingerprint=fingerprint).public_key())
    return fingerprint, public


def publishing_manifest(folder: Path, fingerprint: str, public: Path, layout: int) -> Path:
    extra = f"""
[[mirror]]
name = "published"
url = "published"
layout = {layout}

[[key]]
name = "publisher"
kind = "gpg"
fingerprint = "{fingerprint}"
file = "{public}"

[[publish]]
specs = ["hello-app"]
mirror = "published"
key = "publisher"
"""
    return write_manifest(folder, padded_length=128, extra=extra)


def published_files(mirror: Path) -> dict[str, str]:
    return {
        str(p.relative_to(mirror)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(mirror.rglob("*"))
        if p.is_file() and (p.suffix == ".spack" or "blobs" in p.parts)
    }


@pytest.mark.parametrize("layout", [2, 3])
def test_publish_then_install_from_the_published_mirror(
    tmp_path: Path,
    signing_key: tuple[str, Path],
    capsys: pytest.CaptureFixture[str],
    layout: int,
) -> None:
    fingerprint, public = signing_key
    manifest = publishing_manifest(tmp_path / "publisher", fingerprint, public, layout)
    assert run(manifest, "plan") == 0
    out = capsys.readouterr().out
    assert out.count("+ publish ") == 3
    assert f"to published (layout {layout}, signed by publisher)" in out
    assert run(manifest, "apply", "--yes") == 0
    assert "3 published" in capsys.readouterr().out
    assert run(manifest, "plan", "--detailed-exitcode") == 0  # already in the mirror
    mirror = tmp_path / "publisher" / "published"
    first = published_files(mirror)
    assert len([f for f in first if f.endswith(".spack") or "blobs" in f]) >= 3

    consumer = write_manifest(
        tmp_path / "consumer", mirror=mirror, key_file=public, fingerprint=fingerprint
    )
    assert run(consumer, "apply", "--yes") == 0
    check_hello_works(tmp_path / "consumer" / "opt")

    # publishing the same prefixes again, elsewhere, gives byte-identical tarballs
    again = publishing_manifest(tmp_path / "publisher2", fingerprint, public, layout)
    os.symlink(tmp_path / "publisher" / "opt", tmp_path / "publisher2" / "opt")
    assert run(again, "apply", "--yes") == 0
    second = published_files(tmp_path / "publisher2" / "published")
    tarballs = {k: v for k, v in first.items() if k.endswith(".spack")}
    assert all(second[k] == v for k, v in tarballs.items())
    if layout == 3:
        assert set(first) & set(second)  # content-addressed blobs, same names


def test_a_changed_prefix_is_not_published(
    tmp_path: Path, signing_key: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    fingerprint, public = signing_key
    folder = tmp_path / "publisher"
    installer = write_manifest(folder, padded_length=128)
    assert run(installer, "apply", "--yes") == 0
    wrapper = next((folder / "opt").rglob("hello-app-wrapper"))
    wrapper.write_text(wrapper.read_text() + "echo injected\n")
    manifest = publishing_manifest(folder, fingerprint, public, 2)
    capsys.readouterr()
    assert run(manifest, "apply", "--yes") == 1
    err = capsys.readouterr().err
    assert "refusing to publish hello-app@3.0/d7r6xmz" in err
    assert "bin/hello-app-wrapper" in err
