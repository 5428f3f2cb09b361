"""Manifests for bundle tests."""

from __future__ import annotations

from pathlib import Path

from conftest import FIXTURE_FPR, FIXTURE_KEY, SIGNED_CACHE


def write_manifest(
    folder: Path,
    *,
    mirror: Path = SIGNED_CACHE,
    key_file: Path = FIXTURE_KEY,
    fingerprint: str = FIXTURE_FPR,
    extra: str = "",
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "reconcile.toml"
    path.write_text(
        'version = 1\n\n[install]\nroot = "opt"\nspecs = ["hello-app"]\n\n'
        f'[[mirror]]\nname = "team"\nurl = "{mirror}"\n\n'
        f'[[key]]\nname = "team-gpg"\nkind = "gpg"\nfingerprint = "{fingerprint}"\n'
        f'file = "{key_file}"\n' + extra
    )
    return path
