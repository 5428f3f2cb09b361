"""One executor model: every action is prepared (fetched and verified) before anything is
committed; a verification failure of any kind stops the whole apply with nothing changed; a
source that cannot be downloaded fails only itself (and the run), after the rest committed."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SIGNED_CACHE
from support import run, snapshot, write_manifest
from test_fixture_install import check_hello_works
from test_source_mirror_cli import SOURCES, archive_of

from reconcile.apply.executor import STEPS
from reconcile.plan.model import COMMIT_ORDER


def sources_extra(*, sha256: str | None = None, url: str | None = None) -> str:
    lines = ["", "[[mirror]]", 'name = "sources"', 'url = "sources"', ""]
    for (name, version), real in SOURCES.items():
        lines += [
            "[[source]]",
            f'name = "{name}"',
            f'version = "{version}"',
            f'url = "{url or archive_of(real).as_uri()}"',
            f'sha256 = "{sha256 or real}"',
            'mirror = "sources"',
            "",
        ]
    return "\n".join(lines)


def test_every_phase_has_a_step() -> None:
    assert list(STEPS) == list(COMMIT_ORDER)


def test_a_source_that_does_not_verify_stops_the_installs_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path, extra=sources_extra(sha256="1" * 64))
    assert run(manifest, "apply", "--yes") == 1
    err = capsys.readouterr().err
    assert "error[checksum-mismatch]" in err and "Traceback" not in err
    assert snapshot(tmp_path / "opt") == {}  # nothing installed, no record
    assert not (tmp_path / "sources").exists() or snapshot(tmp_path / "sources") == {}


def test_a_tampered_sync_source_stops_the_installs_too(
    tmp_path: Path, signed_cache_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tarballs = sorted(signed_cache_copy.rglob("*greetlib*.spack"))
    data = bytearray(tarballs[0].read_bytes())
    data[len(data) // 2] ^= 0x01
    tarballs[0].write_bytes(bytes(data))
    # The tampered mirror comes first: the install of greetlib falls back to team's good copy
    # (the same signed checksum), the sync copies from the first mirror that lists it.
    text = write_manifest(tmp_path).read_text()
    head, team = text.split("[[mirror]]\n", 1)
    manifest = tmp_path / "reconcile.toml"
    manifest.write_text(
        f"""{head}[[mirror]]
name = "tampered"
url = "{signed_cache_copy}"

[[mirror]]
name = "site"
url = "site"
layout = 2
specs = ["greetlib"]

[[mirror]]
{team}"""
    )
    assert run(manifest, "plan") == 0
    assert "+ sync greetlib@2.1/yrhiacw to site (from tampered" in capsys.readouterr().out
    assert run(manifest, "apply", "--yes") == 1
    err = capsys.readouterr().err
    assert "checksum-mismatch" in err and "Traceback" not in err
    assert snapshot(tmp_path / "opt") == {}
    assert not (tmp_path / "site").exists() or snapshot(tmp_path / "site") == {}


def test_a_source_that_cannot_be_downloaded_fails_the_run_after_the_rest_committed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = (tmp_path / "nowhere" / "gone.tar.gz").as_uri()
    manifest = write_manifest(tmp_path, extra=sources_extra(url=dead))
    assert run(manifest, "apply", "--yes") == 1
    err = capsys.readouterr().err
    assert "sources could not be put in their mirrors" in err and "Traceback" not in err
    check_hello_works(tmp_path / "opt")  # the binaries verified: they are committed
    assert run(manifest, "plan") == 0
    out = capsys.readouterr().out
    assert "+ install" not in out and "+ fetch source" in out
    assert SIGNED_CACHE.is_dir()
