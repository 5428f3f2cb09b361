"""Mirror ``specs``: a mirror filled from the others, verbatim or re-signed."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FIXTURE_FPR, FIXTURE_KEY, SIGNED_CACHE
from support import run, write_manifest
from test_fixture_install import check_hello_works

from reconcile.trust.sign import GpgSigner, generate_key


def sync_manifest(
    folder: Path, *, layout: int, sign_with: str | None = None, extra: str = ""
) -> Path:
    sign = f'sign_with = "{sign_with}"\n' if sign_with else ""
    text = f"""version = 1

[[mirror]]
name = "upstream"
url = "{SIGNED_CACHE}"

[[mirror]]
name = "site"
url = "site"
layout = {layout}
specs = ["hello-app"]
{sign}
[[key]]
name = "upstream"
kind = "gpg"
fingerprint = "{FIXTURE_FPR}"
file = "{FIXTURE_KEY}"
{extra}"""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "reconcile.toml"
    path.write_text(text)
    return path


def test_layout_2_copy_keeps_the_signatures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = sync_manifest(tmp_path / "sync", layout=2)
    assert run(manifest, "plan") == 0
    out = capsys.readouterr().out
    assert out.count("+ sync ") == 3 and "signature kept" in out
    assert run(manifest, "apply", "--yes") == 0
    assert "3 synced" in capsys.readouterr().out
    site = tmp_path / "sync" / "site"
    for sig in (SIGNED_CACHE / "build_cache").glob("*.spec.json.sig"):
        assert (site / "build_cache" / sig.name).read_bytes() == sig.read_bytes()
    assert run(manifest, "plan", "--detailed-exitcode") == 0
    consumer = write_manifest(tmp_path / "consumer", mirror=site)
    assert run(consumer, "apply", "--yes") == 0
    check_hello_works(tmp_path / "consumer" / "opt")


def test_across_layouts_needs_sign_with(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = sync_manifest(tmp_path, layout=3)
    assert run(manifest, "plan") == 1
    assert "set sign_with" in capsys.readouterr().err


def test_across_layouts_re_signed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "signing"
    home.mkdir(mode=0o700)
    fingerprint = generate_key(home, "Site", "site@example.invalid")
    monkeypatch.setenv("RECONCILE_SIGNING_HOME", str(home))
    public = tmp_path / "site.pub"
    public.write_bytes(GpgSigner(gnupghome=home, fingerprint=fingerprint).public_key())
    key = (
        f'\n[[key]]\nname = "site"\nkind = "gpg"\nfingerprint = "{fingerprint}"\n'
        f'file = "{public}"\n'
    )
    manifest = sync_manifest(tmp_path / "sync", layout=3, sign_with="site", extra=key)
    assert run(manifest, "apply", "--yes") == 0
    assert "re-signed by site" in capsys.readouterr().out
    consumer = write_manifest(
        tmp_path / "consumer",
        mirror=tmp_path / "sync" / "site",
        key_file=public,
        fingerprint=fingerprint,
    )
    assert run(consumer, "apply", "--yes") == 0
    check_hello_works(tmp_path / "consumer" / "opt")


def test_layout_3_copy_keeps_the_signed_manifests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from conftest import UNSIGNED_CACHE

    from reconcile.buildcache.writer_v3 import publish_key_v3, write_index_v3, write_spec_v3
    from reconcile.spack.spec import parse_spec_document

    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    fingerprint = generate_key(home, "Upstream", "upstream@example.invalid")
    signer = GpgSigner(gnupghome=home, fingerprint=fingerprint)
    upstream = tmp_path / "upstream3"
    nodes = []
    for spec_json in sorted((UNSIGNED_CACHE / "build_cache").glob("*.spec.json")):
        document = json.loads(spec_json.read_text())
        parsed = parse_spec_document(document)
        tarball = next(SIGNED_CACHE.rglob(f"*-{parsed.root.hash}.spack"))
        write_spec_v3(
            upstream, spec_document={"spec": document["spec"]}, tarball=tarball, signer=signer
        )
        nodes += [parsed.root, *(n for n in parsed.nodes if n.is_external)]
    write_index_v3(upstream, nodes)
    publish_key_v3(upstream, signer.public_key())
    public = tmp_path / "upstream.pub"
    public.write_bytes(signer.public_key())

    manifest = sync_manifest(tmp_path / "sync", layout=3)
    text = manifest.read_text().replace(str(SIGNED_CACHE), str(upstream))
    text = text.replace(str(FIXTURE_KEY), str(public)).replace(FIXTURE_FPR, fingerprint)
    manifest.write_text(text)
    assert run(manifest, "apply", "--yes") == 0
    assert "signature kept" in capsys.readouterr().out
    site = tmp_path / "sync" / "site"
    copied = sorted(
        p.relative_to(site) for p in (site / "v3" / "manifests" / "spec").rglob("*.json")
    )
    assert len(copied) == 3
    for relative in copied:
        assert (site / relative).read_bytes() == (upstream / relative).read_bytes()
    consumer = write_manifest(
        tmp_path / "consumer", mirror=site, key_file=public, fingerprint=fingerprint
    )
    assert run(consumer, "apply", "--yes") == 0
    check_hello_works(tmp_path / "consumer" / "opt")


def _index_installs(mirror: Path) -> dict[str, dict[str, object]]:
    import json

    manifest = json.loads((mirror / "v3/manifests/index/index.manifest.json").read_bytes())
    checksum = manifest["data"][0]["checksum"]
    index = json.loads((mirror / "blobs/sha256" / checksum[:2] / checksum).read_bytes())
    installs: dict[str, dict[str, object]] = index["database"]["installs"]
    return installs


def test_spack_11_cache_synced_gives_spack_11_index(tmp_path: Path) -> None:
    from conftest import FIXTURES

    spack1 = FIXTURES / "spack1-v3-signed"
    fingerprint = "E19558C059B19311A4EB227B03683E7D4E8545AB"
    manifest = sync_manifest(tmp_path / "sync", layout=3)
    text = manifest.read_text().replace(str(SIGNED_CACHE), str(spack1))
    text = text.replace(str(FIXTURE_KEY), str(FIXTURES / "keys" / f"{fingerprint}.pub"))
    text = text.replace(FIXTURE_FPR, fingerprint)
    # compiler-wrapper is a build-only dependency: a run-time closure sync leaves it out.
    text = text.replace(
        'specs = ["hello-app"]', 'specs = ["hello-rpath", "hello-app", "compiler-wrapper"]'
    )
    manifest.write_text(text)
    assert run(manifest, "apply", "--yes") == 0
    assert _index_installs(tmp_path / "sync" / "site") == _index_installs(spack1)


def test_spack_023_specs_synced_into_layout_3_are_indexed_as_spack_1x_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "signing"
    home.mkdir(mode=0o700)
    fingerprint = generate_key(home, "Site", "site@example.invalid")
    monkeypatch.setenv("RECONCILE_SIGNING_HOME", str(home))
    public = tmp_path / "site.pub"
    public.write_bytes(GpgSigner(gnupghome=home, fingerprint=fingerprint).public_key())
    key = (
        f'\n[[key]]\nname = "site"\nkind = "gpg"\nfingerprint = "{fingerprint}"\n'
        f'file = "{public}"\n'
    )
    manifest = sync_manifest(tmp_path / "sync", layout=3, sign_with="site", extra=key)
    assert run(manifest, "apply", "--yes") == 0
    installs = _index_installs(tmp_path / "sync" / "site")
    assert len(installs) == 4  # hello-app, greetlib, gcc-runtime and the glibc external
    for entry in installs.values():
        spec = entry["spec"]
        assert isinstance(spec, dict)
        assert "compiler" not in spec  # Spack 1.x's format 5 reader refuses it
        assert spec["annotations"] == {"original_specfile_version": 4, "compiler": "gcc@=12.2.0"}
