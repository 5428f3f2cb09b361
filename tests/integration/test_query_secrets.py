"""Secrets in query strings (``?token=...``, signed URLs) are masked like userinfo secrets:
never in output, saved plans, install records or cache records. A real nginx serves files
under /token/ only to requests that carry the token, so a run that works proves the real URL
was used while only the masked one was shown."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from nginx_harness import QUERY_TOKEN, NginxServer, nginx_server
from support import run_subprocess, write_manifest

from reconcile.cache.roots import strip_credentials
from reconcile.redact import mask_credentials

GREETLIB_SHA256 = "fa2d16c7c3e49771597f3368c60265178be903aa6705b848ae6a82ef262e98df"
GREETLIB_ARCHIVE = f"_source-cache/archive/fa/{GREETLIB_SHA256}.tar.gz"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://h/x?token=abc", "https://h/x?token=***"),
        ("https://h/x?a=1&b=2#frag", "https://h/x?a=***&b=***#frag"),
        ("https://h/x?bare-token", "https://h/x?***"),
        ("https://u:p@h:8443/x?sig=s", "https://u:***@h:8443/x?sig=***"),
        ("https://tok@h/x", "https://***@h/x"),
        ("s3://bucket/k?X-Amz-Signature=zz", "s3://bucket/k?X-Amz-Signature=***"),
        ("https://h/x", "https://h/x"),
        ("https://h/x?", "https://h/x?"),
        ("/plain/path", "/plain/path"),
        # malformed: nothing after the scheme is shown, and no traceback
        ("https://u:p@[::1/x?token=abc", "https://***"),
    ],
)
def test_every_query_value_is_masked(url: str, shown: str) -> None:
    assert mask_credentials(url) == shown
    assert "abc" not in strip_credentials(url)


@pytest.fixture
def token_server(tmp_path: Path) -> Iterator[NginxServer]:
    """https nginx serving the Spack-made source mirror fixture."""
    from conftest import FIXTURES

    served = tmp_path / "served"
    served.mkdir()
    archive = FIXTURES / "spack-source-mirror" / GREETLIB_ARCHIVE
    target = served / GREETLIB_ARCHIVE
    target.parent.mkdir(parents=True)
    target.write_bytes(archive.read_bytes())
    with nginx_server(served, tmp=tmp_path / "nginx", tls=True) as server:
        yield server


def _source_manifest(folder: Path, url: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "reconcile.toml"
    path.write_text(
        "version = 1\n\n"
        '[[mirror]]\nname = "sources"\nurl = "sources"\n\n'
        '[[source]]\nname = "greetlib"\nversion = "2.1"\n'
        f'url = "{url}"\nsha256 = "{GREETLIB_SHA256}"\nmirror = "sources"\n'
    )
    return path


def _everything_written(folder: Path) -> str:
    """Every file under ``folder`` that is text (plans, records, cache records, ...)."""
    texts = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if b"\0" not in data:
                texts.append(data.decode("utf-8", "replace"))
    return "\n".join(texts)


def test_a_source_fetched_with_a_query_token_never_shows_it(
    tmp_path: Path, token_server: NginxServer
) -> None:
    env = {"RECONCILE_CA_BUNDLE": str(token_server.ca_bundle)}
    url = f"{token_server.url}/token/{GREETLIB_ARCHIVE}?token={QUERY_TOKEN}"
    manifest = _source_manifest(tmp_path / "work", url)
    shown: list[str] = []
    plan = run_subprocess(manifest, "plan", "--json", env=env)
    assert plan.returncode == 0, plan.stderr
    assert "?token=***" in plan.stdout
    assert json.loads(plan.stdout)  # still a valid document
    saved = tmp_path / "work" / "plan.json"
    for args in (("plan",), ("plan", "--out", str(saved)), ("validate",)):
        done = run_subprocess(manifest, *args, env=env)
        assert done.returncode == 0, done.stderr
        shown += [done.stdout, done.stderr]
    applied = run_subprocess(manifest, "apply", "--yes", env=env)
    assert applied.returncode == 0, applied.stderr  # the real URL (with the token) was used
    shown += [plan.stdout, plan.stderr, applied.stdout, applied.stderr]
    copy = tmp_path / "work" / "sources" / GREETLIB_ARCHIVE
    assert copy.read_bytes() == (token_server.tmp.parent / "served" / GREETLIB_ARCHIVE).read_bytes()
    for text in shown:
        assert QUERY_TOKEN not in text
    assert QUERY_TOKEN not in saved.read_text()
    written = _everything_written(tmp_path / "work")
    assert QUERY_TOKEN not in written.replace(manifest.read_text(), "")


def test_a_failing_source_url_is_reported_masked(tmp_path: Path, token_server: NginxServer) -> None:
    env = {"RECONCILE_CA_BUNDLE": str(token_server.ca_bundle)}
    url = f"{token_server.url}/token/missing/greetlib-2.1.tar.gz?token={QUERY_TOKEN}"
    manifest = _source_manifest(tmp_path / "work", url)
    done = run_subprocess(manifest, "apply", "--yes", env=env)
    assert done.returncode == 1
    assert "error[" in done.stderr and "Traceback" not in done.stderr
    assert "?token=***" in done.stdout + done.stderr
    assert QUERY_TOKEN not in done.stdout + done.stderr


def test_a_mirror_url_with_a_query_token_is_never_shown(
    tmp_path: Path, nginx_mirror: NginxServer
) -> None:
    """Whatever the mirror answers, the plan, its JSON, the saved plan and any cache record
    show the URL masked."""
    mirror = f"{nginx_mirror.url}/token?token={QUERY_TOKEN}"
    manifest = write_manifest(
        tmp_path / "work", mirror=mirror, extra='\n[[cache]]\nroot = "cache"\n'
    )
    saved = tmp_path / "work" / "plan.json"
    outputs = []
    for args in (("plan",), ("plan", "--json"), ("plan", "--out", str(saved)), ("apply", "-y")):
        done = run_subprocess(manifest, *args)
        assert "Traceback" not in done.stderr
        outputs += [done.stdout, done.stderr]
    assert any("?token=***" in text for text in outputs)
    for text in outputs:
        assert QUERY_TOKEN not in text
    written = _everything_written(tmp_path / "work")
    assert QUERY_TOKEN not in written.replace(manifest.read_text(), "")


def test_manifest_errors_mask_the_query_of_a_bad_url(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, mirror=f"https://h:99999/m?token={QUERY_TOKEN}")
    done = run_subprocess(manifest, "validate")
    assert done.returncode == 1
    assert "error[invalid-manifest]" in done.stderr
    assert QUERY_TOKEN not in done.stdout + done.stderr


def test_cache_list_masks_urls_that_older_records_kept(tmp_path: Path) -> None:
    """A record written before query values were masked still shows no token."""
    import hashlib

    from reconcile.cache.layout import blob_path, record_path

    data = b"a cached tarball"
    sha256 = hashlib.sha256(data).hexdigest()
    blob = blob_path(tmp_path / "cache", sha256)
    blob.parent.mkdir(parents=True)
    blob.write_bytes(data)
    record = {
        "format": 1,
        "sha256": sha256,
        "size": len(data),
        "urls": [f"https://mirror.example.org/x.spack?token={QUERY_TOKEN}"],
        "specs": ["hello-app@3.0/d7r6xmz"],
        "stored_at": "2026-01-01T00:00:00+00:00",
        "last_used": "2026-01-01T00:00:00+00:00",
    }
    record_path(blob).write_text(json.dumps(record))
    manifest = tmp_path / "reconcile.toml"
    manifest.write_text('version = 1\n[[cache]]\nroot = "cache"\n')
    for args in (("cache", "list"), ("cache", "list", "--json")):
        done = run_subprocess(manifest, *args)
        assert done.returncode == 0, done.stderr
        assert "x.spack?token=***" in done.stdout
        assert QUERY_TOKEN not in done.stdout + done.stderr
