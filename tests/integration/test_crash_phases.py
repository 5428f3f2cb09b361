"""SIGKILL at every crash point of every phase (install, publish, sync, repair, removal): the
next apply converges, ``drift`` finds nothing, and what was published or synced installs.

Each crash point in ``reconcile/faults.py`` must be reached by some test, or the point is dead
code that protects nothing: ``test_every_crash_point_is_exercised`` checks that."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest
from conftest import REPO
from support import run_subprocess, write_manifest
from test_fixture_install import check_hello_works
from test_mirror_sync import sync_manifest
from test_publish_roundtrip import publishing_manifest

from reconcile.faults import CRASH_POINTS
from reconcile.trust.sign import GpgSigner, generate_key


@pytest.fixture
def signing(tmp_path: Path) -> tuple[str, Path, dict[str, str]]:
    """A publishing key: its fingerprint, its public key file, and the environment that lets
    a subprocess sign with it."""
    home = tmp_path / "signing"
    home.mkdir(mode=0o700)
    fingerprint = generate_key(home, "Publisher", "publisher@example.invalid")
    public = tmp_path / "publisher.pub"
    public.write_bytes(GpgSigner(gnupghome=home, fingerprint=fingerprint).public_key())
    return fingerprint, public, {"RECONCILE_SIGNING_HOME": str(home)}


def killed_then_converged(manifest: Path, crash_at: str, env: dict[str, str]) -> None:
    killed = run_subprocess(manifest, "apply", "--yes", env={**env, "RECONCILE_CRASH_AT": crash_at})
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    again = run_subprocess(manifest, "apply", "--yes", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    plan = run_subprocess(manifest, "plan", "--detailed-exitcode", env=env)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    audit = run_subprocess(manifest, "drift", env=env)
    assert audit.returncode == 0, audit.stdout + audit.stderr


@pytest.mark.parametrize("layout", [2, 3])
@pytest.mark.parametrize("crash_at", ["publish-tarball-written", "publish-before-index"])
def test_a_publish_killed_midway_converges(
    tmp_path: Path, signing: tuple[str, Path, dict[str, str]], crash_at: str, layout: int
) -> None:
    fingerprint, public, env = signing
    manifest = publishing_manifest(tmp_path / "publisher", fingerprint, public, layout)
    killed_then_converged(manifest, crash_at, env)
    consumer = write_manifest(
        tmp_path / "consumer",
        mirror=tmp_path / "publisher" / "published",
        key_file=public,
        fingerprint=fingerprint,
    )
    installed = run_subprocess(consumer, "apply", "--yes")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    check_hello_works(tmp_path / "consumer" / "opt")


@pytest.mark.parametrize("layout", [2, 3])
def test_a_sync_killed_before_its_index_converges(
    tmp_path: Path, signing: tuple[str, Path, dict[str, str]], layout: int
) -> None:
    fingerprint, public, env = signing
    key = (
        f'\n[[key]]\nname = "site"\nkind = "gpg"\nfingerprint = "{fingerprint}"\n'
        f'file = "{public}"\n'
    )
    manifest = sync_manifest(tmp_path / "sync", layout=layout, sign_with="site", extra=key)
    killed_then_converged(manifest, "sync-before-index", env)
    consumer = write_manifest(
        tmp_path / "consumer",
        mirror=tmp_path / "sync" / "site",
        key_file=public,
        fingerprint=fingerprint,
    )
    installed = run_subprocess(consumer, "apply", "--yes")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    check_hello_works(tmp_path / "consumer" / "opt")


def test_every_crash_point_is_exercised() -> None:
    tests = "\n".join(
        p.read_text() for p in (REPO / "tests").rglob("test_*.py") if p.name != Path(__file__).name
    )
    tests += Path(__file__).read_text().split("def test_every_crash_point_is_exercised")[0]
    quoted = set(re.findall(r'"([a-z-]+)"', tests))
    assert [point for point in CRASH_POINTS if point not in quoted] == []
    assert os.environ.get("RECONCILE_CRASH_AT") is None
