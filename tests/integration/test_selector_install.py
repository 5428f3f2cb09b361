"""Selectors in Spack's syntax install the spec they describe, from caches of both formats."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import FIXTURES
from support import run, write_manifest
from test_fixture_install import check_hello_works

SPACK1 = FIXTURES / "spack1-v3-signed"
SPACK1_FPR = "E19558C059B19311A4EB227B03683E7D4E8545AB"


def test_spack_023_cache_with_compiler_and_target(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, specs=["hello-app %gcc@12 target=x86_64_v4"])
    assert run(manifest, "apply", "--yes") == 0
    check_hello_works(tmp_path / "opt")


def test_spack_11_cache_with_compiler(tmp_path: Path) -> None:
    manifest = write_manifest(
        tmp_path,
        specs=["hello-rpath %gcc"],
        mirror=SPACK1,
        key_file=FIXTURES / "keys" / f"{SPACK1_FPR}.pub",
        fingerprint=SPACK1_FPR,
    )
    assert run(manifest, "apply", "--yes") == 0
    (program,) = (tmp_path / "opt").glob("hello-rpath-1.0-*/bin/hello")
    done = subprocess.run([program, "reconcile"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("hello, reconcile")


def test_selector_that_matches_nothing_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path, specs=["hello-app %gcc@13"])
    assert run(manifest, "plan") == 1
    assert "no spec matches 'hello-app %gcc@13'" in capsys.readouterr().err


def test_ambiguous_selector_lists_what_tells_candidates_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = (
        f'\n[[mirror]]\nname = "spack1"\nurl = "{SPACK1}"\n'
        f'\n[[key]]\nname = "spack1"\nkind = "gpg"\nfingerprint = "{SPACK1_FPR}"\n'
        f'file = "{FIXTURES / "keys" / f"{SPACK1_FPR}.pub"}"\n'
    )
    manifest = write_manifest(tmp_path, specs=["hello-app"], extra=extra)
    assert run(manifest, "plan") == 1
    err = capsys.readouterr().err
    assert "'hello-app' matches 2 specs that are not installed" in err
    assert "hello-app@3.0/d7r6xmz  linux-debian12-x86_64_v4  %gcc@12.2.0  (mirror team)" in err
    assert "hello-app@3.0/ysrcvre  linux-debian12-icelake  %gcc@12.2.0  (mirror spack1)" in err
    # The attribute that differs picks one.
    for selector in ("hello-app target=icelake", "hello-app target=x86_64_v4"):
        folder = tmp_path / selector.split("=")[-1]
        manifest = write_manifest(folder, specs=[selector], extra=extra)
        assert run(manifest, "plan") == 0, capsys.readouterr().err
