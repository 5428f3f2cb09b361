"""A real nginx on 127.0.0.1 serving a folder, with locations that misbehave on purpose,
and a TCP proxy that cuts responses short: for testing the HTTP transport against a real
web server instead of mocks.

    with nginx_server(root, tmp=tmp_path) as server:
        server.url                    # http://127.0.0.1:PORT  (serves root at /)
        server.url + "/flaky/..."     # 500 while server.set_flaky(True)
        server.url + "/slow/..."      # limit_rate SLOW_RATE bytes/s
        server.url + "/auth/..."      # basic auth: server.auth_user / server.auth_password
        server.url + "/etag/..."      # plain static files (ETag, Last-Modified, ranges)
        server.url + "/nohead/..."    # 405 to HEAD, files to GET
        server.url + "/moved/..."     # 302 to the same file at /...
        server.url + "/token/...?token=" + QUERY_TOKEN   # 403 without that query token
        server.access_log_entries()   # parsed access log, one dict per request
        server.bytes_sent("/flaky/")  # body bytes nginx sent for those requests

    with cutting_proxy(server.port, cut_after_bytes=100_000) as proxy:
        proxy.url                     # same files; the first connection is cut after 100 kB

``nginx_server(..., tls=True)`` serves https with a throwaway self-signed certificate for
127.0.0.1 (``server.ca_bundle`` is its PEM). Everything listens on 127.0.0.1 only. The nginx
process runs in its own session and is killed on exit, whatever happened.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SLOW_RATE = 64 * 1024  # bytes per second in /slow/
STARTUP_TIMEOUT = 10.0
# /token/ serves files only to requests whose query string carries token=QUERY_TOKEN.
QUERY_TOKEN = "q5ecret-" + secrets.token_hex(8)

# One JSON object per request; nginx escapes the values for JSON.
LOG_FORMAT = (
    "{"
    '"status":"$status",'
    '"body_bytes_sent":"$body_bytes_sent",'
    '"bytes_sent":"$bytes_sent",'
    '"request":"$request",'
    '"method":"$request_method",'
    '"uri":"$uri",'
    '"range":"$http_range",'
    '"if_range":"$http_if_range",'
    '"if_none_match":"$http_if_none_match",'
    '"if_modified_since":"$http_if_modified_since",'
    '"content_range":"$sent_http_content_range",'
    '"etag":"$sent_http_etag",'
    '"remote_user":"$remote_user",'
    '"user_agent":"$http_user_agent",'
    '"connection":"$connection",'
    '"request_time":"$request_time"'
    "}"
)


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1 (the caller retries on a clash)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _htpasswd_line(user: str, password: str) -> str:
    openssl = shutil.which("openssl")
    if openssl is not None:
        hashed = subprocess.run(
            [openssl, "passwd", "-apr1", "-stdin"],
            input=password,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return f"{user}:{hashed}\n"
    return f"{user}:{{PLAIN}}{password}\n"  # nginx accepts plain text with this prefix


def make_self_signed_certificate(tmp: Path) -> tuple[Path, Path]:
    """(certificate, key) for 127.0.0.1, valid two days; the certificate is its own CA."""
    cert, key = tmp / "tls-cert.pem", tmp / "tls-key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        capture_output=True,
        check=True,
    )  # fmt: skip
    return cert, key


def _config(root: Path, tmp: Path, port: int, *, tls: bool) -> str:
    root_dir = str(root.resolve()).rstrip("/") + "/"
    temp = tmp / "nginx-temp"
    user = "user root root;\n" if os.geteuid() == 0 else ""
    ssl = " ssl" if tls else ""
    certificate = (
        f"ssl_certificate {tmp}/tls-cert.pem;\n        ssl_certificate_key {tmp}/tls-key.pem;"
        if tls
        else ""
    )
    # sndbuf keeps what nginx counts as "sent" close to what a client received: without it
    # loopback buffers swallow megabytes that a cut connection then never delivers.
    return f"""
{user}daemon off;
master_process on;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 128; }}
http {{
    default_type application/octet-stream;
    types {{ application/json json; }}
    log_format reconcile escape=json '{LOG_FORMAT}';
    access_log {tmp}/access.log reconcile;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    sendfile on;
    keepalive_timeout 30s;
    server {{
        listen 127.0.0.1:{port}{ssl} sndbuf=256k;
        server_name localhost;
        {certificate}
        root {root_dir};
        location / {{ }}
        location = /__harness_sync {{
            access_log off;
            return 204;
        }}
        location /flaky/ {{
            alias {root_dir};
            add_header Retry-After 1 always;
            if (-f {tmp}/flaky.flag) {{ return 500; }}
        }}
        location /slow/ {{
            alias {root_dir};
            limit_rate {SLOW_RATE};
        }}
        location /auth/ {{
            alias {root_dir};
            auth_basic "reconcile tests";
            auth_basic_user_file {tmp}/htpasswd;
        }}
        location /etag/ {{
            alias {root_dir};
            etag on;
        }}
        location /moved/ {{
            rewrite ^/moved/(.*)$ /$1 redirect;
        }}
        location /nohead/ {{
            alias {root_dir};
            if ($request_method = HEAD) {{ return 405; }}
        }}
        location /token/ {{
            alias {root_dir};
            if ($arg_token != "{QUERY_TOKEN}") {{ return 403; }}
        }}
    }}
}}
"""


class NginxServer:
    """A running nginx; see the module docstring."""

    def __init__(
        self,
        *,
        process: subprocess.Popen[bytes],
        port: int,
        tmp: Path,
        user: str,
        password: str,
        tls: bool,
    ) -> None:
        self.process = process
        self.port = port
        self.tmp = tmp
        self.auth_user = user
        self.auth_password = password
        self.tls = tls

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def ca_bundle(self) -> Path:
        """The self-signed certificate, to trust as a CA (tls=True only)."""
        return self.tmp / "tls-cert.pem"

    @property
    def access_log(self) -> Path:
        return self.tmp / "access.log"

    @property
    def error_log(self) -> Path:
        return self.tmp / "error.log"

    def set_flaky(self, flaky: bool) -> None:
        flag = self.tmp / "flaky.flag"
        if flaky:
            flag.touch()
        else:
            flag.unlink(missing_ok=True)

    def sync(self) -> None:
        """Make sure nginx has logged every request it has finished answering.

        nginx writes the log line just after sending the last byte, so a client can hold
        its answer before the line exists. The only worker handles one event at a time: once
        it has answered this (unlogged) request, it finished logging the earlier ones."""
        connection: http.client.HTTPConnection
        if self.tls:
            context = ssl.create_default_context(cafile=str(self.ca_bundle))
            connection = http.client.HTTPSConnection(
                "127.0.0.1", self.port, timeout=5, context=context
            )
        else:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            connection.request("GET", "/__harness_sync")
            connection.getresponse().read()
        finally:
            connection.close()

    def access_log_entries(self) -> list[dict[str, Any]]:
        """One dict per logged request, numbers as ints, empty headers as None."""
        self.sync()
        if not self.access_log.exists():
            return []
        entries = []
        for line in self.access_log.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            raw = json.loads(line)
            entry: dict[str, Any] = {key: (value or None) for key, value in raw.items()}
            for key in ("status", "body_bytes_sent", "bytes_sent", "connection"):
                entry[key] = int(raw[key])
            entries.append(entry)
        return entries

    def wait_for_entries(self, count: int, *, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The entries once at least ``count`` are logged: nginx logs a request when it ends,
        which for a connection cut by a client can be a moment after the client gave up."""
        deadline = time.monotonic() + timeout
        while True:
            entries = self.access_log_entries()
            if len(entries) >= count or time.monotonic() > deadline:
                return entries
            time.sleep(0.02)

    def bytes_sent(self, path_prefix: str | None = None) -> int:
        """Body bytes nginx sent (what went over the wire), for URIs under ``path_prefix``."""
        return sum(
            entry["body_bytes_sent"]
            for entry in self.access_log_entries()
            if path_prefix is None or (entry["uri"] or "").startswith(path_prefix)
        )

    def clear_access_log(self) -> None:
        """Forget earlier requests (nginx keeps appending to the same open file)."""
        if self.access_log.exists():
            with self.access_log.open("r+b") as stream:
                stream.truncate(0)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        # SIGTERM: nginx's fast shutdown, the master stops its workers. The whole session
        # (the master and its workers, nothing else) is then killed if anything is left.
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)  # orphaned workers, if any


