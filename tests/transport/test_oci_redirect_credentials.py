"""A registry that redirects a blob to another host (as registries send blobs to a CDN) must
not get the client to carry its Authorization there: the bearer token the registry's token
service issued stays with the registry. Two real HTTP servers on two host names
(127.0.0.1 and localhost), no mocks."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import threading
from collections.abc import Iterator

from reconcile.transport.oci import OciTransport

BLOB = b"a layer the CDN serves\n"
DIGEST = hashlib.sha256(BLOB).hexdigest()
TOKEN = "registry-secret-token"


@contextlib.contextmanager
def _serve(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        del format, args

    def _answer(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_redirect_to_another_host_carries_no_authorization() -> None:
    seen_by_cdn: list[str | None] = []
    seen_by_registry: list[str | None] = []
    ports: dict[str, int] = {}

    class Cdn(_Quiet):
        def do_GET(self) -> None:
            seen_by_cdn.append(self.headers.get("Authorization"))
            self._answer(200, BLOB)

    class Registry(_Quiet):
        def do_GET(self) -> None:
            if self.path.startswith("/token"):
                self._answer(200, json.dumps({"token": TOKEN}).encode())
                return
            authorization = self.headers.get("Authorization")
            seen_by_registry.append(authorization)
            if authorization != f"Bearer {TOKEN}":
                realm = f"http://127.0.0.1:{ports['registry']}/token"
                self._answer(401, WWW_Authenticate=f'Bearer realm="{realm}",service="r"')
                return
            # another host name, same machine: what a CDN redirect looks like to the client
            self._answer(307, Location=f"http://localhost:{ports['cdn']}/cdn/{DIGEST}")

    with _serve(Cdn) as cdn, _serve(Registry) as registry:
        ports.update(cdn=cdn, registry=registry)
        mirror = f"oci+http://127.0.0.1:{registry}/team/cache"
        transport = OciTransport(mirror_url=mirror, environ={})
        try:
            data = transport.read_bytes(f"{mirror}/blobs/sha256:{DIGEST}")
        finally:
            transport.close()
    assert data == BLOB
    assert seen_by_registry[-1] == f"Bearer {TOKEN}"  # the registry did get the token
    assert seen_by_cdn == [None]  # the other host never did
