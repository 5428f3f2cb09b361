"""Downloads cut mid-stream by a real TCP proxy resume with a Range request, or start over
when the file changed in between."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_mirror_support import (
    BIG_TARBALL,
    BIG_TARBALL_SHA256,
    BIG_TARBALL_SIZE,
    INDEX,
    fresh,
    root_of,
    served_signed_cache,
    transport,
)
from nginx_harness import NginxServer, cutting_proxy

from reconcile.errors import TransportError

CUT_AFTER = 2_000_000  # response bytes (headers included) before the proxy cuts


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxServer]:
    with served_signed_cache(tmp_path_factory.mktemp("http-resume")) as server:
        yield server


@pytest.fixture
def server(shared_server: NginxServer) -> NginxServer:
    return fresh(shared_server)


def test_cut_download_resumes_with_a_range_request(server: NginxServer, tmp_path: Path) -> None:
    dest = tmp_path / "gcc-runtime.spack"
    reported: list[int] = []
    with cutting_proxy(server.port, CUT_AFTER, cuts=1) as proxy:
        http = transport(proxy.url)
        written = http.download(f"{proxy.url}/{BIG_TARBALL}", dest, progress=reported.append)
        assert proxy.cuts_done == 1 and proxy.connections == 2
    assert written == BIG_TARBALL_SIZE
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == BIG_TARBALL_SHA256

    first, second = server.wait_for_entries(2)
    assert (first["status"], first["range"]) == (200, None)
    assert first["body_bytes_sent"] < BIG_TARBALL_SIZE  # nginx saw the cut
    received_before_cut = BIG_TARBALL_SIZE - (second["body_bytes_sent"])
    assert 0 < received_before_cut < CUT_AFTER
    assert second["status"] == 206
    assert second["range"] == f"bytes={received_before_cut}-"
    assert second["if_range"] is not None  # the ETag of the first answer
    assert second["content_range"] == (
        f"bytes {received_before_cut}-{BIG_TARBALL_SIZE - 1}/{BIG_TARBALL_SIZE}"
    )
    # about one file over the wire, not two: only what sat in socket buffers at the cut
    assert server.bytes_sent() < 1.3 * BIG_TARBALL_SIZE
    # every byte that reached the client is counted, and reported as progress
    assert http.bytes_received == sum(reported) == BIG_TARBALL_SIZE


def test_read_bytes_resumes_too(server: NginxServer) -> None:
    with cutting_proxy(server.port, 1_000_000, cuts=2) as proxy:
        data = transport(proxy.url).read_bytes(f"{proxy.url}/{BIG_TARBALL}")
    assert hashlib.sha256(data).hexdigest() == BIG_TARBALL_SHA256
    assert [e["status"] for e in server.wait_for_entries(3)] == [200, 206, 206]


def test_file_changed_between_cut_and_resume_is_fetched_whole(
    server: NginxServer, tmp_path: Path
) -> None:
    served = root_of(server) / "changing.bin"
    old = bytes(range(256)) * 8192  # 2 MiB
    new = bytes(reversed(range(256))) * 8192  # same size: only the validators tell
    served.write_bytes(old)
    old_mtime = served.stat().st_mtime

    def replace_file_while_waiting(_seconds: float) -> None:
        served.write_bytes(new)
        os.utime(served, (old_mtime + 60, old_mtime + 60))  # nginx's ETag has 1 s resolution

    dest = tmp_path / "changing.bin"
    with cutting_proxy(server.port, 500_000, cuts=1) as proxy:
        http = transport(proxy.url, sleep=replace_file_while_waiting)
        written = http.download(f"{proxy.url}/changing.bin", dest)
    assert written == len(new)
    assert dest.read_bytes() == new  # never old bytes spliced with new ones
    first, second = server.wait_for_entries(2)
    assert second["range"] is not None
    assert second["if_range"] == first["etag"] != second["etag"]
    assert second["status"] == 200  # If-Range did not match: nginx sent the whole new file
    assert second["body_bytes_sent"] == len(new)


def test_a_connection_cut_every_time_gives_up_with_a_clear_error(
    server: NginxServer, tmp_path: Path
) -> None:
    with cutting_proxy(server.port, 300_000, cuts=100) as proxy:
        http = transport(proxy.url, attempts=3)
        with pytest.raises(TransportError) as caught:
            http.download(f"{proxy.url}/{BIG_TARBALL}", tmp_path / "blob")
    message = caught.value.message
    assert "gave up after 3 attempts" in message
    assert f"of {BIG_TARBALL_SIZE} bytes received" in message
    assert proxy.url in message
    statuses = [e["status"] for e in server.wait_for_entries(3)]
    assert statuses[0] == 200 and statuses[1:] == [206, 206]


def test_small_files_through_the_proxy_are_untouched(server: NginxServer) -> None:
    with cutting_proxy(server.port, 10_000_000, cuts=1) as proxy:
        data = transport(proxy.url).read_bytes(f"{proxy.url}/{INDEX}")
    assert data == (root_of(server) / INDEX).read_bytes()
