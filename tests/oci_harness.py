"""A real OCI registry (Debian's ``docker-registry``: CNCF distribution 2.8) on 127.0.0.1,
for testing reconcile's OCI mirrors against the software that serves them in production.

    with oci_registry(tmp=tmp_path) as registry:               # anonymous, plain http
        registry.mirror_url("team/cache")                      # oci+http://127.0.0.1:PORT/team/cache
    with oci_registry(tmp=tmp_path, auth="basic") as registry: # htpasswd, https
        registry.user, registry.password, registry.ca_bundle
    with oci_registry(tmp=tmp_path, auth="token") as registry: # bearer tokens, https
        ...                                                    # a token server on another port

    registry.requests()              # every request the registry logged: (method, path, status)
    registry.blob_gets(digest)       # how many GETs of that blob it answered

With ``auth``, the registry serves https with a throwaway certificate for 127.0.0.1 (its own
CA, ``registry.ca_bundle``), since reconcile never sends credentials over plain http. The
token server checks the same user and password with basic auth and signs RS256 JWTs that the
registry verifies against the certificate in its ``rootcertbundle``. Every process runs in its
own session and is killed on exit, whatever happened.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import os
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from nginx_harness import free_port, make_self_signed_certificate

REGISTRY = shutil.which("docker-registry") or "/usr/bin/docker-registry"
HTPASSWD = shutil.which("htpasswd") or "/usr/bin/htpasswd"
STARTUP_TIMEOUT = 15.0
SERVICE = "reconcile-test-registry"
ISSUER = "reconcile-test-issuer"
# "GET /v2/team/cache/blobs/sha256:... HTTP/1.1" 200 in the registry's combined access log
_ACCESS = re.compile(r'"(GET|HEAD|PUT|POST|PATCH|DELETE) (\S+) HTTP/[0-9.]+" (\d{3}) ')

Auth = Literal["none", "basic", "token"]


def registry_available() -> bool:
    return Path(REGISTRY).exists()


class TokenServer:
    """The registry token flow's issuer: ``GET /token?service=..&scope=..`` with basic auth
    (or none, for anonymous pull tokens when ``anonymous_pull``) answers ``{"token": JWT}``."""

    def __init__(self, *, tmp: Path, user: str, password: str, anonymous_pull: bool) -> None:
        self.user, self.password, self.anonymous_pull = user, password, anonymous_pull
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.certificate = self._self_signed(tmp)
        self.requests: list[tuple[str, str | None]] = []  # (scope, user) of each token asked
        handler = self._handler()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(tmp / "tls-cert.pem"), str(tmp / "tls-key.pem"))
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def realm(self) -> str:
        return f"https://127.0.0.1:{self.port}/token"

    def _self_signed(self, tmp: Path) -> Path:
        """The token-signing certificate the registry trusts (``rootcertbundle``)."""
        name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, ISSUER)])
        now = time.time()
        import datetime

        start = datetime.datetime.fromtimestamp(now - 3600, tz=datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        path = tmp / "token-signer.pem"
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._der = cert.public_bytes(serialization.Encoding.DER)
        return path

    def token(self, scope: str, subject: str) -> str:
        access = []
        for item in scope.split(" ") if scope else []:
            kind, name, actions = item.split(":", 2) if item.count(":") >= 2 else ("", "", "")
            wanted = actions.split(",")
            granted = wanted if subject else [a for a in wanted if a == "pull"]
            access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self._der).decode()]}
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + 600,
            "nbf": now - 60,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }

        def part(value: object) -> str:
            raw = json.dumps(value, separators=(",", ":")).encode()
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        signing_input = f"{part(header)}.{part(claims)}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                scope = " ".join(query.get("scope", []))
                subject = self._user()
                server.requests.append((scope, subject))
                if subject is None or (subject == "" and not server.anonymous_pull):
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="token"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"token": server.token(scope, subject)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _user(self) -> str | None:
                """The authenticated user, "" for none, None for wrong credentials."""
                header = self.headers.get("Authorization", "")
                if not header:
                    return ""
                if not header.startswith("Basic "):
                    return None
                try:
                    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                except ValueError:
                    return None
                if user == server.user and password == server.password:
                    return user
                return None

        return Handler

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


class Registry:
    def __init__(
        self,
        *,
        process: subprocess.Popen[bytes],
        port: int,
        tmp: Path,
        auth: Auth,
        user: str,
        password: str,
        token_server: TokenServer | None,
        tls: bool,
    ) -> None:
        self.process, self.port, self.tmp, self.auth, self.tls = process, port, tmp, auth, tls
        self.user, self.password, self.token_server = user, password, token_server

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ca_bundle(self) -> Path:
        return self.tmp / "tls-cert.pem"

    @property
    def api(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}/v2/"

    def mirror_url(self, repository: str) -> str:
        """The manifest's URL for ``repository``: ``oci://`` over https, ``oci+http://``."""
        return f"{'oci' if self.tls else 'oci+http'}://{self.host}/{repository}"

    @property
    def log(self) -> Path:
        return self.tmp / "registry.log"

    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request the registry logged, in order."""
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return [(m[1], m[2], int(m[3])) for m in _ACCESS.finditer(text)]

    def blob_gets(self, digest: str) -> int:
        """Answered GETs of the blob ``sha256:<hex>`` (redirects and errors not counted)."""
        return sum(
            1
            for method, path, status in self.requests()
            if method == "GET" and path.endswith(f"/blobs/{digest}") and status == 200
        )

    def stop(self) -> None:
        if self.token_server is not None:
            self.token_server.stop()
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)


def _htpasswd(path: Path, user: str, password: str) -> None:
    """A bcrypt entry (the only hash distribution accepts), written by apache2-utils."""
    line = subprocess.run(
        [HTPASSWD, "-niB", user], input=password, capture_output=True, text=True, check=True
    ).stdout.strip()
    path.write_text(line + "\n", encoding="utf-8")


def _config(
    tmp: Path, port: int, auth: Auth, token_server: TokenServer | None, *, tls: bool
) -> str:
    lines = [
        "version: 0.1",
        "log:",
        "  level: warn",
        "  accesslog:",
        "    disabled: false",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {tmp / 'storage'}",
        "  delete:",
        "    enabled: true",
        "  maintenance:",
        "    uploadpurging:",
        "      enabled: false",
        "http:",
        f"  addr: 127.0.0.1:{port}",
        f"  secret: {secrets.token_hex(16)}",
    ]
    if tls:
        lines += [
            "  tls:",
            f"    certificate: {tmp / 'tls-cert.pem'}",
            f"    key: {tmp / 'tls-key.pem'}",
        ]
    if auth == "basic":
        lines += [
            "auth:",
            "  htpasswd:",
            "    realm: reconcile-test",
            f"    path: {tmp / 'htpasswd'}",
        ]
    elif auth == "token":
        assert token_server is not None
        lines += [
            "auth:",
            "  token:",
            f"    realm: {token_server.realm}",
            f"    service: {SERVICE}",
            f"    issuer: {ISSUER}",
            f"    rootcertbundle: {token_server.certificate}",
        ]
    return "\n".join(lines) + "\n"


def _wait_until_ready(registry: Registry) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    context = ssl.create_default_context(cafile=str(registry.ca_bundle)) if registry.tls else None
    import urllib.error
    import urllib.request

    while time.monotonic() < deadline:
        if registry.process.poll() is not None:
            break
        try:
            urllib.request.urlopen(registry.api, timeout=1, context=context).close()
            return
        except urllib.error.HTTPError:
            return  # 401: listening, and asking for credentials
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(
        f"docker-registry did not start on {registry.host} (exit status "
        f"{registry.process.poll()}):\n{registry.log.read_text(errors='replace')}"
    )


@contextlib.contextmanager
def oci_registry(
    *, tmp: Path, auth: Auth = "none", anonymous_pull: bool = False, tls: bool | None = None
) -> Iterator[Registry]:
    """docker-registry on a free port of 127.0.0.1; its storage, config and log in ``tmp``.
    TLS is on with auth (credentials go over https only), and on request without."""
    tls = auth != "none" if tls is None else tls
    if auth != "none" and not tls:
        raise ValueError("a registry with auth is served over https")
    if not registry_available():
        raise RuntimeError(f"docker-registry is not installed (looked for {REGISTRY})")
    tmp.mkdir(parents=True, exist_ok=True)
    user, password = "reconcile", secrets.token_urlsafe(12)
    token_server = None
    if tls:
        make_self_signed_certificate(tmp)
    if auth == "basic":
        _htpasswd(tmp / "htpasswd", user, password)
    registry: Registry | None = None
    last_error: RuntimeError | None = None
    try:
        if auth == "token":
            token_server = TokenServer(
                tmp=tmp, user=user, password=password, anonymous_pull=anonymous_pull
            )
        for _attempt in range(3):  # the free port may be taken between probe and bind
            port = free_port()
            config = tmp / "config.yml"
            config.write_text(_config(tmp, port, auth, token_server, tls=tls), encoding="utf-8")
            with (tmp / "registry.log").open("ab") as log:  # the child keeps its descriptor
                process = subprocess.Popen(
                    [REGISTRY, "serve", str(config)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
            registry = Registry(
                process=process,
                port=port,
                tmp=tmp,
                auth=auth,
                user=user,
                password=password,
                token_server=token_server,
                tls=tls,
            )
            try:
                _wait_until_ready(registry)
                break
            except RuntimeError as exc:
                last_error = exc
                registry.token_server = None  # stopped once, below
                registry.stop()
                registry = None
        if registry is None:
            raise last_error or RuntimeError("docker-registry did not start")
        yield registry
    finally:
        if registry is not None:
            registry.stop()
        elif token_server is not None:
            token_server.stop()
