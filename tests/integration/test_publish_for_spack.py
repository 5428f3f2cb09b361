"""`[[publish]] for_spack` and `min_prefix_length`: a cache is published only when Spack's
default tree (or the declared minimum) can relocate into the prefixes it was built in."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import run, write_manifest

SPACK_023_PROJECTION = "{architecture}/{compiler.name}-{compiler.version}/{name}-{version}-{hash}"


def _manifest(folder: Path, publish: str, **install: object) -> Path:
    extra = f"""
[[mirror]]
name = "out"
url = "out"
layout = 2

[[publish]]
specs = ["hello-app"]
mirror = "out"
{publish}
"""
    return write_manifest(folder, extra=extra, **install)


@pytest.mark.parametrize("release", ["0.23", "1.x"])
def test_default_layout_is_refused_with_both_lengths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], release: str
) -> None:
    manifest = _manifest(tmp_path, f'for_spack = "{release}"', padded_length=128)
    assert run(manifest, "plan") == 1
    err = capsys.readouterr().err
    assert f"Spack {release}'s default tree with a root padded to 128 puts it at" in err
    assert "characters), but" in err and "cannot be relocated to a longer prefix" in err


def test_spack_projection_and_padding_are_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _manifest(
        tmp_path, 'for_spack = "0.23"', padded_length=128, projection=SPACK_023_PROJECTION
    )
    assert run(manifest, "plan") == 0
    out = capsys.readouterr().out
    assert "+ publish hello-app@3.0/d7r6xmz to out" in out


def test_root_shorter_than_the_consumers_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _manifest(
        tmp_path,
        'for_spack = "0.23"\nconsumer_padded_length = 200',
        padded_length=128,
        projection=SPACK_023_PROJECTION,
    )
    assert run(manifest, "plan") == 1
    assert "shorter than the 200 of the root it is published for" in capsys.readouterr().err


def test_min_prefix_length(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = _manifest(tmp_path, "min_prefix_length = 400")
    assert run(manifest, "plan") == 1
    assert "publish[0].min_prefix_length is 400" in capsys.readouterr().err
    assert run(_manifest(tmp_path / "ok", "min_prefix_length = 20"), "plan") == 0


def test_bad_release_is_a_located_manifest_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _manifest(tmp_path, 'for_spack = "0.22"')
    assert run(manifest, "validate") == 1
    err = capsys.readouterr().err
    assert "publish[0].for_spack: expected one of '0.23', '1.x', got '0.22'" in err
