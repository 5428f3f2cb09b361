"""The private Sigstore instance verifies end to end under its own trusted root, and each part
a verifier must check refuses when it is wrong: the certificate chain, the SCT, the identity
and issuer, the inclusion proof, the checkpoint, the signed entry timestamp, the entry's
consistency with the signature, and the certificate's lifetime at the log's time."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from reconcile.errors import VerificationError
from reconcile.trust.policy import TrustedKey, TrustPolicy, Verified
from reconcile.trust.sigstore_key import SigstoreKey
from tests.trust.private_sigstore import SIGNED_AT, PrivateSigstore, bundle_json

IDENTITY = "https://ci.example/site/stack/.ci/release.yml@refs/tags/v1"
ISSUER = "https://issuer.ci.example"
REPO = Path(__file__).resolve().parents[2]
MESSAGE = b"reconcile-sig-1;" + b"a" * 32 + b";sha256:" + b"0" * 64 + b";1;"


@pytest.fixture(scope="module")
def instance() -> PrivateSigstore:
    return PrivateSigstore()


def verify(instance: PrivateSigstore, bundle: bytes, message: bytes = MESSAGE) -> Verified:
    material = SigstoreKey(
        san=IDENTITY,
        identity_glob=None,
        issuer=ISSUER,
        trusted_root=instance.trusted_root_json(),
        root_origin="private",
    ).material()
    key = TrustedKey(name="ci", scheme="sigstore", identity="sigstore:ci", material=material)
    with TrustPolicy.of_keys([key]) as policy:
        return policy.verify_detached(message, [("sigstore", bundle)], what="statement")


def sign(instance: PrivateSigstore, **options: Any) -> bytes:
    return instance.sign(MESSAGE, identity=IDENTITY, issuer=ISSUER, **options)


def test_a_private_bundle_verifies_with_the_log_time(instance: PrivateSigstore) -> None:
    [signer] = verify(instance, sign(instance)).signers
    assert (signer.scheme, signer.identity, signer.signed_at) == (
        "sigstore",
        "sigstore:ci",
        SIGNED_AT,
    )
    # An e-mail identity, as a person's login would give.
    bundle = instance.sign(MESSAGE, identity="me@example.com", issuer=ISSUER)
    with pytest.raises(VerificationError, match="SANs do not match"):
        verify(instance, bundle)


def _edit(bundle: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    document = json.loads(bundle)
    change(document)
    return json.dumps(document).encode()


def _entry(document: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = document["verificationMaterial"]["tlogEntries"][0]
    return entry


def _flip(text: str) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[len(raw) // 2] ^= 1
    return base64.b64encode(bytes(raw)).decode()


def _flip_proof_hash(document: dict[str, Any]) -> None:
    proof = _entry(document)["inclusionProof"]
    proof["hashes"][0] = _flip(proof["hashes"][0])


def _flip_set(document: dict[str, Any]) -> None:
    promise = _entry(document)["inclusionPromise"]
    promise["signedEntryTimestamp"] = _flip(promise["signedEntryTimestamp"])


def _move_integrated_time(document: dict[str, Any]) -> None:
    _entry(document)["integratedTime"] = str(int(SIGNED_AT.timestamp()) + 60)


def _flip_signature(document: dict[str, Any]) -> None:
    signature = document["messageSignature"]
    signature["signature"] = _flip(signature["signature"])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_flip_proof_hash, "inclusion proof"),
        (_flip_set, "inclusion promise"),
        (_move_integrated_time, "inclusion promise"),
        (_flip_signature, "Signature is invalid"),
    ],
    ids=["proof-hash", "signed-entry-timestamp", "integrated-time", "signature"],
)
def test_a_changed_part_of_the_bundle_is_refused(
    instance: PrivateSigstore, change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    with pytest.raises(VerificationError, match=expected):
        verify(instance, _edit(sign(instance), change))


def test_an_sct_from_another_ct_log_is_refused(instance: PrivateSigstore) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(VerificationError, match="SCT"):
        verify(instance, sign(instance, sct_key=other))


def test_a_certificate_from_another_ca_is_refused(instance: PrivateSigstore) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(VerificationError, match="certificate chain"):
        verify(instance, sign(instance, ca_key=other))


def test_a_checkpoint_signed_by_another_log_key_is_refused(instance: PrivateSigstore) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    certificate = instance.issue(IDENTITY, ISSUER, ephemeral.public_key())
    signature = ephemeral.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    digest = hashlib.sha256(MESSAGE).digest()
    entry = instance.log_entry(certificate, signature, digest, log_key=other)
    with pytest.raises(VerificationError, match="checkpoint"):
        verify(instance, bundle_json(certificate, signature, digest, entry))


def test_a_certificate_expired_when_logged_is_refused(instance: PrivateSigstore) -> None:
    """Logged 20 minutes after issuance, the certificate lived 10."""
    late = SIGNED_AT + datetime.timedelta(minutes=20)
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    certificate = instance.issue(IDENTITY, ISSUER, ephemeral.public_key())
    signature = ephemeral.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    digest = hashlib.sha256(MESSAGE).digest()
    entry = instance.log_entry(certificate, signature, digest, at=late)
    with pytest.raises(VerificationError, match="failed to build timestamp certificate chain"):
        verify(instance, bundle_json(certificate, signature, digest, entry))


def test_an_entry_for_another_signature_is_refused(instance: PrivateSigstore) -> None:
    """CVE-2022-36056: a valid entry, logged for another signature by the same certificate."""
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    certificate = instance.issue(IDENTITY, ISSUER, ephemeral.public_key())
    signature = ephemeral.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    other_message = MESSAGE + b"x"
    other_signature = ephemeral.sign(other_message, ec.ECDSA(hashes.SHA256()))
    entry = instance.log_entry(certificate, other_signature, hashlib.sha256(other_message).digest())
    bundle = bundle_json(certificate, signature, hashlib.sha256(MESSAGE).digest(), entry)
    with pytest.raises(VerificationError, match="inconsistent with other materials"):
        verify(instance, bundle)


def test_another_message_is_refused(instance: PrivateSigstore) -> None:
    with pytest.raises(VerificationError, match="Bundle message digest mismatch"):
        verify(instance, sign(instance), MESSAGE.replace(b";1;", b";2;"))


def test_a_v01_bundle_with_its_ca_in_the_chain_verifies_and_prints_nothing(
    instance: PrivateSigstore, tmp_path: Path
) -> None:
    """sigstore warns through logging about a root CA inside a bundle, which Python prints on
    stderr when nothing handles it (as in the CLI, outside pytest's log capture); reconcile's
    output is its own (the trusted root decides, whatever the bundle carries)."""

    def as_v01(document: dict[str, Any]) -> None:
        material = document["verificationMaterial"]
        leaf = material.pop("certificate")
        ca = base64.b64encode(instance.ca_cert.public_bytes(serialization.Encoding.DER))
        material["x509CertificateChain"] = {"certificates": [leaf, {"rawBytes": ca.decode()}]}
        document["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.1"

    (tmp_path / "bundle.json").write_bytes(_edit(sign(instance), as_v01))
    (tmp_path / "root.json").write_text(instance.trusted_root_json())
    script = f"""
import datetime, sys
from pathlib import Path
from reconcile.trust.policy import TrustedKey, TrustPolicy
from reconcile.trust.sigstore_key import SigstoreKey
folder = Path(sys.argv[1])
material = SigstoreKey(san={IDENTITY!r}, identity_glob=None, issuer={ISSUER!r},
    trusted_root=(folder / "root.json").read_text(), root_origin="t").material()
key = TrustedKey(name="ci", scheme="sigstore", identity="sigstore:ci", material=material)
with TrustPolicy.of_keys([key]) as policy:
    bundle = (folder / "bundle.json").read_bytes()
    verified = policy.verify_detached({MESSAGE!r}, [("sigstore", bundle)], what="s")
print(verified.signers[0].identity)
"""
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "sigstore:ci\n", "")
