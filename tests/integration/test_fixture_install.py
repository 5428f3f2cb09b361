"""End to end: install the Spack-made fixture cache and run what was installed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import GREETLIB_HASH, HELLO_HASH, SIGNED_CACHE, UNSIGNED_CACHE
from support import installed_prefix, run, run_hello, snapshot, write_manifest

SPACK_PROJECTION = "{arch}/{compiler.name}-{compiler.version}/{name}-{version}-{hash}"


def check_hello_works(root: Path) -> None:
    hello = installed_prefix(root, "hello-app")
    greetlib = installed_prefix(root, "greetlib")
    message = greetlib / "share/greetlib/message.txt"
    for program in ("bin/hello-app", "bin/ha", "bin/hello-app-wrapper"):
        lines = run_hello(hello, program)
        assert len(lines) == 4, lines
        first = lines[0].removeprefix("hello-app 3.0 installed at ")
        assert os.path.samefile(first, hello)
        second = lines[1].removeprefix("greetlib message file: ")
        assert os.path.samefile(second, message)
        assert lines[2] == "greetlib 2.1 says hello."
        fourth = lines[3].removeprefix("this message file lives in ")
        assert os.path.samefile(fourth, greetlib / "share/greetlib")
    link = hello / "share/hello-app/greetlib-message"
    assert os.readlink(link) == str(message)
    pc = (greetlib / "lib/pkgconfig/greet2.pc").read_text()
    assert f"prefix={greetlib}\n" in pc
    assert "research-spack" not in pc


@pytest.mark.parametrize(
    ("padded", "projection"),
    [(None, None), (128, None), (128, SPACK_PROJECTION)],
    ids=["shorter-root", "padded-128", "padded-128-spack-projection"],
)
def test_install_relocates_and_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], padded: int | None, projection: str | None
) -> None:
    manifest = write_manifest(tmp_path, padded_length=padded, projection=projection)
    assert run(manifest, "apply", "--yes") == 0
    out = capsys.readouterr().out
    assert "+ install gcc-runtime@12.2.0/75b4t5r" in out
    assert "Apply complete: 3 installed" in out
    root = tmp_path / "opt"
    check_hello_works(root)
    hello = installed_prefix(root, "hello-app")
    if padded:
        assert str(hello).startswith(str(root) + "/__spack_path_placeholder__")
    if projection:
        assert "linux-debian12-x86_64_v4/gcc-12.2.0/hello-app-3.0-" in str(hello)
    # glibc is an external: never installed
    assert not any("glibc" in p.name for p in root.rglob("*"))
    assert run(manifest, "plan", "--detailed-exitcode") == 0
    assert "No changes" in capsys.readouterr().out
    before = snapshot(root)
    assert run(manifest, "apply", "--yes") == 0
    assert snapshot(root) == before


def test_selectors_by_hash_and_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = write_manifest(
        tmp_path, specs=[f"greetlib/{GREETLIB_HASH[:7]}", f"/{HELLO_HASH[:5]}", "gcc-runtime@12"]
    )
    assert run(manifest, "apply", "--yes") == 0
    check_hello_works(tmp_path / "opt")


def test_missing_selector_is_a_plan_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path, specs=["hello-app@=3.0.1", "nosuch"])
    assert run(manifest, "plan") == 1
    err = capsys.readouterr().err
    assert "no spec matches 'hello-app@=3.0.1'" in err
    assert "no spec matches 'nosuch'" in err
    assert "Traceback" not in err


def test_unsigned_cache_needs_signed_false(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path / "a", mirror=UNSIGNED_CACHE)
    assert run(manifest, "apply", "--yes") == 1
    err = capsys.readouterr().err
    assert "signed = false" in err
    assert snapshot(tmp_path / "a" / "opt") == {}
    manifest = write_manifest(tmp_path / "b", mirror=UNSIGNED_CACHE, signed=False, key_file=None)
    assert run(manifest, "apply", "--yes") == 0
    check_hello_works(tmp_path / "b" / "opt")


def test_signed_mirror_relative_path_and_mirror_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plain relative mirror path, and the key taken from the mirror (pinned)."""
    (tmp_path / "cache").symlink_to(SIGNED_CACHE)
    manifest = write_manifest(tmp_path, mirror="cache", key_source="mirror:team")
    assert run(manifest, "apply", "--yes") == 0
    check_hello_works(tmp_path / "opt")
