"""A private Sigstore instance built in-process, for tests that cannot reach the public one.

Its three services, each reduced to the keys and formats a verifier checks:

- a **CA** (Fulcio's role) issuing short-lived code-signing certificates that name an identity
  (SAN) and an OIDC issuer (Fulcio's extensions), each with an embedded SCT;
- a **CT log** whose key signs those SCTs over the precertificate (RFC 6962);
- a **transparency log** (Rekor's role) holding hashedrekord entries in an RFC 6962 Merkle tree:
  an inclusion proof for each, a checkpoint signed as a note, and a signed entry timestamp
  over the entry with its integrated time.

``trusted_root()`` is the ``trusted_root.json`` a client pins; ``sign()`` returns a bundle
(v0.3 JSON) over a message, as ``sigstore sign`` writes one. Every part can be made wrong on
purpose, so tests can show that each check refuses.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import struct
from typing import Any

import attrs
import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
SCT_LIST = ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
# A moment long past: the verifier checks every validity against the log's time, so the
# tests need no clock.
SIGNED_AT = datetime.datetime(2025, 6, 1, 12, 0, 0, tzinfo=datetime.UTC)
EPOCH = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_id(key: ec.EllipticCurvePublicKey) -> bytes:
    """RFC 6962's key id: the SHA-256 of the key's SubjectPublicKeyInfo."""
    return hashlib.sha256(_spki(key)).digest()


def _stamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- RFC 6962 Merkle tree ---------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two smaller than ``size``."""
    k = 1
    while k * 2 < size:
        k *= 2
    return k