def _wait_until_listening(process: subprocess.Popen[bytes], port: int, tmp: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    logs = "\n".join(
        path.read_text(encoding="utf-8", errors="replace")
        for path in (tmp / "startup-error.log", tmp / "error.log")
        if path.exists()
    )
    raise RuntimeError(
        f"nginx did not start listening on 127.0.0.1:{port} (exit status {process.poll()}):\n{logs}"
    )


def _start(root: Path, tmp: Path, port: int, *, tls: bool) -> subprocess.Popen[bytes]:
    config = tmp / "nginx.conf"
    config.write_text(_config(root, tmp, port, tls=tls), encoding="utf-8")
    with (tmp / "nginx.stderr").open("wb") as stderr:  # the child keeps its own descriptor
        return subprocess.Popen(
            [NGINX, "-p", str(tmp), "-e", str(tmp / "startup-error.log"), "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )


@contextlib.contextmanager
def nginx_server(root: Path, *, tmp: Path, tls: bool = False) -> Iterator[NginxServer]:
    """nginx serving ``root`` on a free port of 127.0.0.1; its files and logs go in ``tmp``."""
    if not Path(NGINX).exists():
        raise RuntimeError(f"nginx is not installed (looked for {NGINX})")
    tmp.mkdir(parents=True, exist_ok=True)
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / "nginx-temp" / name).mkdir(parents=True, exist_ok=True)
    user, password = "reconcile", secrets.token_urlsafe(12)
    (tmp / "htpasswd").write_text(_htpasswd_line(user, password), encoding="utf-8")
    if tls:
        make_self_signed_certificate(tmp)
    server: NginxServer | None = None
    last_error: RuntimeError | None = None
    try:
        for _attempt in range(3):  # the free port may be taken between probe and bind
            port = free_port()
            process = _start(root, tmp, port, tls=tls)
            server = NginxServer(
                process=process, port=port, tmp=tmp, user=user, password=password, tls=tls
            )
            try:
                _wait_until_listening(process, port, tmp)
                break
            except RuntimeError as exc:
                last_error = exc
                server.stop()
                server = None
        if server is None:
            raise last_error or RuntimeError("nginx did not start")
        yield server
    finally:
        if server is not None:
            server.stop()


class CuttingProxy:
    """Forwards 127.0.0.1:port to an upstream port; see ``cutting_proxy``."""

    MAX_CONNECTIONS = 64
    LIFETIME = 120.0  # seconds: a forgotten proxy stops itself

    def __init__(self, upstream_port: int, cut_after_bytes: int, cuts: int) -> None:
        self.upstream_port = upstream_port
        self.cut_after_bytes = cut_after_bytes
        self.cuts = cuts
        self.connections = 0
        self.cuts_done = 0
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.2)
        self.port = int(self._listener.getsockname()[1])
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._started = time.monotonic()
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            if time.monotonic() - self._started > self.LIFETIME:
                break
            try:
                client, _address = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            with self._lock:
                if self.connections >= self.MAX_CONNECTIONS:
                    client.close()
                    continue
                index = self.connections
                self.connections += 1
            self._serve(client, cut=index < self.cuts)
        self._stopped.set()

    def _serve(self, client: socket.socket, *, cut: bool) -> None:
        upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # a small receive window: nginx cannot push megabytes ahead of the cut
        upstream.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        try:
            upstream.connect(("127.0.0.1", self.upstream_port))
        except OSError:
            client.close()
            upstream.close()
            return
        with self._lock:
            self._sockets += [client, upstream]
        limit = self.cut_after_bytes if cut else None
        for source, target, budget in ((client, upstream, None), (upstream, client, limit)):
            thread = threading.Thread(
                target=self._pump, args=(source, target, budget, client, upstream), daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _pump(
        self,
        source: socket.socket,
        target: socket.socket,
        budget: int | None,
        client: socket.socket,
        upstream: socket.socket,
    ) -> None:
        forwarded = 0
        try:
            while not self._stopped.is_set():
                data = source.recv(65536)
                if not data:
                    break
                if budget is not None and forwarded + len(data) >= budget:
                    target.sendall(data[: budget - forwarded])
                    with self._lock:
                        self.cuts_done += 1
                    break
                target.sendall(data)
                forwarded += len(data)
        except OSError:
            pass
        # either side ending (or the cut) ends the whole connection, both ways
        for sock in (client, upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def stop(self) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        self._acceptor.join(timeout=2)
        for thread in self._threads:
            thread.join(timeout=2)


@contextlib.contextmanager
def cutting_proxy(
    upstream_port: int, cut_after_bytes: int, cuts: int = 1
) -> Iterator[CuttingProxy]:
    """A loopback proxy to ``upstream_port`` that closes each of its first ``cuts``
    connections after ``cut_after_bytes`` bytes of response (headers included); later
    connections pass through whole."""
    proxy = CuttingProxy(upstream_port, cut_after_bytes, cuts)
    try:
        yield proxy
    finally:
        proxy.stop()
