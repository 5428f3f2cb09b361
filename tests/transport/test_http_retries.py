"""Retries, backoff and unreachable mirrors, against real sockets and a real nginx."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from conftest import SIGNED_CACHE
from http_mirror_support import INDEX, dead_port, fresh, served_signed_cache, transport
from nginx_harness import NginxServer

from reconcile.errors import MirrorUnreachableError, NotFoundError, TransportError
from reconcile.transport.retry import RetryPolicy, is_retryable_status, parse_retry_after


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxServer]:
    with served_signed_cache(tmp_path_factory.mktemp("http-retries")) as server:
        yield server


@pytest.fixture
def server(shared_server: NginxServer) -> Iterator[NginxServer]:
    yield fresh(shared_server)
    shared_server.set_flaky(False)


def test_flaky_500s_are_retried_until_success(server: NginxServer) -> None:
    server.set_flaky(True)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:  # the server recovers after two failed attempts
            server.set_flaky(False)

    http = transport(server.url, sleep=sleep)
    data = http.read_bytes(f"{server.url}/flaky/{INDEX}")
    assert data == (SIGNED_CACHE / INDEX).read_bytes()
    assert [e["status"] for e in server.access_log_entries()] == [500, 500, 200]
    # nginx sends Retry-After: 1 with the 500s; it is honoured, but only up to the cap
    assert waits == [0.01, 0.01]
    assert http.bytes_received == server.bytes_sent()


def test_persistent_500s_give_up_after_the_budget(server: NginxServer) -> None:
    server.set_flaky(True)
    http = transport(server.url, attempts=3)
    with pytest.raises(TransportError) as caught:
        http.read_bytes(f"{server.url}/flaky/{INDEX}")
    assert not isinstance(caught.value, MirrorUnreachableError)  # it did answer
    assert "HTTP 500" in caught.value.message and "3 attempts" in caught.value.message
    assert [e["status"] for e in server.access_log_entries()] == [500, 500, 500]


def test_not_found_is_never_retried(server: NginxServer) -> None:
    http = transport(server.url, attempts=4)
    with pytest.raises(NotFoundError):
        http.read_bytes(f"{server.url}/flaky/build_cache/nothing-here")
    assert len(server.access_log_entries()) == 1


def test_dead_port_is_unreachable_quickly() -> None:
    port = dead_port()
    url = f"http://127.0.0.1:{port}/mirror"
    http = transport(url, attempts=3)
    started = time.monotonic()
    with pytest.raises(MirrorUnreachableError) as caught:
        http.read_bytes(f"{url}/{INDEX}")
    assert time.monotonic() - started < 2
    error = caught.value
    assert "connection refused" in error.message
    assert f"{url}/{INDEX}" in error.message
    assert "3 attempts" in error.message
    assert error.hint is not None and "skips the mirror" in error.hint
    with pytest.raises(MirrorUnreachableError):
        http.size(f"{url}/{INDEX}")


def test_connect_timeout_is_unreachable() -> None:
    # A listener that never accepts, with its one-slot backlog already taken: further SYNs
    # are dropped, so connecting times out (the kernel's behaviour, no fake server).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        for _ in range(4):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        time.sleep(0.1)
        try:
            url = f"http://127.0.0.1:{port}"
            http = transport(url, connect_timeout=0.2, attempts=2)
            started = time.monotonic()
            with pytest.raises(MirrorUnreachableError) as caught:
                http.read_bytes(f"{url}/{INDEX}")
            assert time.monotonic() - started < 3
        finally:
            for filler in fillers:
                filler.close()
    assert "timed out" in caught.value.message
    assert caught.value.hint is not None and "RECONCILE_HTTP_CONNECT_TIMEOUT" in caught.value.hint


@contextlib.contextmanager
def silent_server() -> Iterator[tuple[int, list[socket.socket]]]:
    """A port that accepts connections and never says a word (a hung server)."""
    stop = threading.Event()
    accepted: list[socket.socket] = []
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(0.05)

        def accept_and_ignore() -> None:
            while not stop.is_set():
                try:
                    accepted.append(listener.accept()[0])
                except TimeoutError:
                    continue

        thread = threading.Thread(target=accept_and_ignore, daemon=True)
        thread.start()
        try:
            yield listener.getsockname()[1], accepted
        finally:
            stop.set()
            thread.join(timeout=2)
            for sock in accepted:
                sock.close()


def test_server_that_never_answers_is_unreachable_after_read_timeouts() -> None:
    with silent_server() as (port, accepted):
        url = f"http://127.0.0.1:{port}"
        http = transport(url, read_timeout=0.2, attempts=2)
        with pytest.raises(MirrorUnreachableError) as caught:
            http.read_bytes(f"{url}/{INDEX}")
        assert len(accepted) == 2  # one connection per attempt
    assert "no answer (read timed out)" in caught.value.message
    assert caught.value.hint is not None and "RECONCILE_HTTP_READ_TIMEOUT" in caught.value.hint


def test_timeouts_come_from_the_environment() -> None:
    with silent_server() as (port, _accepted):
        url = f"http://127.0.0.1:{port}"
        http = transport(
            url,
            connect_timeout=None,
            read_timeout=None,
            attempts=1,
            environ={"RECONCILE_HTTP_CONNECT_TIMEOUT": "3", "RECONCILE_HTTP_READ_TIMEOUT": "0.3"},
        )
        started = time.monotonic()
        with pytest.raises(MirrorUnreachableError) as caught:
            http.read_bytes(f"{url}/{INDEX}")
        assert 0.3 <= time.monotonic() - started < 2
    assert caught.value.hint is not None and "(now 0.3 s)" in caught.value.hint


@pytest.mark.parametrize("value", ["soon", "-1", "0", "nan", "inf"])
def test_bad_timeout_in_the_environment_is_a_clear_error(value: str) -> None:
    with pytest.raises(TransportError) as caught:
        transport(
            "http://127.0.0.1:1",
            read_timeout=None,
            environ={"RECONCILE_HTTP_READ_TIMEOUT": value},
        )
    assert "RECONCILE_HTTP_READ_TIMEOUT" in caught.value.message
    assert caught.value.hint is not None and "positive number" in caught.value.hint


def test_backoff_grows_is_jittered_and_capped() -> None:
    policy = RetryPolicy(attempts=8, backoff_base=0.5, backoff_cap=3.0)
    for failures, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (7, 3.0)]:
        delays = {policy.delay(failures) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jitter
    assert policy.delay(1, retry_after=2.0) == 2.0
    assert policy.delay(1, retry_after=3600.0) == 3.0


def test_retry_after_header_forms() -> None:
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("whenever") is None
    assert parse_retry_after(None) is None


def test_which_answers_are_worth_repeating() -> None:
    assert all(is_retryable_status(code) for code in (408, 429, 500, 502, 503, 504, 599))
    assert not any(is_retryable_status(code) for code in (200, 304, 400, 401, 403, 404, 410))