def tree_hash(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node(tree_hash(leaves[:k]), tree_hash(leaves[k:]))


def inclusion_proof(index: int, leaves: list[bytes]) -> list[bytes]:
    """The audit path of leaf ``index``, lowest level first (RFC 6962 section 2.1.1)."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*inclusion_proof(index, leaves[:k]), tree_hash(leaves[k:])]
    return [*inclusion_proof(index - k, leaves[k:]), tree_hash(leaves[:k])]


# --- the instance -----------------------------------------------------------------------------


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@attrs.define
class PrivateSigstore:
    name: str = "private.example"
    ca_key: ec.EllipticCurvePrivateKey = attrs.field(factory=_new_key)
    ct_key: ec.EllipticCurvePrivateKey = attrs.field(factory=_new_key)
    log_key: ec.EllipticCurvePrivateKey = attrs.field(factory=_new_key)
    leaves: list[bytes] = attrs.field(factory=list)  # the log's leaf hashes so far
    ca_cert: x509.Certificate = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.name),
                x509.NameAttribute(NameOID.COMMON_NAME, f"{self.name} CA"),
            ]
        )
        public = self.ca_key.public_key()
        self.ca_cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(EPOCH)
            .not_valid_after(EPOCH + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )

    # -- the client's pinned root --

    def trusted_root(self) -> dict[str, Any]:
        def log(key: ec.EllipticCurvePrivateKey, url: str) -> dict[str, Any]:
            public = key.public_key()
            return {
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": _b64(_spki(public)),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": _stamp(EPOCH)},
                },
                "logId": {"keyId": _b64(key_id(public))},
            }

        return {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [log(self.log_key, f"https://rekor.{self.name}")],
            "certificateAuthorities": [
                {
                    "subject": {"organization": self.name, "commonName": f"{self.name} CA"},
                    "uri": f"https://fulcio.{self.name}",
                    "certChain": {
                        "certificates": [
                            {
                                "rawBytes": _b64(
                                    self.ca_cert.public_bytes(serialization.Encoding.DER)
                                )
                            }
                        ]
                    },
                    "validFor": {"start": _stamp(EPOCH)},
                }
            ],
            "ctlogs": [log(self.ct_key, f"https://ctfe.{self.name}")],
            "timestampAuthorities": [],
        }

    def trusted_root_json(self) -> str:
        return json.dumps(self.trusted_root(), indent=1)

    # -- the CA and the CT log --

    def issue(
        self,
        identity: str,
        issuer: str,
        public_key: ec.EllipticCurvePublicKey,
        *,
        at: datetime.datetime = SIGNED_AT,
        sct_key: ec.EllipticCurvePrivateKey | None = None,
        ca_key: ec.EllipticCurvePrivateKey | None = None,
        lifetime: datetime.timedelta = datetime.timedelta(minutes=10),
    ) -> x509.Certificate:
        """A certificate for ``identity`` (an e-mail address or a URI) from ``issuer``, valid
        from a minute before ``at`` for ``lifetime``, with an SCT by ``sct_key`` (default: the
        CT log's), signed by ``ca_key`` (default: the CA's)."""
        san: x509.GeneralName = (
            x509.UniformResourceIdentifier(identity)
            if "://" in identity
            else x509.RFC822Name(identity)
        )
        issuer_v2 = issuer.encode()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.ca_cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(at - datetime.timedelta(minutes=1))
            .not_valid_after(at - datetime.timedelta(minutes=1) + lifetime)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                False,
            )
            .add_extension(x509.SubjectAlternativeName([san]), critical=True)
            .add_extension(x509.UnrecognizedExtension(ISSUER_V1, issuer.encode()), False)
            .add_extension(
                x509.UnrecognizedExtension(
                    ISSUER_V2, b"\x0c" + bytes([len(issuer_v2)]) + issuer_v2
                ),
                False,
            )
        )
        signer = ca_key or self.ca_key
        # The SCT signs the certificate without its SCT list (the precertificate's TBS): make
        # it once with a placeholder list, sign that, then make it again with the real list.
        placeholder = builder.add_extension(
            x509.UnrecognizedExtension(SCT_LIST, _octets(b"\x00\x00")), False
        ).sign(signer, hashes.SHA256())
        sct = self._sct(placeholder.tbs_precertificate_bytes, at, sct_key or self.ct_key)
        return builder.add_extension(
            x509.UnrecognizedExtension(SCT_LIST, _octets(_tls_vector(_tls_vector(sct)))), False
        ).sign(signer, hashes.SHA256())

    def _sct(self, tbs: bytes, at: datetime.datetime, key: ec.EllipticCurvePrivateKey) -> bytes:
        millis = int(at.timestamp() * 1000)
        issuer_key_hash = key_id(self.ca_key.public_key())
        entry = issuer_key_hash + struct.pack("!I", len(tbs))[1:] + tbs
        signed = struct.pack("!BBQH", 0, 0, millis, 1) + entry + struct.pack("!H", 0)
        signature = key.sign(signed, ec.ECDSA(hashes.SHA256()))
        # version, log id, timestamp, no extensions, SHA-256 (4) with ECDSA (3), signature
        return (
            b"\x00"
            + key_id(self.ct_key.public_key())
            + struct.pack("!QH", millis, 0)
            + b"\x04\x03"
            + _tls_vector(signature)
        )

    # -- the transparency log --

    def log_entry(
        self,
        certificate: x509.Certificate,
        signature: bytes,
        digest: bytes,
        *,
        at: datetime.datetime = SIGNED_AT,
        others: int = 4,
        log_key: ec.EllipticCurvePrivateKey | None = None,
    ) -> dict[str, Any]:
        """Append a hashedrekord entry (after ``others`` unrelated ones, so the proof has
        depth) and return it as a bundle's tlogEntries item: inclusion proof, checkpoint and
        signed entry timestamp, each signed by ``log_key`` (default: the log's)."""
        pem = certificate.public_bytes(serialization.Encoding.PEM)
        body = rfc8785.dumps(
            {
                "apiVersion": "0.0.1",
                "kind": "hashedrekord",
                "spec": {
                    "data": {"hash": {"algorithm": "sha256", "value": digest.hex()}},
                    "signature": {"content": _b64(signature), "publicKey": {"content": _b64(pem)}},
                },
            }
        )
        return self.append(body, at=at, others=others, log_key=log_key)

    def append(
        self,
        body: bytes,
        *,
        at: datetime.datetime = SIGNED_AT,
        others: int = 4,
        log_key: ec.EllipticCurvePrivateKey | None = None,
    ) -> dict[str, Any]:
        """Append the canonical entry ``body`` and return it as a tlogEntries item."""
        for number in range(others):
            self.leaves.append(leaf_hash(f"another entry {len(self.leaves)} {number}".encode()))
        index = len(self.leaves)
        self.leaves.append(leaf_hash(body))
        root = tree_hash(self.leaves)
        signer = log_key or self.log_key
        log_id = key_id(self.log_key.public_key())
        integrated = int(at.timestamp())
        promise = rfc8785.dumps(
            {
                "body": _b64(body),
                "integratedTime": integrated,
                "logID": log_id.hex(),
                "logIndex": index,
            }
        )
        note = f"{self.name} - 1\n{len(self.leaves)}\n{_b64(root)}\n"
        note_signature = signer.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
        envelope = f"{note}\n\u2014 {self.name} {_b64(log_id[:4] + note_signature)}\n"
        return {
            "logIndex": str(index),
            "logId": {"keyId": _b64(log_id)},
            "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
            "integratedTime": str(integrated),
            "inclusionPromise": {
                "signedEntryTimestamp": _b64(signer.sign(promise, ec.ECDSA(hashes.SHA256())))
            },
            "inclusionProof": {
                "logIndex": str(index),
                "rootHash": _b64(root),
                "treeSize": str(len(self.leaves)),
                "hashes": [_b64(h) for h in inclusion_proof(index, self.leaves)],
                "checkpoint": {"envelope": envelope},
            },
            "canonicalizedBody": _b64(body),
        }

    # -- a signing client --

    def sign(
        self,
        message: bytes,
        *,
        identity: str,
        issuer: str,
        at: datetime.datetime = SIGNED_AT,
        **issue_options: Any,
    ) -> bytes:
        """A v0.3 bundle over ``message``: an ephemeral key, a certificate for it, the
        signature, and the log entry, as ``sigstore sign`` makes one."""
        ephemeral = ec.generate_private_key(ec.SECP256R1())
        certificate = self.issue(identity, issuer, ephemeral.public_key(), at=at, **issue_options)
        signature = ephemeral.sign(message, ec.ECDSA(hashes.SHA256()))
        digest = hashlib.sha256(message).digest()
        return bundle_json(
            certificate, signature, digest, self.log_entry(certificate, signature, digest, at=at)
        )


def bundle_json(
    certificate: x509.Certificate, signature: bytes, digest: bytes, entry: dict[str, Any]
) -> bytes:
    document = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {
            "certificate": {"rawBytes": _b64(_der(certificate))},
            "tlogEntries": [entry],
        },
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": _b64(digest)},
            "signature": _b64(signature),
        },
    }
    return json.dumps(document).encode()


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def _tls_vector(data: bytes) -> bytes:
    return struct.pack("!H", len(data)) + data


def _octets(data: bytes) -> bytes:
    """A DER OCTET STRING (the SCT list extension's value wraps the TLS list in one)."""
    if len(data) < 128:
        return b"\x04" + bytes([len(data)]) + data
    length = len(data).to_bytes((len(data).bit_length() + 7) // 8, "big")
    return b"\x04" + bytes([0x80 | len(length)]) + length + data
