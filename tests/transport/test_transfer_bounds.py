"""Every read of a mirror is bounded in bytes and in rate, against a hostile HTTP server and a
real nginx. Limits are low here (kilobytes, a one-second window), so that "gigabytes" and
"hours" cost little; the server counts what it sent, so each test shows the client stopped.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO
from http_mirror_support import BIG_TARBALL, BIG_TARBALL_SIZE, FAST, fresh, served_signed_cache
from nginx_harness import NginxServer

from reconcile.errors import TransportError
from reconcile.limits import Limits
from reconcile.transport.bounds import Cap, RateWatchdog, index_cap, signed_size_cap
from reconcile.transport.file import FileTransport
from reconcile.transport.http import HttpTransport
from reconcile.trust.clearsign import CLEARSIGN_HEADER

sys.path.insert(0, str(REPO / "tests"))
from hostile_server import Misbehave, hostile_server

LOW = Limits(max_metadata_bytes=64 << 10, max_index_bytes=256 << 10, min_transfer_rate=2048)
MIB = 1 << 20


def transport(base: str, **options: object) -> HttpTransport:
    settings = {**FAST, "limits": LOW, "rate_window": 1.0, **options}
    return HttpTransport(base_url=base, **settings)  # type: ignore[arg-type]


def refusal(call: object, *args: object, **kwargs: object) -> TransportError:
    with pytest.raises(TransportError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return caught.value


# -- hostile server --------------------------------------------------------------------------


def test_endless_metadata_stops_at_the_metadata_cap() -> None:
    with hostile_server(rules={"a.spec.json": Misbehave("endless")}) as server:
        error = refusal(transport(server.url).read_bytes, f"{server.url}/a.spec.json")
    assert error.reference == "transfer-too-large"
    assert "max_metadata_bytes" in error.message and "a.spec.json" in error.message
    assert server.bytes_sent("a.spec.json") < 16 * MIB  # stopped, not read forever


def test_endless_tarball_download_stops_one_byte_past_the_signed_size(tmp_path: Path) -> None:
    dest = tmp_path / "t.spack"
    with hostile_server(rules={"t.spack": Misbehave("endless")}) as server:
        client = transport(server.url)
        error = refusal(client.download, f"{server.url}/t.spack", dest, cap=signed_size_cap(5000))
    assert error.reference == "transfer-too-large" and "signed metadata" in error.message
    assert dest.stat().st_size <= 5000  # never more than the signed size on disk


def test_huge_content_length_is_refused_before_the_body(tmp_path: Path) -> None:
    rule = Misbehave("huge_length", length=2 << 30, body=b"x" * 100)
    with hostile_server(rules={"build_cache/index.json": rule}) as server:
        client = transport(server.url)
        url = f"{server.url}/build_cache/index.json"
        error = refusal(client.read_bytes, url, cap=index_cap(LOW))
    assert error.reference == "transfer-too-large"
    assert "announces 2,147,483,648 bytes" in error.message and "max_index_bytes" in error.message


def test_trickle_is_stopped_by_the_rate_watchdog() -> None:
    """One byte every 0.2 s never trips the read timeout (2 s); the rate does."""
    rule = Misbehave("trickle", body=b"x" * 1000, interval=0.2)
    url_path = "build_cache/slow.spec.json"
    with hostile_server(rules={url_path: rule}) as server:
        url = f"{server.url}/{url_path}?token=hunter2"
        error = refusal(transport(server.url).read_bytes, url)
    assert error.reference == "transfer-too-slow"
    assert "min_transfer_rate" in error.message and "slow.spec.json" in error.message
    assert "hunter2" not in error.message + (error.hint or "")
    assert server.bytes_sent(url_path) < 100


def test_fast_enough_transfer_is_not_stopped(tmp_path: Path) -> None:
    data = os.urandom(200 << 10)
    (tmp_path / "ok.bin").write_bytes(data)
    with hostile_server(tmp_path) as server:
        client = transport(server.url)
        assert client.read_bytes(f"{server.url}/ok.bin", cap=Cap(len(data), "test")) == data


def test_signature_that_is_not_clear_signed_is_not_read_to_the_end() -> None:
    """A 32 MiB .sig whose first bytes show it is not clear-signed: a few KiB are read."""
    rule = Misbehave("body", body=b"Z" * MIB, repeat=32)
    with hostile_server(rules={"x.spec.json.sig": rule}) as server:
        client = transport(server.url, limits=Limits())
        data = client.read_bytes(f"{server.url}/x.spec.json.sig", expect_prefix=CLEARSIGN_HEADER)
    assert data.startswith(b"Z") and len(data) < 2 * MIB
    assert server.bytes_sent("x.spec.json.sig") < 8 * MIB


def test_clear_signed_file_is_read_whole(tmp_path: Path) -> None:
    body = CLEARSIGN_HEADER + b"\nHash: SHA256\n\n" + b"text\n" * 5000
    (tmp_path / "x.sig").write_bytes(body)
    with hostile_server(tmp_path) as server:
        data = transport(server.url).read_bytes(
            f"{server.url}/x.sig", expect_prefix=CLEARSIGN_HEADER
        )
    assert data == body


# -- real nginx ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxServer]:
    with served_signed_cache(tmp_path_factory.mktemp("bounds")) as server:
        yield server


def test_nginx_tarball_larger_than_planned_is_refused(nginx: NginxServer, tmp_path: Path) -> None:
    server = fresh(nginx)
    client = HttpTransport(base_url=server.url, **FAST)
    url = f"{server.url}/{BIG_TARBALL}"
    dest = tmp_path / "big.spack"
    error = refusal(client.download, url, dest, cap=signed_size_cap(BIG_TARBALL_SIZE - 1))
    assert error.reference == "transfer-too-large"
    assert not dest.exists() or dest.stat().st_size < BIG_TARBALL_SIZE
    assert client.download(url, dest, cap=signed_size_cap(BIG_TARBALL_SIZE)) == BIG_TARBALL_SIZE


def test_nginx_metadata_over_the_cap_is_refused(nginx: NginxServer) -> None:
    server = fresh(nginx)
    client = HttpTransport(base_url=server.url, limits=Limits(max_metadata_bytes=1000), **FAST)
    error = refusal(client.read_bytes, f"{server.url}/{BIG_TARBALL}")
    assert error.reference == "transfer-too-large" and "max_metadata_bytes" in error.message


# -- other transports and the watchdog itself ------------------------------------------------


def test_file_transport_caps_reads_and_stops_on_a_wrong_prefix(tmp_path: Path) -> None:
    big = tmp_path / "big.sig"
    big.write_bytes(b"Q" * (3 * MIB))
    client = FileTransport()
    client.limits = Limits(max_metadata_bytes=MIB)
    error = refusal(client.read_bytes, big.as_uri())
    assert error.reference == "transfer-too-large"
    assert len(client.read_bytes(big.as_uri(), expect_prefix=CLEARSIGN_HEADER)) <= MIB
    error = refusal(client.download, big.as_uri(), tmp_path / "out", cap=Cap(1000, "test"))
    assert error.reference == "transfer-too-large"


def test_watchdog_judges_only_whole_windows() -> None:
    now = [0.0]
    dog = RateWatchdog("u", 100, window=10.0, clock=lambda: now[0])
    for moment in range(1, 10):  # slow, but less than one window has passed
        now[0] = float(moment)
        dog.received(1)
    now[0] = 10.0
    with pytest.raises(TransportError, match="min_transfer_rate"):
        dog.received(1)


def test_watchdog_averages_over_the_window() -> None:
    """A pause is forgiven when the window's average stays above the minimum."""
    now = [0.0]
    dog = RateWatchdog("u", 100, window=10.0, clock=lambda: now[0])
    now[0] = 5.0
    dog.received(10)  # nearly nothing for 5 s
    for moment in range(6, 40):  # then 300 bytes/s: the average over 10 s stays above 100
        now[0] = float(moment)
        dog.received(300)
    now[0] = 52.0  # a 12 s pause: the last 10 s hold nothing
    with pytest.raises(TransportError, match="0 bytes/s over the last 10 s"):
        dog.received(0)
