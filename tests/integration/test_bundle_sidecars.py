"""Bundles carry reconcile's sidecar signatures: a bundle exported under a manifest that
trusts only an ed25519 key verifies and installs with that key, imported into a folder or
written into a mirror; a key the manifest revokes stays revoked in the bundle."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from support import run
from test_ed25519_trust import (  # noqa: F401  (published_v2 is a fixture)
    consumer,
    policy_consumer,
    published_v2,
)
from test_fixture_install import check_hello_works
from test_sigstore_trust import instance, signed, sigstore_entry  # noqa: F401  (fixtures)


def installs_with_only(manifest: Path, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(manifest, "apply", "--yes") == 0, capsys.readouterr().err
    check_hello_works(root)
    records = (root / ".reconcile" / "records").glob("*.json")
    assert {json.loads(r.read_text())["signer"] for r in records} == {"ed25519:site"}


def test_a_bundle_carries_the_sidecars(
    tmp_path: Path,
    published_v2: tuple[Path, str, str],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    source, ed25519_entry, _ = published_v2
    manifest = consumer(tmp_path / "site", source, ed25519_entry)
    bundle = tmp_path / "closure.tar"
    assert run(manifest, "bundle", "export", "--out", str(bundle)) == 0, capsys.readouterr().err
    with tarfile.open(bundle) as tar:
        names = [name for name in tar.getnames() if name.endswith(".reconcile-sig")]
    assert len(names) == 3

    # Imported into a folder: its manifest trusts only the ed25519 key, and installs.
    dest = tmp_path / "imported"
    assert run(manifest, "bundle", "import", str(bundle), str(dest)) == 0, capsys.readouterr().err
    imported = dest / "reconcile.toml"
    text = imported.read_text()
    assert 'kind = "ed25519"' in text and 'kind = "gpg"' not in text
    text = text.replace('root = "opt"', f'root = "{tmp_path / "opt-a"}"')
    imported.write_text(text)
    installs_with_only(imported, tmp_path / "opt-a", capsys)

    # Written into a mirror: the sidecars go there too, and the mirror installs.
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    out = tmp_path / "for-mirror"
    assert (
        run(manifest, "bundle", "import", str(bundle), mirror.as_uri(), "--out", str(out)) == 0
    ), capsys.readouterr().err
    assert len(list(mirror.rglob("*.reconcile-sig"))) == 3
    written = out / "reconcile.toml"
    written.write_text(
        written.read_text().replace('root = "opt"', f'root = "{tmp_path / "opt-b"}"')
    )
    installs_with_only(written, tmp_path / "opt-b", capsys)


def test_a_revoked_key_stays_revoked_in_the_bundle(
    tmp_path: Path,
    published_v2: tuple[Path, str, str],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    source, ed25519_entry, gpg_entry = published_v2
    keys = gpg_entry + "revoked = true\n\n" + ed25519_entry
    manifest = consumer(tmp_path / "site", source, keys)
    bundle = tmp_path / "closure.tar"
    assert run(manifest, "bundle", "export", "--out", str(bundle)) == 0, capsys.readouterr().err
    dest = tmp_path / "imported"
    assert run(manifest, "bundle", "import", str(bundle), str(dest)) == 0, capsys.readouterr().err
    text = (dest / "reconcile.toml").read_text()
    assert "revoked = true" in text
    text = text.replace('root = "opt"', f'root = "{tmp_path / "opt"}"')
    (dest / "reconcile.toml").write_text(text)
    installs_with_only(dest / "reconcile.toml", tmp_path / "opt", capsys)


def test_the_bundle_keeps_the_mirror_trust_policy(
    tmp_path: Path,
    published_v2: tuple[Path, str, str],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A site that requires two signatures exports a bundle that requires two as well."""
    source, ed25519_entry, gpg_entry = published_v2
    manifest = policy_consumer(
        tmp_path / "site", source, gpg_entry + "\n" + ed25519_entry, "require = 2"
    )
    bundle = tmp_path / "closure.tar"
    assert run(manifest, "bundle", "export", "--out", str(bundle)) == 0, capsys.readouterr().err
    dest = tmp_path / "imported"
    assert run(manifest, "bundle", "import", str(bundle), str(dest)) == 0, capsys.readouterr().err
    text = (dest / "reconcile.toml").read_text()
    assert "require = 2" in text
    text = text.replace('root = "opt"', f'root = "{tmp_path / "opt"}"')
    (dest / "reconcile.toml").write_text(text)
    assert run(dest / "reconcile.toml", "apply", "--yes") == 0, capsys.readouterr().err
    check_hello_works(tmp_path / "opt")


def test_a_bundle_trusted_through_a_sigstore_identity(
    tmp_path: Path,
    signed: tuple[Path, Path],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The bundle pins the private instance's trusted root it was verified with."""
    mirror, root = signed
    manifest = consumer(tmp_path / "site", mirror, sigstore_entry(root))
    bundle = tmp_path / "closure.tar"
    assert run(manifest, "bundle", "export", "--out", str(bundle)) == 0, capsys.readouterr().err
    dest = tmp_path / "imported"
    assert run(manifest, "bundle", "import", str(bundle), str(dest)) == 0, capsys.readouterr().err
    assert (dest / "keys" / "ci.trusted_root.json").read_text() == root.read_text()
    text = (dest / "reconcile.toml").read_text()
    assert 'kind = "sigstore"' in text and 'trusted_root = "keys/ci.trusted_root.json"' in text
    text = text.replace('root = "opt"', f'root = "{tmp_path / "opt"}"')
    (dest / "reconcile.toml").write_text(text)
    assert run(dest / "reconcile.toml", "apply", "--yes") == 0, capsys.readouterr().err
    check_hello_works(tmp_path / "opt")
    records = (tmp_path / "opt" / ".reconcile" / "records").glob("*.json")
    assert {json.loads(r.read_text())["signer"] for r in records} == {"sigstore:ci"}
