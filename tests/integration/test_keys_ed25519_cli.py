"""``reconcile keys generate|list|export`` for ed25519 keys."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from support import run

from reconcile.trust.ed25519 import Ed25519SecretKey, parse_public_key


def test_generate_list_export_an_ed25519_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "keys"
    monkeypatch.setenv("RECONCILE_SIGNING_HOME", str(home))
    manifest = tmp_path / "project" / "reconcile.toml"
    manifest.parent.mkdir()
    assert run(manifest, "keys", "generate", "--kind", "ed25519", "site") == 0
    captured = capsys.readouterr()
    entry = captured.out
    public = entry.split('public_key = "')[1].split('"')[0]
    assert parse_public_key(public).name == "site"
    secret_file = home / "ed25519" / "site.secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert Ed25519SecretKey.parse(secret_file.read_text()).public_key().text() == public
    secret_text = secret_file.read_text().strip()
    assert secret_text.split(":")[1] not in captured.out + captured.err

    manifest.write_text("version = 1\n\n" + entry)
    assert run(manifest, "keys", "generate", "--kind", "ed25519", "site") == 1
    assert "already has a [[key]] named 'site'" in capsys.readouterr().err

    assert run(manifest, "keys", "list", "--json") == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["ed25519_keys"] == [
        {
            "name": "site",
            "scheme": "ed25519",
            "public_key": public,
            "path": str(secret_file),
            "manifest_keys": ["site"],
        }
    ]
    assert listing["manifest_keys_without_secret"] == []
    assert run(manifest, "keys", "list") == 0
    text = capsys.readouterr().out
    assert f"ed25519 {public}" in text and "declared by the manifest as 'site'" in text

    assert run(manifest, "keys", "export", "site") == 0
    assert capsys.readouterr().out.strip() == public
    backup = tmp_path / "backup.secret"
    assert run(manifest, "keys", "export", "site", "--secret", "--out", str(backup)) == 0
    assert backup.read_text().strip() == secret_text
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert run(manifest, "keys", "export", "site", "--secret") == 1
    assert "never printed" in capsys.readouterr().err


def test_unsupported_kind_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = tmp_path / "reconcile.toml"
    assert run(manifest, "keys", "generate", "--kind", "sigstore", "ci") == 1
    err = capsys.readouterr().err
    assert "unsupported key kind 'sigstore'" in err and "--kind ed25519" in err


def test_names_the_manifest_accepts_make_keys_and_too_long_ones_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RECONCILE_SIGNING_HOME", str(tmp_path / "keys"))
    manifest = tmp_path / "reconcile.toml"
    assert run(manifest, "keys", "generate", "--kind", "ed25519", "site_ci.2026-1") == 0
    assert 'public_key = "site_ci.2026-1:' in capsys.readouterr().out
    assert run(manifest, "keys", "generate", "--kind", "ed25519", "k" * 129) == 1
    err = capsys.readouterr().err
    assert "error[bad-key-name]" in err and "Traceback" not in err
