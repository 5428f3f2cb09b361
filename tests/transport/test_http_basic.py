"""Reading, sizing and downloading fixture files from a real nginx, byte for byte."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import GREETLIB_HASH, SIGNED_CACHE
from http_mirror_support import (
    BIG_TARBALL,
    BIG_TARBALL_SHA256,
    BIG_TARBALL_SIZE,
    HELLO_SIG,
    INDEX,
    SPEC_PREFIX,
    fresh,
    root_of,
    served_signed_cache,
    transport,
)
from nginx_harness import NginxServer

from reconcile import __version__
from reconcile.errors import NotFoundError, TransportError
from reconcile.transport.registry import MirrorEndpoint, TransportPool


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxServer]:
    with served_signed_cache(tmp_path_factory.mktemp("http-basic")) as server:
        yield server


@pytest.fixture
def server(shared_server: NginxServer) -> NginxServer:
    return fresh(shared_server)


@pytest.mark.parametrize("name", [INDEX, HELLO_SIG, "build_cache/_pgp/index.json"])
def test_read_bytes_is_byte_exact(server: NginxServer, name: str) -> None:
    http = transport(server.url)
    assert http.read_bytes(f"{server.url}/{name}") == (SIGNED_CACHE / name).read_bytes()


def test_size_of_fixture_files(server: NginxServer) -> None:
    http = transport(server.url)
    for name in (INDEX, BIG_TARBALL):
        assert http.size(f"{server.url}/{name}") == (SIGNED_CACHE / name).stat().st_size
    assert [e["method"] for e in server.access_log_entries()] == ["HEAD", "HEAD"]
    assert http.bytes_received == 0


def test_size_falls_back_to_a_one_byte_range_when_head_is_refused(server: NginxServer) -> None:
    http = transport(server.url)
    assert http.size(f"{server.url}/nohead/{BIG_TARBALL}") == BIG_TARBALL_SIZE
    head, ranged = server.access_log_entries()
    assert (head["method"], head["status"]) == ("HEAD", 405)
    assert (ranged["method"], ranged["status"], ranged["range"]) == ("GET", 206, "bytes=0-0")
    assert ranged["body_bytes_sent"] == 1
    assert http.bytes_received == server.bytes_sent() == 1 + head["body_bytes_sent"]


def test_download_big_tarball_with_progress(server: NginxServer, tmp_path: Path) -> None:
    http = transport(server.url)
    dest = tmp_path / "gcc-runtime.spack"
    reported: list[int] = []
    written = http.download(f"{server.url}/{BIG_TARBALL}", dest, progress=reported.append)
    assert written == BIG_TARBALL_SIZE == dest.stat().st_size
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == BIG_TARBALL_SHA256
    assert sum(reported) == BIG_TARBALL_SIZE
    assert max(reported) <= 1 << 20  # streamed in chunks of at most 1 MiB
    assert len(reported) >= BIG_TARBALL_SIZE // (1 << 20)


def test_bytes_received_matches_what_nginx_sent(server: NginxServer, tmp_path: Path) -> None:
    http = transport(server.url)
    http.read_bytes(f"{server.url}/{INDEX}")
    http.download(f"{server.url}/{BIG_TARBALL}", tmp_path / "blob")
    with pytest.raises(NotFoundError):
        http.read_bytes(f"{server.url}/build_cache/missing.json")  # a 404 page is bytes too
    http.size(f"{server.url}/{HELLO_SIG}")
    assert http.bytes_received == server.bytes_sent()
    assert server.bytes_sent() > BIG_TARBALL_SIZE


def test_one_connection_is_reused_and_user_agent_is_sent(server: NginxServer) -> None:
    http = transport(server.url)
    for _ in range(3):
        http.read_bytes(f"{server.url}/{INDEX}")
    entries = server.access_log_entries()
    assert {e["user_agent"] for e in entries} == {f"reconcile/{__version__}"}
    assert len({e["connection"] for e in entries}) == 1
    http.close()


def test_missing_file_is_not_found_without_retries(server: NginxServer, tmp_path: Path) -> None:
    http = transport(server.url)
    url = f"{server.url}/build_cache/no-such-spec.spec.json.sig"
    for operation in (
        lambda: http.read_bytes(url),
        lambda: http.size(url),
        lambda: http.download(url, tmp_path / "x"),
    ):
        with pytest.raises(NotFoundError) as caught:
            operation()
        assert url in caught.value.message
        assert "404" in caught.value.message
        assert "mirror 'team'" in caught.value.message
    assert [e["status"] for e in server.access_log_entries()] == [404, 404, 404]


def test_other_client_errors_are_reported_once(server: NginxServer) -> None:
    # a folder without an index answers 403 from nginx: access denied, not retried
    http = transport(server.url)
    with pytest.raises(TransportError) as caught:
        http.read_bytes(f"{server.url}/build_cache/")
    assert "403" in caught.value.message
    assert caught.value.hint is not None and "RECONCILE_MIRROR_TEAM_USERNAME" in caught.value.hint
    assert len(server.access_log_entries()) == 1


def test_pool_hands_out_one_http_transport_per_mirror(server: NginxServer) -> None:
    mirror = MirrorEndpoint(name="team", url=server.url)
    with TransportPool([mirror]) as pool:
        assert pool.read_bytes(f"{server.url}/{INDEX}") == (SIGNED_CACHE / INDEX).read_bytes()
        assert pool.for_url(f"{server.url}/{INDEX}") is pool.for_url(f"{server.url}/{HELLO_SIG}")
        assert pool.bytes_by_mirror() == {"team": (SIGNED_CACHE / INDEX).stat().st_size}


def test_download_into_a_missing_folder_is_a_clear_error(
    server: NginxServer, tmp_path: Path
) -> None:
    http = transport(server.url)
    with pytest.raises(TransportError) as caught:
        http.download(f"{server.url}/{INDEX}", tmp_path / "absent" / "index.json")
    assert "cannot write" in caught.value.message


def test_changed_file_is_served_fresh(server: NginxServer) -> None:
    target = root_of(server) / "scratch.txt"
    target.write_bytes(b"one")
    http = transport(server.url)
    assert http.read_bytes(f"{server.url}/scratch.txt") == b"one"
    target.write_bytes(b"two, longer")
    assert http.read_bytes(f"{server.url}/scratch.txt") == b"two, longer"


def test_redirects_on_the_mirror_are_followed(server: NginxServer) -> None:
    http = transport(server.url)
    assert http.read_bytes(f"{server.url}/moved/{INDEX}") == (SIGNED_CACHE / INDEX).read_bytes()
    assert [(e["status"], e["uri"]) for e in server.access_log_entries()] == [
        (302, f"/moved/{INDEX}"),
        (200, f"/{INDEX}"),
    ]
    assert http.bytes_received == server.bytes_sent()


def test_rate_limited_location_still_serves_exact_bytes(
    server: NginxServer, tmp_path: Path
) -> None:
    name = f"build_cache/{SPEC_PREFIX}-greetlib-2.1-{GREETLIB_HASH}.spec.json.sig"
    http = transport(server.url)
    http.download(f"{server.url}/slow/{name}", tmp_path / "sig")
    assert (tmp_path / "sig").read_bytes() == (SIGNED_CACHE / name).read_bytes()
