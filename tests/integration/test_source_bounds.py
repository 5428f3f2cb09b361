"""Source archives are bounded like tarballs: a ``[[source]]`` that gives its ``size`` stops
the download at the first byte past it, one that does not at ``[limits] max_source_bytes``.
A hostile or broken server (real nginx serving an oversized file, a body that never ends)
costs one clear ``error[transfer-too-large]`` naming the URL with its credentials masked;
the mirror is left as it was and no partial download is kept."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import jsonschema
import pytest
from conftest import REPO
from hostile_server import Misbehave, hostile_server
from nginx_harness import QUERY_TOKEN, nginx_server
from support import run, write_manifest

MIB = 1 << 20
OVERSIZED = 3 * MIB


def manifest(folder: Path, url: str, sha256: str, *, size: int | None, limits: str = "") -> Path:
    lines = [
        "version = 1",
        "",
        "[[mirror]]",
        'name = "sources"',
        'url = "sources"',
        "",
        "[[source]]",
        'name = "bigpkg"',
        'version = "1.0"',
        f'url = "{url}"',
        f'sha256 = "{sha256}"',
        'mirror = "sources"',
    ]
    if size is not None:
        lines.append(f"size = {size}")
    if limits:
        lines += ["", "[limits]", limits]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "reconcile.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def served(folder: Path, size: int) -> tuple[Path, str]:
    """A file of ``size`` random bytes in ``folder`` (world-readable for nginx's workers)."""
    folder.mkdir(parents=True)
    folder.chmod(0o755)
    data = os.urandom(size)
    path = folder / "bigpkg-1.0.tar.gz"
    path.write_bytes(data)
    path.chmod(0o644)
    return path, hashlib.sha256(data).hexdigest()


def left_untouched(mirror: Path) -> bool:
    """Nothing of the archive in the mirror: no archive, no link, no partial download."""
    if not mirror.exists():
        return True
    return not [p for p in mirror.rglob("*") if p.is_file() or p.is_symlink()]


def refused(manifest_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert run(manifest_path, "apply", "--yes") == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("declared", ["size", "limit"])
def test_nginx_serving_an_oversized_archive_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], declared: str
) -> None:
    _file, sha256 = served(tmp_path / "www", OVERSIZED)
    with nginx_server(tmp_path / "www", tmp=tmp_path / "nginx") as server:
        # a presigned-style query token: nginx's /token/ answers 403 without it
        url = f"{server.url}/token/bigpkg-1.0.tar.gz?token={QUERY_TOKEN}"
        if declared == "size":
            path = manifest(tmp_path / "site", url, sha256, size=MIB)
        else:
            limit = f"max_source_bytes = {MIB}"
            path = manifest(tmp_path / "site", url, sha256, size=None, limits=limit)
        err = refused(path, capsys)
        sent = sum(
            int(str(e["body_bytes_sent"]))
            for e in server.access_log_entries()
            if e["method"] == "GET" and e["uri"] == "/token/bigpkg-1.0.tar.gz"
        )
        statuses = {e["status"] for e in server.access_log_entries()}
    assert statuses == {200}  # the token was sent: the refusal is the size, not a 403
    assert "error[transfer-too-large]" in err
    assert "cannot fetch the source bigpkg@1.0 for mirror 'sources'" in err
    assert f"{server.url}/token/bigpkg-1.0.tar.gz?token=***:" in err, err
    assert QUERY_TOKEN not in err
    assert f"announces {OVERSIZED:,} bytes; expected at most 1 MiB" in err
    setting = "the size its [[source]] gives" if declared == "size" else "[limits] max_source_bytes"
    assert f"({setting})" in err
    if declared == "size":  # what to do: fix the size, or raise the limit for a genuine file
        assert "longer than the size that [[source]] gives: check its size and url" in err
    else:
        assert f"if the file is genuine and this large, raise {setting}" in err
    # stopped on the announced length: far less than the file crossed the wire
    assert sent < MIB
    assert left_untouched(tmp_path / "site" / "sources")


