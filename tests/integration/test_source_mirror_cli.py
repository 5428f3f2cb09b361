"""Source mirrors through plan and apply: Spack's layout from the same sources as the
Spack-made fixture, then nothing to do, then a repair."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
from conftest import FIXTURES, REPO
from shared_with_symlinks import link_text as spack_link_text
from support import run

SOURCE_MIRROR = FIXTURES / "spack-source-mirror"
SOURCES = {
    ("greetlib", "2.1"): "fa2d16c7c3e49771597f3368c60265178be903aa6705b848ae6a82ef262e98df",
    ("hello-app", "3.0"): "7ba9fd213dbd67030b30b08d252aba22e364805d7625e31c21e86b3b5b50fb57",
}


def archive_of(sha256: str) -> Path:
    return SOURCE_MIRROR / "_source-cache" / "archive" / sha256[:2] / f"{sha256}.tar.gz"


def source_manifest(folder: Path) -> Path:
    lines = ["version = 1", "", "[[mirror]]", 'name = "sources"', 'url = "sources"', ""]
    for (name, version), sha256 in SOURCES.items():
        lines += [
            "[[source]]",
            f'name = "{name}"',
            f'version = "{version}"',
            f'url = "{archive_of(sha256).as_uri()}"',
            f'sha256 = "{sha256}"',
            'mirror = "sources"',
            "",
        ]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "reconcile.toml"
    path.write_text("\n".join(lines))
    return path


def test_source_mirror_matches_spack_layout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = source_manifest(tmp_path)
    assert run(manifest, "plan", "--json", "--detailed-exitcode") == 2
    plan = json.loads(capsys.readouterr().out)
    schema = json.loads((REPO / "schemas" / "plan.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(plan)
    assert plan["summary"]["sources"] == 4  # two fetches, two links
    assert run(manifest, "apply", "--yes") == 0
    mirror = tmp_path / "sources"
    for (name, version), sha256 in SOURCES.items():
        archive = mirror / "_source-cache" / "archive" / sha256[:2] / f"{sha256}.tar.gz"
        assert archive.read_bytes() == archive_of(sha256).read_bytes()
        link = mirror / name / f"{name}-{version}.tar.gz"
        # Spack's symlink, real or flattened into a file holding the link's text
        spack_link = spack_link_text(SOURCE_MIRROR / name / f"{name}-{version}.tar.gz")
        assert os.readlink(link) == spack_link
        assert link.read_bytes() == archive_of(sha256).read_bytes()
    capsys.readouterr()
    assert run(manifest, "plan", "--detailed-exitcode") == 0
    assert "No changes" in capsys.readouterr().out


def test_corrupt_archive_is_found_with_check_contents_and_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = source_manifest(tmp_path)
    assert run(manifest, "apply", "--yes") == 0
    sha256 = SOURCES[("greetlib", "2.1")]
    archive = tmp_path / "sources" / "_source-cache" / "archive" / sha256[:2] / f"{sha256}.tar.gz"
    stat = archive.stat()
    data = bytearray(archive.read_bytes())
    data[10] ^= 0xFF
    archive.write_bytes(bytes(data))
    os.utime(archive, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # size and mtime unchanged
    capsys.readouterr()
    assert run(manifest, "plan", "--detailed-exitcode") == 0  # cheap check: looks fine
    capsys.readouterr()
    assert run(manifest, "plan", "--check-contents", "--detailed-exitcode") == 2
    assert "+ fetch source greetlib@2.1" in capsys.readouterr().out
    assert run(manifest, "apply", "--yes", "--check-contents") == 0
    assert archive.read_bytes() == archive_of(sha256).read_bytes()


def test_mirror_permissions_are_enforced_on_what_is_there_and_what_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import grp
    import stat

    group = next(g for g in grp.getgrall() if g.gr_gid != os.getgid())
    manifest = source_manifest(tmp_path)
    text = manifest.read_text().replace(
        'url = "sources"\n',
        f'url = "sources"\n[mirror.permissions]\nread = "group"\nwrite = "user"\n'
        f'group = "{group.gr_name}"\n',
        1,
    )
    manifest.write_text(text)
    stray = tmp_path / "sources" / "README"
    stray.parent.mkdir()
    stray.write_text("kept by hand\n")
    stray.chmod(0o666)
    assert run(manifest, "plan") == 0
    out = capsys.readouterr().out
    assert "~ permissions mirror 'sources'" in out
    assert "this apply writes into it" in out
    assert run(manifest, "apply", "--yes") == 0
    for path in [tmp_path / "sources", *(tmp_path / "sources").rglob("*")]:
        if path.is_symlink():
            continue
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert path.lstat().st_gid == group.gr_gid, path
        assert mode == (0o2750 if path.is_dir() else 0o640), (path, oct(mode))
    capsys.readouterr()
    assert run(manifest, "plan", "--detailed-exitcode") == 0
    stray.chmod(0o644)  # drifted since
    assert run(manifest, "plan", "--detailed-exitcode") == 2
    assert "README" in capsys.readouterr().out
