"""`reconcile init`: a starting manifest whose keys are active only when trusted explicitly."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from conftest import FIXTURE_FPR, FIXTURES, SIGNED_CACHE
from test_fixture_install import check_hello_works

from reconcile.cli.main import main

SPACK1 = FIXTURES / "spack1-v3-signed"
SPACK1_FPR = "E19558C059B19311A4EB227B03683E7D4E8545AB"


def test_trusted_key_is_active_and_the_manifest_installs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "site" / "reconcile.toml"
    argv = ["-m", str(manifest), "init", "--mirror", str(SIGNED_CACHE)]
    assert main([*argv, "--spec", "hello-app", "--trust", FIXTURE_FPR.lower()]) == 0
    assert f"key {FIXTURE_FPR} published by the mirror: trusted" in capsys.readouterr().err
    data = tomllib.loads(manifest.read_text())
    assert data["key"] == [
        {
            "name": "upstream-1",
            "kind": "gpg",
            "fingerprint": FIXTURE_FPR,
            "source": "mirror:upstream",
        }
    ]
    assert not Path(data["mirror"][0]["url"]).is_absolute()  # relative to the manifest
    assert main(["-m", str(manifest), "apply", "--yes"]) == 0
    check_hello_works(tmp_path / "site" / "opt")


@pytest.mark.parametrize(
    ("mirror", "fingerprint"), [(SIGNED_CACHE, FIXTURE_FPR), (SPACK1, SPACK1_FPR)]
)
def test_untrusted_keys_are_commented_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mirror: Path, fingerprint: str
) -> None:
    manifest = tmp_path / "reconcile.toml"
    assert main(["-m", str(manifest), "init", "--mirror", str(mirror), "--spec", "x"]) == 0
    text = manifest.read_text()
    assert f'# fingerprint = "{fingerprint}"' in text and "NOT trusted yet" in text
    assert "key" not in tomllib.loads(text)
    # Without a pinned key the mirror's signed metadata verifies against nothing.
    assert main(["-m", str(manifest), "validate"]) == 0


def test_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = tmp_path / "reconcile.toml"
    manifest.write_text("keep me")
    assert main(["-m", str(manifest), "init", "--mirror", str(SIGNED_CACHE)]) == 1
    assert "init never overwrites a manifest" in capsys.readouterr().err
    assert manifest.read_text() == "keep me"
    other = tmp_path / "other.toml"
    wrong = "0" * 40
    assert main(["-m", str(other), "init", "--mirror", str(SIGNED_CACHE), "--trust", wrong]) == 1
    assert f"--trust names {wrong}" in capsys.readouterr().err
    assert not other.exists()
    assert main(["-m", str(other), "init", "--mirror", str(SIGNED_CACHE), "--spec", "a@"]) == 1
    assert not other.exists()
