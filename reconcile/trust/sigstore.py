"""The Sigstore signature scheme: a bundle (short-lived certificate, signature, transparency
log entry) over reconcile's statement, verified offline with ``sigstore``'s ``Verifier``.

A bundle counts for a declared key when, under that key's trusted root, the certificate chains
to its CA at the log's time, carries a valid SCT from its CT log, names the key's identity
(exactly or by pattern) and OIDC issuer, the log entry's inclusion proof and signed checkpoint
verify, the entry is consistent with the signature (CVE-2022-36056), and the signature is over
the statement. Only ``reconcile.trust.policy`` constructs the verifier; ``sigstore`` is
imported by this module alone, and only when a sigstore key counts.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping

from cryptography import x509
from cryptography.x509.oid import ExtensionOID, ObjectIdentifier
from sigstore.errors import Error as SigstoreError
from sigstore.models import Bundle, TrustedRoot
from sigstore.verify import Verifier
from sigstore.verify.policy import Identity as ExactIdentity
from sigstore.verify.policy import OIDCIssuer, VerificationPolicy
from sigstore_models.trustroot.v1 import TrustedRoot as TrustedRootMessage

from reconcile.errors import VerificationError
from reconcile.manifest.sigstore_fields import glob_regex
from reconcile.trust.signers import Signer
from reconcile.trust.sigstore_key import SigstoreKey

SCHEME = "sigstore"
# sigstore logs warnings (a bundle that carries a root CA, a root key it cannot load) that
# Python would print on stderr for want of a handler: reconcile's messages say what counts.
logging.getLogger("sigstore").addHandler(logging.NullHandler())
# Fulcio's OIDC issuer extensions (v1: raw bytes, v2: a DER UTF8String).
_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
# Fulcio writes some identities as this "other name".
_OTHERNAME_USERNAME = ObjectIdentifier("1.3.6.1.4.1.57264.1.7")

TAMPER_HINT = (
    "the package or its sidecar changed after it was signed, or it was signed by an identity "
    "or Sigstore instance the manifest does not trust: do not use this mirror until its owner "
    "re-signs the spec"
)


def certificate_identities(certificate: x509.Certificate) -> list[str]:
    """Every identity the certificate's SAN names (e-mail, URI, Sigstore other name)."""
    try:
        san = certificate.extensions.get_extension_for_oid(
            ExtensionOID.SUBJECT_ALTERNATIVE_NAME
        ).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    assert isinstance(san, x509.SubjectAlternativeName)
    found: list[str] = [*san.get_values_for_type(x509.RFC822Name)]
    found.extend(san.get_values_for_type(x509.UniformResourceIdentifier))
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id == _OTHERNAME_USERNAME:
            found.append(other.value.decode("utf-8", "replace"))
    return found


def certificate_issuer(certificate: x509.Certificate) -> str | None:
    """The OIDC issuer the certificate names, if it names one (for messages)."""
    for oid in (_ISSUER_V2, _ISSUER_V1):
        try:
            value = certificate.extensions.get_extension_for_oid(oid).value
        except (x509.ExtensionNotFound, ValueError):
            continue
        raw = getattr(value, "value", b"")
        if oid == _ISSUER_V2 and raw[:1] == b"\x0c" and len(raw) > 2:
            raw = raw[2:]  # a short DER UTF8String: tag, length, text
        return bytes(raw).decode("utf-8", "replace")
    return None


class _GlobIdentity:
    """An identity pattern and an exact issuer (a ``VerificationPolicy``)."""

    def __init__(self, *, pattern: str, issuer: str) -> None:
        self._pattern = pattern
        self._regex = glob_regex(pattern)
        self._issuer = OIDCIssuer(issuer)

    def verify(self, cert: x509.Certificate) -> None:
        from sigstore.errors import VerificationError as PolicyError

        self._issuer.verify(cert)
        identities = certificate_identities(cert)
        if not any(self._regex.fullmatch(identity) for identity in identities):
            shown = ", ".join(identities) or "none"
            raise PolicyError(
                f"the certificate's identities ({shown}) do not match the pattern {self._pattern}"
            )


