"""`reconcile mirror list NAME [SELECTOR]`: what a mirror offers, like spack buildcache list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import run, write_manifest


def test_lists_binary_specs_not_externals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path)
    assert run(manifest, "mirror", "list", "team") == 0
    out = capsys.readouterr().out
    assert "hello-app@3.0/d7r6xmz  linux-debian12-x86_64_v4  %gcc@12.2.0" in out
    assert "glibc" not in out  # an external: no binary package
    assert "3 specs in mirror 'team' (layout 2)." in out


def test_selector_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = write_manifest(tmp_path)
    assert run(manifest, "mirror", "list", "team", "hello-app ^greetlib", "--json") == 0
    listing = json.loads(capsys.readouterr().out)
    assert [spec["name"] for spec in listing["specs"]] == ["hello-app"]
    assert listing["specs"][0]["compilers"] == ["gcc@12.2.0"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nowhere"], "no mirror named 'nowhere'"),
        (["team", "hello-app@"], "the version after '@' is missing"),
    ],
)
def test_refusals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    manifest = write_manifest(tmp_path)
    assert run(manifest, "mirror", "list", *argv) == 1
    assert message in capsys.readouterr().err