def test_an_endless_body_is_stopped_at_max_source_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = {"endless.tar.gz": Misbehave("endless", body=b"\0" * (64 << 10))}
    with hostile_server(None, rules) as server:
        path = manifest(
            tmp_path / "site",
            f"{server.url}/endless.tar.gz?token=s3cr3t-query",
            "0" * 64,
            size=None,
            limits=f"max_source_bytes = {MIB}",
        )
        err = refused(path, capsys)
        sent = server.bytes_sent("endless.tar.gz")
    assert "error[transfer-too-large]" in err
    assert "sent more; expected at most 1 MiB ([limits] max_source_bytes)" in err
    assert "s3cr3t-query" not in err
    # the client hung up just past the cap (socket buffers aside), not after gigabytes
    assert sent < 16 * MIB
    assert left_untouched(tmp_path / "site" / "sources")


def test_a_source_of_exactly_its_size_is_fetched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The control: the cap is the size, not one byte less."""
    file, sha256 = served(tmp_path / "www", MIB)
    with nginx_server(tmp_path / "www", tmp=tmp_path / "nginx") as server:
        path = manifest(
            tmp_path / "site",
            f"{server.url}/bigpkg-1.0.tar.gz",
            sha256,
            size=MIB,
            limits=f"max_source_bytes = {MIB}",
        )
        assert run(path, "apply", "--yes") == 0, capsys.readouterr().err
    archive = tmp_path / "site" / "sources" / "_source-cache" / "archive" / sha256[:2]
    assert (archive / f"{sha256}.tar.gz").read_bytes() == file.read_bytes()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "expected a positive integer, got 0"),
        ("-5", "expected a positive integer, got -5"),
        ('"1 GiB"', "expected an integer"),
    ],
)
def test_a_bad_size_is_a_located_manifest_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    path = manifest(tmp_path, "https://example.org/a.tar.gz", "a" * 64, size=None)
    path.write_text(path.read_text() + f"size = {value}\n")
    capsys.readouterr()
    assert run(path, "validate") != 0
    err = capsys.readouterr().err
    line = path.read_text().splitlines().index(f"size = {value}") + 1
    assert f"{path}:{line}:8:" in err, err
    assert message in err


def test_a_saved_plan_keeps_the_size_that_caps_the_download(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The size travels in the plan (``details.size``, schema-valid), so applying a saved plan
    is bounded by it too; a [[source]] without a size saves no size field."""
    _file, sha256 = served(tmp_path / "www", OVERSIZED)
    schema = json.loads((REPO / "schemas" / "plan.schema.json").read_text())
    with nginx_server(tmp_path / "www", tmp=tmp_path / "nginx") as server:
        url = f"{server.url}/bigpkg-1.0.tar.gz"
        unsized = manifest(tmp_path / "unsized", url, sha256, size=None)
        assert run(unsized, "plan", "--json") == 0
        (fetch, _link) = json.loads(capsys.readouterr().out)["actions"]
        assert "size" not in fetch["details"]
        path = manifest(tmp_path / "site", url, sha256, size=MIB)
        saved = tmp_path / "plan.json"
        assert run(path, "plan", "--out", str(saved)) == 0
        plan = json.loads(saved.read_text())
        jsonschema.Draft202012Validator(schema).validate(plan)
        assert plan["actions"][0]["details"]["size"] == MIB
        capsys.readouterr()
        assert run(path, "apply", str(saved)) == 1
    err = capsys.readouterr().err
    assert "error[transfer-too-large]" in err and "(the size its [[source]] gives)" in err
    assert left_untouched(tmp_path / "site" / "sources")


def test_bundle_export_stops_an_endless_source_at_max_source_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``bundle export`` reads each source archive into memory: the same cap applies there."""
    rules = {"endless.tar.gz": Misbehave("endless", body=b"\0" * (64 << 10))}
    with hostile_server(None, rules) as server:
        extra = (
            '\n[[mirror]]\nname = "sources"\nurl = "sources"\n\n[[source]]\nname = "bigpkg"\n'
            f'version = "1.0"\nurl = "{server.url}/endless.tar.gz"\nsha256 = "{"0" * 64}"\n'
            f'mirror = "sources"\n\n[limits]\nmax_source_bytes = {MIB}\n'
        )
        path = write_manifest(tmp_path / "site", extra=extra)
        capsys.readouterr()
        code = run(path, "bundle", "export", "--out", str(tmp_path / "site.tar"))
        sent = server.bytes_sent("endless.tar.gz")
    err = capsys.readouterr().err
    assert code == 1, err
    assert "error[transfer-too-large]" in err and "([limits] max_source_bytes)" in err
    assert "Traceback" not in err
    assert sent < 16 * MIB
    assert not (tmp_path / "site.tar").exists()
