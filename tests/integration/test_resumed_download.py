"""An apply stopped in the middle of a download keeps the bytes it received; the next one asks
a real nginx for the rest with a Range request, hashes the whole file, and installs.

The first apply reads the mirror through nginx's rate-limited ``/slow/`` location, and is
stopped (Ctrl-C's SIGINT, or SIGKILL) once its partial file holds some bytes; the next
apply reads the same files at full speed. Byte counts come from nginx's access log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from nginx_harness import NginxServer
from support import run_subprocess, write_manifest
from test_fixture_install import check_hello_works

GCC_RUNTIME_BYTES = 9_566_481  # the large tarball of the fixture
KEPT_AT_LEAST = 200_000  # bytes in the partial file before the first apply is stopped
CACHE_TOML = '\n[[cache]]\nroot = "cache"\n'


def _partials(tmp_path: Path, *, cache: bool) -> list[Path]:
    folder = tmp_path / ("cache/partial" if cache else "opt/.reconcile/partial")
    return sorted(folder.glob("*.partial")) if folder.is_dir() else []


def _stopped_apply(tmp_path: Path, server: NginxServer, signum: int, *, cache: bool) -> Path:
    """Start an apply over ``/slow/``, stop it with ``signum`` once the gcc-runtime tarball
    is partly downloaded; the partial file it left."""
    extra = CACHE_TOML if cache else ""
    manifest = write_manifest(tmp_path, mirror=server.url + "/slow", extra=extra)
    process = subprocess.Popen(
        [sys.executable, "-m", "reconcile", "-m", str(manifest), "apply", "--yes"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            found = _partials(tmp_path, cache=cache)
            if any(p.stat().st_size >= KEPT_AT_LEAST for p in found):
                break
            assert process.poll() is None, process.communicate()
            time.sleep(0.05)
        else:
            pytest.fail("the download never started")
        process.send_signal(signum)
        _out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == (130 if signum == signal.SIGINT else -signal.SIGKILL), err
    assert "Traceback" not in err.decode()
    [partial] = _partials(tmp_path, cache=cache)
    assert 0 < partial.stat().st_size < GCC_RUNTIME_BYTES
    deadline = time.monotonic() + 30
    while not _gcc_runtime_gets(server) and time.monotonic() < deadline:
        time.sleep(0.1)  # nginx logs the cut request once it notices the client is gone
    return partial


def _gcc_runtime_gets(server: NginxServer) -> list[dict[str, Any]]:
    return [
        e
        for e in server.access_log_entries()
        if "gcc-runtime" in str(e["uri"])
        and str(e["uri"]).endswith(".spack")
        and e["method"] == "GET"
    ]


@pytest.mark.parametrize(
    ("signum", "cache"),
    [(signal.SIGINT, True), (signal.SIGKILL, False)],
    ids=["ctrl-c-cache-root", "sigkill-no-cache-root"],
)
def test_a_stopped_download_is_resumed_with_a_range_request(
    tmp_path: Path, nginx_mirror: NginxServer, signum: int, cache: bool
) -> None:
    partial = _stopped_apply(tmp_path, nginx_mirror, signum, cache=cache)
    kept = partial.stat().st_size
    first = _gcc_runtime_gets(nginx_mirror)
    assert [e["status"] for e in first] == [200]
    sent_before = first[0]["body_bytes_sent"]
    nginx_mirror.clear_access_log()

    manifest = write_manifest(tmp_path, mirror=nginx_mirror.url, extra=CACHE_TOML if cache else "")
    again = run_subprocess(manifest, "apply", "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    [resumed] = _gcc_runtime_gets(nginx_mirror)
    assert resumed["status"] == 206
    assert resumed["range"] == f"bytes={kept}-"
    assert resumed["body_bytes_sent"] == GCC_RUNTIME_BYTES - kept
    total = sent_before + resumed["body_bytes_sent"]
    # what nginx sent before the stop but never reached the partial file (socket buffers)
    overshoot = sent_before - kept
    assert 0 <= overshoot < 2 << 20, (sent_before, kept)
    print(
        f"\nstopped by {signal.Signals(signum).name}: {kept} bytes kept, nginx sent "
        f"{sent_before} before the stop and {resumed['body_bytes_sent']} after "
        f"(206 for bytes={kept}-); {total} in all for a {GCC_RUNTIME_BYTES}-byte tarball"
    )
    assert "resumed the download of gcc-runtime" in again.stdout + again.stderr
    check_hello_works(tmp_path / "opt")
    assert _partials(tmp_path, cache=cache) == []  # used, then removed


def test_a_tampered_partial_download_is_caught_and_fetched_again(
    tmp_path: Path, nginx_mirror: NginxServer
) -> None:
    partial = _stopped_apply(tmp_path, nginx_mirror, signal.SIGKILL, cache=True)
    kept = partial.stat().st_size
    with partial.open("r+b") as stream:  # a co-tenant rewrites the first bytes
        stream.write(b"\0" * 4096)
    nginx_mirror.clear_access_log()

    manifest = write_manifest(tmp_path, mirror=nginx_mirror.url, extra=CACHE_TOML)
    again = run_subprocess(manifest, "apply", "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    gets = _gcc_runtime_gets(nginx_mirror)
    assert [(e["status"], e["range"]) for e in gets] == [(206, f"bytes={kept}-"), (200, None)]
    assert gets[1]["body_bytes_sent"] == GCC_RUNTIME_BYTES
    assert "do not make its signed sha256; fetching it again" in again.stdout + again.stderr
    check_hello_works(tmp_path / "opt")
    assert _partials(tmp_path, cache=True) == []