def identity_policy(key: SigstoreKey) -> VerificationPolicy:
    if key.san is not None:
        return ExactIdentity(identity=key.san, issuer=key.issuer)
    return _GlobIdentity(pattern=key.identity_glob or "", issuer=key.issuer)


def signed_time(bundle: Bundle) -> datetime.datetime | None:
    """When the signature was logged: the Rekor integrated time, or (Rekor v2 entries, which
    have none) the latest RFC 3161 timestamp the bundle carries."""
    integrated = bundle.log_entry._inner.integrated_time
    if integrated:
        return datetime.datetime.fromtimestamp(int(integrated), tz=datetime.UTC)
    data = bundle.verification_material.timestamp_verification_data
    times = [response.tst_info.gen_time for response in (data.rfc3161_timestamps if data else [])]
    return max(times).astimezone(datetime.UTC) if times else None


def parse_bundle(signature: bytes) -> Bundle:
    """The bundle in a sidecar's signature text; ``ValueError`` with a short reason."""
    try:
        return Bundle.from_json(signature)
    # sigstore's parsers raise many kinds of errors on hostile input; all mean "not a bundle"
    except Exception as exc:
        raise ValueError(_first_line(exc)) from None


class SigstoreVerifier:
    """Accepts a bundle when it verifies under one of the declared sigstore keys."""

    scheme = SCHEME

    def __init__(self, *, keys: Mapping[str, SigstoreKey]) -> None:
        """``keys``: the identity a signature by each key is reported as -> the key."""
        self._keys = dict(keys)
        self._verifiers: dict[str, Verifier] = {}

    def _verifier(self, identity: str, key: SigstoreKey) -> Verifier:
        if identity not in self._verifiers:
            root = TrustedRoot(TrustedRootMessage.from_json(key.trusted_root))
            self._verifiers[identity] = Verifier(trusted_root=root)
        return self._verifiers[identity]

    def verify(self, message: bytes, signature: bytes, *, what: str) -> Signer:
        try:
            bundle = parse_bundle(signature)
        except ValueError as exc:
            raise VerificationError(
                f"{what}: malformed Sigstore bundle ({exc})", hint=TAMPER_HINT
            ) from None
        certificate = bundle.signing_certificate
        signer = ", ".join(certificate_identities(certificate)) or "no identity"
        issuer = certificate_issuer(certificate) or "no issuer"
        if bundle._dsse_envelope is not None:
            raise VerificationError(
                f"{what}: the Sigstore bundle by {signer} holds a DSSE envelope (an "
                "attestation), not a signature over the statement",
                hint=TAMPER_HINT,
            )
        reasons = []
        for identity, key in sorted(self._keys.items()):
            name = identity.partition(":")[2] or identity
            try:
                self._verifier(identity, key).verify_artifact(message, bundle, identity_policy(key))
            # sigstore raises its own errors, and others for malformed parts of a bundle
            except (SigstoreError, ValueError, TypeError, KeyError) as exc:
                reasons.append(f"key '{name}' ({key.describe_identity()}): {_first_line(exc)}")
                continue
            logged = signed_time(bundle)
            if key.revoked_after is not None and (logged is None or logged >= key.revoked_after):
                when = logged.isoformat() if logged else "at an unknown time"
                reasons.append(
                    f"key '{name}' is revoked after {key.revoked_after.isoformat()} and this "
                    f"signature was logged {when}"
                )
                continue
            return Signer(scheme=SCHEME, identity=identity, signed_at=logged)
        raise VerificationError(
            f"{what}: Sigstore signature by {signer} (issuer {issuer}) is not valid under any "
            f"declared sigstore key ({'; '.join(reasons) or 'no sigstore key is declared'})",
            hint=TAMPER_HINT,
        )

    def close(self) -> None:
        """Nothing to release: verification runs in this process, offline."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:400]
