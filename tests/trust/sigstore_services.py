"""Small Fulcio and Rekor stand-ins on 127.0.0.1, backed by a ``PrivateSigstore``, so that
publishing signs through sigstore-python's real clients (HTTP, the CSR, SCT checks, the log's
response) without the public instance.

- ``POST /api/v2/signingCert`` (Fulcio): checks the bearer token's signature with the test's
  OIDC issuer key (as Fulcio checks an issuer's JWKS), its audience ``sigstore`` and lifetime,
  and the CSR's proof of possession; issues a certificate for the token's ``sub`` and ``iss``
  with an embedded SCT.
- ``POST /api/v1/log/entries`` (Rekor v1): logs a hashedrekord entry and answers with its
  inclusion proof, checkpoint and signed entry timestamp.

``token()`` mints identity tokens as a CI system would. Times are the real clock's: clients
refuse certificates and tokens that are not current.
"""

from __future__ import annotations

import base64
import datetime
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import attrs
import jwt
import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.trust.private_sigstore import PrivateSigstore


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


@attrs.define
class Services:
    instance: PrivateSigstore
    url: str
    oidc_key: ec.EllipticCurvePrivateKey
    requests: list[str] = attrs.field(factory=list)  # "POST /path -> status", in order

    def token(self, subject: str, issuer: str, *, audience: str = "sigstore") -> str:
        now = int(_now().timestamp())
        claims = {"iss": issuer, "sub": subject, "aud": audience, "iat": now, "nbf": now,
                  "exp": now + 300}  # fmt: skip
        return jwt.encode(claims, self.oidc_key, algorithm="ES256")

    def signing_config(self) -> dict[str, Any]:
        def service(url: str) -> dict[str, Any]:
            return {
                "url": url,
                "majorApiVersion": 1,
                "validFor": {"start": "2025-01-01T00:00:00Z"},
                "operator": self.instance.name,
            }

        return {
            "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
            "caUrls": [service(self.url)],
            "oidcUrls": [],
            "rekorTlogUrls": [service(self.url)],
            "tsaUrls": [],
            "rekorTlogConfig": {"selector": "ANY"},
            "tsaConfig": {"selector": "ANY"},
        }


def _fulcio(services: Services, request: dict[str, Any], authorization: str) -> dict[str, Any]:
    token = authorization.removeprefix("Bearer ")
    claims = jwt.decode(
        token, services.oidc_key.public_key(), algorithms=["ES256"], audience="sigstore"
    )
    csr = x509.load_pem_x509_csr(base64.b64decode(request["certificateSigningRequest"]))
    if not csr.is_signature_valid:
        raise ValueError("the CSR's signature is not valid")
    public = csr.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    instance = services.instance
    certificate = instance.issue(claims["sub"], claims["iss"], public, at=_now())
    chain = [
        c.public_bytes(serialization.Encoding.PEM).decode() for c in (certificate, instance.ca_cert)
    ]
    return {"signedCertificateEmbeddedSct": {"chain": {"certificates": chain}}}


def _rekor(services: Services, request: dict[str, Any]) -> dict[str, Any]:
    if request.get("kind") != "hashedrekord":
        raise ValueError("only hashedrekord entries")
    entry = services.instance.append(rfc8785.dumps(request), at=_now())
    proof = entry["inclusionProof"]
    uuid = base64.b64decode(entry["canonicalizedBody"])[:8].hex()
    return {
        uuid: {
            "body": entry["canonicalizedBody"],
            "integratedTime": int(entry["integratedTime"]),
            "logID": base64.b64decode(entry["logId"]["keyId"]).hex(),
            "logIndex": int(entry["logIndex"]),
            "verification": {
                "inclusionProof": {
                    "checkpoint": proof["checkpoint"]["envelope"],
                    "hashes": [base64.b64decode(h).hex() for h in proof["hashes"]],
                    "logIndex": int(proof["logIndex"]),
                    "rootHash": base64.b64decode(proof["rootHash"]).hex(),
                    "treeSize": int(proof["treeSize"]),
                },
                "signedEntryTimestamp": entry["inclusionPromise"]["signedEntryTimestamp"],
            },
        }
    }


@contextmanager
def running(instance: PrivateSigstore) -> Iterator[Services]:
    """Fulcio and Rekor stand-ins on an ephemeral 127.0.0.1 port, stopped on exit."""
    holder: list[Services] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            services = holder[0]
            length = int(self.headers.get("Content-Length", "0"))
            try:
                request = json.loads(self.rfile.read(length))
                if self.path == "/api/v2/signingCert":
                    answer = _fulcio(services, request, self.headers.get("Authorization", ""))
                elif self.path == "/api/v1/log/entries":
                    answer = _rekor(services, request)
                else:
                    self._send(404, {"message": f"no {self.path} here"})
                    return
            except (ValueError, KeyError, jwt.PyJWTError) as exc:
                self._send(400, {"message": str(exc)})
                return
            self._send(201, answer)

        def _send(self, status: int, document: dict[str, Any]) -> None:
            holder[0].requests.append(f"POST {self.path} -> {status}")
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            del format, args  # quiet

    server = HTTPServer(("127.0.0.1", 0), Handler)
    holder.append(
        Services(
            instance=instance,
            url=f"http://127.0.0.1:{server.server_address[1]}",
            oidc_key=ec.generate_private_key(ec.SECP256R1()),
        )
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
