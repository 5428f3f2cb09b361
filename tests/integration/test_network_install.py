"""Installing over HTTP from a real nginx, with cache roots: the wiped-CI-runner scenario.

Bytes are counted from nginx's access log, not from reconcile's own report.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from pathlib import Path

import pytest
from conftest import GCC_RUNTIME_HASH
from nginx_harness import CuttingProxy, NginxServer, cutting_proxy, free_port
from support import installed_prefix, run, run_hello, run_subprocess, write_manifest
from test_fixture_install import check_hello_works

TARBALL_BYTES = 9_566_481 + 9_708 + 9_861
CACHE_TOML = '\n[[cache]]\nroot = "cache"\n'


def tarball_requests(server: NginxServer, method: str | None = "GET") -> list[dict[str, object]]:
    """Requests for tarballs (GETs by default; ``method=None`` for HEADs too)."""
    return [
        e
        for e in server.access_log_entries()
        if str(e["uri"]).endswith(".spack") and method in (None, e["method"])
    ]


def apply_json(manifest: Path, capsys: pytest.CaptureFixture[str], *args: str) -> dict:  # type: ignore[type-arg]
    capsys.readouterr()
    assert run(manifest, "apply", "--yes", "--json", *args) == 0
    return json.loads(capsys.readouterr().out)


def test_cold_then_warm_install_downloads_metadata_only(
    tmp_path: Path, nginx_mirror: NginxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path, mirror=nginx_mirror.url, extra=CACHE_TOML)
    cold = apply_json(manifest, capsys)
    cold_bytes = nginx_mirror.bytes_sent()
    assert len(tarball_requests(nginx_mirror)) == 3
    assert cold_bytes >= TARBALL_BYTES
    assert cold["mirrors"]["team"]["bytes_downloaded"] == cold_bytes
    assert not any(s["from_cache"] for s in cold["specs"])
    check_hello_works(tmp_path / "opt")

    shutil.rmtree(tmp_path / "opt")  # the CI runner wipes its install tree
    nginx_mirror.clear_access_log()
    warm = apply_json(manifest, capsys)
    warm_bytes = nginx_mirror.bytes_sent()
    assert tarball_requests(nginx_mirror, method=None) == []  # not even a HEAD
    assert 0 < warm_bytes < 20_000  # index and signed spec metadata, fetched fresh
    assert all(s["from_cache"] for s in warm["specs"])
    assert warm["mirrors"]["team"]["bytes_from_cache"] == TARBALL_BYTES
    assert warm["bytes_fetched"] == 0
    signed = [e for e in nginx_mirror.access_log_entries() if str(e["uri"]).endswith(".sig")]
    assert len(signed) == 3  # signatures never come from the cache
    check_hello_works(tmp_path / "opt")


def test_corrupt_cache_blob_is_evicted_and_fetched_again(
    tmp_path: Path, nginx_mirror: NginxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path, mirror=nginx_mirror.url, extra=CACHE_TOML)
    apply_json(manifest, capsys)
    blob = next(
        (tmp_path / "cache").rglob(
            "0448526af2bad1701bc3b7e009f0890e47285e5c4c34da04ad21b7e45eb35fdf"
        )
    )
    data = bytearray(blob.read_bytes())
    data[1000] ^= 0xFF
    blob.write_bytes(bytes(data))
    shutil.rmtree(tmp_path / "opt")
    nginx_mirror.clear_access_log()
    capsys.readouterr()
    assert run(manifest, "apply", "--yes") == 0
    out = capsys.readouterr().out
    assert "evicted" in out and "gcc-runtime@12.2.0/75b4t5r" in out
    fetched = [str(e["uri"]) for e in tarball_requests(nginx_mirror)]
    assert len(fetched) == 1 and GCC_RUNTIME_HASH in fetched[0]
    check_hello_works(tmp_path / "opt")
    assert blob.read_bytes() != bytes(data)  # the good copy replaced the bad one


def test_server_error_then_success(
    tmp_path: Path, nginx_mirror: NginxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path, mirror=f"{nginx_mirror.url}/flaky")
    nginx_mirror.set_flaky(True)
    timer = threading.Timer(1.5, nginx_mirror.set_flaky, args=(False,))
    timer.start()
    try:
        assert run(manifest, "apply", "--yes") == 0
    finally:
        timer.cancel()
    statuses = [e["status"] for e in nginx_mirror.access_log_entries()]
    assert 500 in statuses and statuses[-1] in (200, 206)
    check_hello_works(tmp_path / "opt")


def test_cut_download_is_resumed(
    tmp_path: Path, nginx_mirror: NginxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every connection is cut after 5 MB, whichever one the tarball travels on (metadata is
    # fetched by several workers, so the tarball's connection is not always among the first);
    # only the 9.5 MB tarball's connection gets that far.
    with cutting_proxy(
        nginx_mirror.port, cut_after_bytes=5_000_000, cuts=CuttingProxy.MAX_CONNECTIONS
    ) as proxy:
        manifest = write_manifest(tmp_path, mirror=proxy.url)
        assert run(manifest, "apply", "--yes") == 0
        assert proxy.cuts_done == 1
    gcc = [e for e in tarball_requests(nginx_mirror) if GCC_RUNTIME_HASH in str(e["uri"])]
    resumed = [e for e in gcc if e["status"] == 206]
    assert resumed and resumed[0]["range"].startswith("bytes=")
    assert sum(int(e["body_bytes_sent"]) for e in gcc) < 1.3 * 9_566_481
    check_hello_works(tmp_path / "opt")


def test_dead_first_mirror_falls_back_once(tmp_path: Path, nginx_mirror: NginxServer) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    manifest = write_manifest(tmp_path, mirror=nginx_mirror.url)
    text = manifest.read_text().replace(
        "[[mirror]]", f'[[mirror]]\nname = "dead"\nurl = "{dead}"\n\n[[mirror]]', 1
    )
    manifest.write_text(text)
    done = run_subprocess(manifest, "apply", "--yes", env={"RECONCILE_HTTP_CONNECT_TIMEOUT": "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("mirror:dead") == 1  # reported once, not once per spec
    check_hello_works(tmp_path / "opt")


def test_credentials_in_url_are_never_printed(tmp_path: Path, signed_cache_copy: Path) -> None:
    from nginx_harness import nginx_server

    with nginx_server(signed_cache_copy, tmp=tmp_path / "tls", tls=True) as server:
        https = server.url.replace("http://", "https://")
        base = https.replace("https://", f"https://{server.auth_user}:{server.auth_password}@")
        env = {"RECONCILE_CA_BUNDLE": str(server.ca_bundle)}
        manifest = write_manifest(tmp_path, mirror=f"{base}/auth")
        plan = run_subprocess(manifest, "plan", "--json", env=env)
        assert plan.returncode == 0, plan.stderr
        done = run_subprocess(manifest, "apply", "--yes", env=env)
        assert done.returncode == 0, done.stderr
        for text in (plan.stdout, plan.stderr, done.stdout, done.stderr):
            assert server.auth_password not in text
        assert "***" in plan.stdout
        for record in (tmp_path / "opt" / ".reconcile" / "records").glob("*.json"):
            assert server.auth_password not in record.read_text()
        bad = write_manifest(
            tmp_path / "bad", mirror=f"{base.replace(server.auth_password, 'wrong-pass')}/auth"
        )
        refused = run_subprocess(bad, "plan", env=env)
        assert refused.returncode == 1
        assert "wrong-pass" not in refused.stdout + refused.stderr
    run_hello(installed_prefix(tmp_path / "opt", "hello-app"))


def test_tampered_index_copy_in_the_cache_is_replaced(
    tmp_path: Path, nginx_mirror: NginxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A kept index copy that no longer matches index.json.hash is fetched again in full."""
    manifest = write_manifest(tmp_path, mirror=nginx_mirror.url, extra=CACHE_TOML)
    apply_json(manifest, capsys)
    copies = list((tmp_path / "cache").rglob("index.json"))
    assert len(copies) == 1
    # a co-tenant of the cache root rewrites the copy and its validators consistently
    tampered = copies[0].read_bytes().replace(b'"hello-app"', b'"hello-evil"')
    copies[0].write_bytes(tampered)
    meta_path = copies[0].with_name("index.json.meta.json")
    meta = json.loads(meta_path.read_text())
    meta.update(size=len(tampered), sha256=hashlib.sha256(tampered).hexdigest())
    meta_path.write_text(json.dumps(meta))
    shutil.rmtree(tmp_path / "opt")
    nginx_mirror.clear_access_log()
    apply_json(manifest, capsys)
    index_requests = [
        e for e in nginx_mirror.access_log_entries() if str(e["uri"]).endswith("index.json")
    ]
    assert [e["status"] for e in index_requests] == [304, 200]
    check_hello_works(tmp_path / "opt")
