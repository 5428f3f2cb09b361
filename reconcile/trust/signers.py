"""Who signed something, and the one method every signature scheme implements.

A scheme (GnuPG today; ed25519 and Sigstore later) only answers "is this signature valid,
and by which of the keys I was given?". Which keys count for which mirror, and how many
distinct signers are required, is the policy's business (``reconcile.trust.policy``), so a
new scheme plugs in without changing the policy's callers.
"""

from __future__ import annotations

import datetime
from typing import Protocol, runtime_checkable

import attrs

from reconcile.reprs import fields_repr


def normalize_fingerprint(fingerprint: str) -> str:
    """``e4a1 c447 ...`` -> ``E4A1C447...`` (how fingerprints are compared everywhere)."""
    return "".join(fingerprint.split()).upper()


@attrs.frozen(kw_only=True)
class Signer:
    """One valid signature, by a key the scheme was told to trust."""

    __repr__ = fields_repr

    scheme: str  # "gpg"; later "ed25519", "sigstore"
    # gpg: the primary key's fingerprint (upper-case hex); ed25519: the key's name;
    # sigstore: the certificate's identity. Matched against ``TrustedKey.identity``.
    identity: str
    signed_at: datetime.datetime | None  # when the signature says it was made (UTC), if it says

    def describe(self) -> str:
        return f"{self.scheme} {self.identity}"

    def logged_at(self) -> str | None:
        """When a transparency log recorded the signature (UTC, ISO 8601): a time the signer
        cannot choose, so revocation may compare with it. Sigstore only; None otherwise."""
        if self.scheme != "sigstore" or self.signed_at is None:
            return None
        utc = self.signed_at.astimezone(datetime.UTC).replace(microsecond=0, tzinfo=None)
        return utc.isoformat() + "Z"


class SignatureScheme(Protocol):
    """Verifies detached signatures of one scheme against the keys it was built with."""

    @property
    def scheme(self) -> str: ...

    def verify(self, message: bytes, signature: bytes, *, what: str) -> Signer:
        """The signer of ``signature`` over ``message``; ``VerificationError`` when the
        signature is invalid or made by a key the scheme was not given. ``what`` names the
        document in messages."""
        ...

    def close(self) -> None:
        """Release what the scheme holds (a GnuPG home, an agent)."""
        ...


@runtime_checkable
class EnvelopeScheme(SignatureScheme, Protocol):
    """A scheme whose signed documents carry their message inside (GnuPG clear-signing)."""

    def open(self, document: bytes, *, what: str) -> tuple[bytes, Signer]:
        """The signed message and its signer; ``VerificationError`` as for ``verify``."""
        ...


class StatementSigner(Protocol):
    """Makes detached signatures over reconcile's statements (``reconcile.trust.statement``)
    with a secret key; the text it returns goes into a sidecar file."""

    @property
    def scheme(self) -> str: ...

    @property
    def key_name(self) -> str:
        """The name the signature carries (ed25519: the part before ``:`` of its key)."""
        ...

    def sign_statement(self, statement: bytes) -> str:
        """The signature in the scheme's text form (ed25519: ``<key name>:<base64>``)."""
        ...
