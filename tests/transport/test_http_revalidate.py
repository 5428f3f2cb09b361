"""Index files revalidated with conditional requests: a 304 costs no body bytes, a change
is fetched whole, a local copy that no longer matches its record is never vouched for."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SIGNED_CACHE
from http_mirror_support import INDEX, fresh, root_of, served_signed_cache, transport
from nginx_harness import NginxServer

from reconcile.errors import NotFoundError
from reconcile.transport.file import FileTransport
from reconcile.transport.validators import meta_path


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxServer]:
    with served_signed_cache(tmp_path_factory.mktemp("http-revalidate")) as server:
        yield server


@pytest.fixture
def server(shared_server: NginxServer) -> NginxServer:
    return fresh(shared_server)


def test_second_read_is_a_304_with_identical_bytes(server: NginxServer, tmp_path: Path) -> None:
    url = f"{server.url}/etag/{INDEX}"
    copy = tmp_path / "cache" / "index.json"
    http = transport(server.url)
    first = http.read_revalidated(url, copy)
    assert first == (SIGNED_CACHE / INDEX).read_bytes() == copy.read_bytes()
    record = json.loads(meta_path(copy).read_text())
    assert record["url"] == url and record["etag"] and record["last_modified"]
    received = http.bytes_received

    second = http.read_revalidated(url, copy)
    assert second == first
    assert http.bytes_received == received  # a 304 has no body
    fetch, revalidate = server.access_log_entries()
    assert (fetch["status"], fetch["if_none_match"]) == (200, None)
    assert revalidate["status"] == 304
    assert revalidate["body_bytes_sent"] == 0
    assert revalidate["if_none_match"] == record["etag"]
    assert revalidate["if_modified_since"] == record["last_modified"]
    assert http.bytes_received == server.bytes_sent()


def test_changed_index_is_fetched_and_replaces_the_copy(
    server: NginxServer, tmp_path: Path
) -> None:
    served = root_of(server) / "build_cache" / "changing-index.json"
    served.write_bytes(b'{"version": 1}')
    url = f"{server.url}/build_cache/changing-index.json"
    copy = tmp_path / "index.json"
    http = transport(server.url)
    assert http.read_revalidated(url, copy) == b'{"version": 1}'

    served.write_bytes(b'{"version": 2, "more": true}')
    later = served.stat().st_mtime + 60  # nginx's validators have 1 s resolution
    os.utime(served, (later, later))
    assert http.read_revalidated(url, copy) == b'{"version": 2, "more": true}'
    assert copy.read_bytes() == b'{"version": 2, "more": true}'
    assert [e["status"] for e in server.access_log_entries()] == [200, 200]
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_tampered_local_copy_is_not_revalidated(server: NginxServer, tmp_path: Path) -> None:
    url = f"{server.url}/{INDEX}"
    copy = tmp_path / "index.json"
    http = transport(server.url)
    genuine = http.read_revalidated(url, copy)
    copy.write_bytes(genuine.replace(b"hello-app", b"hellO-app"))  # same size, other bytes
    assert http.read_revalidated(url, copy) == genuine
    assert copy.read_bytes() == genuine
    _first, second = server.access_log_entries()
    assert second["if_none_match"] is None and second["status"] == 200


@pytest.mark.parametrize("damage", ["delete-meta", "garbage-meta", "other-url", "delete-copy"])
def test_unusable_record_means_a_plain_fetch(
    server: NginxServer, tmp_path: Path, damage: str
) -> None:
    url = f"{server.url}/{INDEX}"
    copy = tmp_path / "index.json"
    http = transport(server.url)
    http.read_revalidated(url, copy)
    meta = meta_path(copy)
    if damage == "delete-meta":
        meta.unlink()
    elif damage == "garbage-meta":
        meta.write_text("{not json")
    elif damage == "other-url":
        record = json.loads(meta.read_text())
        meta.write_text(json.dumps({**record, "url": f"{server.url}/elsewhere/index.json"}))
    else:
        copy.unlink()
    assert http.read_revalidated(url, copy) == (SIGNED_CACHE / INDEX).read_bytes()
    assert [e["status"] for e in server.access_log_entries()] == [200, 200]
    assert json.loads(meta.read_text())["url"] == url


def test_missing_index_is_not_found_and_keeps_nothing(server: NginxServer, tmp_path: Path) -> None:
    copy = tmp_path / "index.json"
    with pytest.raises(NotFoundError):
        transport(server.url).read_revalidated(f"{server.url}/build_cache/none.json", copy)
    assert not copy.exists() and not meta_path(copy).exists()


def test_file_transport_reads_without_a_copy(tmp_path: Path) -> None:
    url = (SIGNED_CACHE / INDEX).as_uri()
    copy = tmp_path / "index.json"
    assert FileTransport().read_revalidated(url, copy) == (SIGNED_CACHE / INDEX).read_bytes()
    assert not copy.exists()
