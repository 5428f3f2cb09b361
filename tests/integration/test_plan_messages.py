"""What plan says when a newcomer gets something wrong: typos, wrong mirror URLs, empty
publish targets. Each message must point at the real cause."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SIGNED_CACHE
from support import run, write_manifest


def _plan_error(manifest: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert run(manifest, "plan") == 1
    return capsys.readouterr().err


def test_misspelt_spec_gets_a_suggestion_and_the_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _plan_error(write_manifest(tmp_path, specs=["helo-app"]), capsys)
    assert "no spec matches 'helo-app' in mirror 'team'" in err
    assert "did you mean 'hello-app'?" in err
    assert "the mirrors offer: " in err and "greetlib" in err and "hello-app" in err
    assert "in the mirrors" not in err


def test_missing_mirror_folder_is_the_headline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _plan_error(write_manifest(tmp_path, mirror="mirorr"), capsys)
    assert f"the folder {tmp_path / 'mirorr'} does not exist" in err
    assert "fix the mirrors' URLs first" in err
    assert "spelling" not in err


def test_url_naming_build_cache_is_explained(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _plan_error(write_manifest(tmp_path, mirror=SIGNED_CACHE / "build_cache"), capsys)
    assert "ends in /build_cache" in err
    assert "build_cache/build_cache" not in err


def test_mirror_file_instead_of_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "not-a-folder").write_text("x")
    err = _plan_error(write_manifest(tmp_path, mirror="not-a-folder"), capsys)
    assert "is not a folder" in err


@pytest.mark.parametrize("layout", [2, 3])
def test_empty_publish_target_is_called_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], layout: int
) -> None:
    extra = (
        f'\n[[mirror]]\nname = "out"\nurl = "out-mirror"\nlayout = {layout}\n'
        '\n[[publish]]\nspecs = ["hello-app"]\nmirror = "out"\n'
    )
    run(write_manifest(tmp_path, extra=extra), "plan")
    out = capsys.readouterr().out
    assert f"mirror:out: empty: apply creates it in layout {layout}" in out
    assert "cannot be read" not in out


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        (3, "the mirror is empty (layout v3): it has no v3/layout.json"),
        (2, "build_cache/index.json: the mirror has no binary cache index (layout v2)"),
    ],
)
def test_empty_mirror_is_named_in_its_declared_layout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], layout: int, expected: str
) -> None:
    (tmp_path / "empty-mirror").mkdir()
    manifest = write_manifest(tmp_path, mirror="empty-mirror")
    text = manifest.read_text().replace("signed = true", f"signed = true\nlayout = {layout}")
    manifest.write_text(text)
    err = _plan_error(manifest, capsys)
    assert expected in err
    assert f"(layout v{5 - layout})" not in err
