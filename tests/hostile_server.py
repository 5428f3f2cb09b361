"""A small hostile HTTP server for tests: it serves a folder like a mirror, except for the
paths told to misbehave (an endless body, a trickle, a huge Content-Length, a body that is
not what the file should be). It counts the bytes it sent for each path, so that tests can
check the client stopped early.

Standard library only, one thread per connection, bound to 127.0.0.1 on a free port.
"""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CHUNK = 64 << 10


@dataclass(frozen=True)
class Misbehave:
    """How one path is answered.

    ``endless``: a 200 whose body never ends (no Content-Length).
    ``trickle``: the real file (or ``body``), one byte every ``interval`` seconds.
    ``huge_length``: a 200 announcing ``length`` bytes, then ``body`` and a hang-up.
    ``body``: a 200 with ``body`` (or ``repeat`` copies of it) instead of the file.
    """

    mode: str
    body: bytes = b""
    repeat: int = 1
    interval: float = 1.0
    length: int = 0


class _Handler(http.server.BaseHTTPRequestHandler):
    server: HostileServer  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_GET(self) -> None:
        self._answer(head=False)

    def _answer(self, *, head: bool) -> None:
        path = self.path.split("?", 1)[0].lstrip("/")
        rule = self.server.rules.get(path)
        try:
            if rule is None:
                self._serve_file(path, head=head)
            else:
                self._misbehave(path, rule, head=head)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up: what these tests want

    def _serve_file(self, path: str, *, head: bool) -> None:
        file = self.server.root / path if self.server.root is not None else None
        if file is None or not file.is_file():
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = file.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head:
            self._send(path, data)

    def _misbehave(self, path: str, rule: Misbehave, *, head: bool) -> None:
        stop = self.server.stopping
        if rule.mode == "endless":
            self.send_response(200)
            if head:  # a HEAD tells the real size: only the body lies
                real = self.server.root / path if self.server.root is not None else None
                size = real.stat().st_size if real is not None and real.is_file() else 0
                self.send_header("Content-Length", str(size))
                self.end_headers()
                return
            self.send_header("Connection", "close")
            self.end_headers()
            block = (rule.body or b"\0") * (CHUNK // max(1, len(rule.body or b"\0")))
            while not stop.is_set():
                self._send(path, block)
        elif rule.mode == "trickle":
            data = rule.body
            if not data and self.server.root is not None:
                data = (self.server.root / path).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if head:
                return
            for index in range(len(data)):
                if stop.wait(rule.interval):
                    return
                self._send(path, data[index : index + 1])
        elif rule.mode == "huge_length":
            self.send_response(200)
            self.send_header("Content-Length", str(rule.length))
            self.send_header("Connection", "close")
            self.end_headers()
            if not head:
                self._send(path, rule.body)
        elif rule.mode == "body":
            self.send_response(200)
            self.send_header("Content-Length", str(len(rule.body) * rule.repeat))
            self.end_headers()
            if not head:
                for _ in range(rule.repeat):
                    if stop.is_set():
                        return
                    self._send(path, rule.body)
        else:
            raise AssertionError(f"unknown mode {rule.mode}")

    def _send(self, path: str, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()
        with self.server.count_lock:
            self.server.sent[path] = self.server.sent.get(path, 0) + len(data)


class HostileServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path | None, rules: dict[str, Misbehave]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.rules = dict(rules)
        self.sent: dict[str, int] = {}
        self.count_lock = threading.Lock()
        self.stopping = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def bytes_sent(self, path: str) -> int:
        with self.count_lock:
            return self.sent.get(path, 0)


@contextlib.contextmanager
def hostile_server(
    root: Path | None = None, rules: dict[str, Misbehave] | None = None
) -> Iterator[HostileServer]:
    """Serve ``root`` (None: every unlisted path is 404), with ``rules`` by path."""
    server = HostileServer(root, rules or {})
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        time.sleep(0)  # let handler threads see the stop
