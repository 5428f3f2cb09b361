"""The trust policy of one run: which keys count for which mirror, how many distinct signers
a document needs, and the signature schemes that check them.

It is built once per run from the manifest's keys (``buildcache.pinned_keys.trust_policy``)
and handed to every reader of signed metadata; readers call ``verify_clearsigned`` and get the
verified payload with its signers, without knowing which schemes exist. Key material is loaded
on first use (``load``), so a run that verifies nothing reads no key.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType

import attrs

from reconcile.errors import VerificationError
from reconcile.reprs import fields_repr
from reconcile.trust.clearsign import starts_clearsigned, unverified_text
from reconcile.trust.signers import EnvelopeScheme, SignatureScheme, Signer, normalize_fingerprint


@attrs.frozen(kw_only=True)
class TrustedKey:
    """A key the manifest declares, with the material its scheme verifies with."""

    __repr__ = fields_repr

    name: str  # the manifest's [[key]] name
    scheme: str  # "gpg", "ed25519" or "sigstore"
    # What a ``Signer`` by this key reports: gpg, the primary fingerprint; ed25519,
    # "ed25519:<[[key]] name>" (``manifest.model.Key.identity``).
    identity: str
    # gpg: the armored public key, already checked to carry ``identity``;
    # ed25519: the checked "<name>:<base64>" public key text; sigstore: a ``SigstoreKey``
    # as JSON (``SigstoreKey.material``).
    material: bytes


@attrs.frozen(kw_only=True)
class MirrorTrust:
    """Which keys count for one mirror and how many distinct ones must have signed."""

    __repr__ = fields_repr

    keys: frozenset[str] | None = None  # key names; None: every declared key
    require: int = 1


@attrs.frozen(kw_only=True)
class Opened:
    """Spack's signed metadata, opened: its payload, the envelope's signer if it counted, and
    why it did not otherwise. Not yet a decision: ``verify_statement`` makes it."""

    __repr__ = fields_repr

    payload: bytes
    signers: tuple[Signer, ...]
    problems: tuple[str, ...]


@attrs.frozen(kw_only=True)
class Verified:
    __repr__ = fields_repr

    payload: bytes  # the signed content, as the scheme extracted or checked it
    signers: tuple[Signer, ...]  # distinct, each by a key that counts for the mirror


# Each scheme's code is imported when a key of that scheme is first needed: a plan with
# nothing to verify runs no gpg and reads no key.
def _gpg_scheme(keys: Sequence[TrustedKey]) -> SignatureScheme:
    from reconcile.trust.verify import GpgVerifier

    return GpgVerifier(pinned={key.identity: key.material for key in keys})


def _ed25519_scheme(keys: Sequence[TrustedKey]) -> SignatureScheme:
    from reconcile.trust.ed25519 import Ed25519Verifier, parse_public_key

    return Ed25519Verifier(
        keys={key.identity: parse_public_key(key.material.decode("ascii")) for key in keys}
    )


def _sigstore_scheme(keys: Sequence[TrustedKey]) -> SignatureScheme:
    # sigstore (and pydantic, tuf, requests behind it) only load when a sigstore key counts
    from reconcile.trust.sigstore import SigstoreVerifier
    from reconcile.trust.sigstore_key import SigstoreKey

    return SigstoreVerifier(
        keys={key.identity: SigstoreKey.from_material(key.material) for key in keys}
    )


# Scheme name -> how to build its verifier from the keys of that scheme.
SCHEMES: Mapping[str, Callable[[Sequence[TrustedKey]], SignatureScheme]] = {
    "gpg": _gpg_scheme,
    "ed25519": _ed25519_scheme,
    "sigstore": _sigstore_scheme,
}
# The scheme whose documents carry their own signature (Spack's signed spec metadata).
ENVELOPE_SCHEME = "gpg"


class TrustPolicy:
    """Verifies signed documents for a mirror under the manifest's keys."""

    def __init__(
        self,
        load_keys: Callable[[], Sequence[TrustedKey]],
        *,
        mirrors: Mapping[str, MirrorTrust] | None = None,
        notes: Sequence[str] = (),
    ) -> None:
        """``notes``: what a refusal must also say about keys left out (revoked ones)."""
        self._load_keys = load_keys
        self._mirrors = dict(mirrors or {})
        self._notes = tuple(notes)
        self._lock = threading.Lock()
        self._keys: tuple[TrustedKey, ...] | None = None
        self._schemes: dict[str, SignatureScheme] = {}
        self._closed = False

    @classmethod
    def of_keys(
        cls, keys: Sequence[TrustedKey], *, mirrors: Mapping[str, MirrorTrust] | None = None
    ) -> TrustPolicy:
        """A policy over keys already loaded (bundles, tests)."""
        held = tuple(keys)
        return cls(lambda: held, mirrors=mirrors)

    @classmethod
    def gpg(
        cls, pinned: Mapping[str, bytes], *, mirrors: Mapping[str, MirrorTrust] | None = None
    ) -> TrustPolicy:
        """A policy over GnuPG keys given as fingerprint -> armored key, each named by its
        fingerprint (bundles, tests)."""
        keys = [
            TrustedKey(name=fpr, scheme="gpg", identity=normalize_fingerprint(fpr), material=key)
            for fpr, key in pinned.items()
        ]
        return cls.of_keys(keys, mirrors=mirrors)

    def __enter__(self) -> TrustPolicy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop every scheme (their GnuPG homes and agents go away); safe to call twice."""
        with self._lock:
            self._closed = True
            schemes, self._schemes = list(self._schemes.values()), {}
        for scheme in schemes:
            scheme.close()

    def load(self) -> tuple[TrustedKey, ...]:
        """Load the keys now (errors about key files surface here); returns them."""
        with self._lock:
            if self._closed:
                raise RuntimeError("TrustPolicy used after close()")
            if self._keys is None:
                self._keys = tuple(self._load_keys())
            return self._keys

    def public_keys(self, scheme: str) -> dict[str, bytes]:
        """identity -> key material for every declared key of ``scheme``."""
        return {key.identity: key.material for key in self.load() if key.scheme == scheme}

    def _scheme(self, name: str) -> SignatureScheme:
        keys = [key for key in self.load() if key.scheme == name]
        with self._lock:
            if self._closed:
                raise RuntimeError("TrustPolicy used after close()")
            if name not in self._schemes:
                self._schemes[name] = SCHEMES[name](keys)
            return self._schemes[name]

    def counting_keys(self, mirror: str | None) -> tuple[TrustedKey, ...]:
        """The keys whose signatures count for ``mirror`` (None: a mirror without its own
        policy, such as an unpacked bundle's)."""
        trust = self._mirrors.get(mirror or "", MirrorTrust())
        keys = self.load()
        return keys if trust.keys is None else tuple(k for k in keys if k.name in trust.keys)

    def verify_clearsigned(
        self, document: bytes, *, what: str, mirror: str | None = None
    ) -> Verified:
        """The payload of a clear-signed ``document`` with its signers, if they satisfy the
        policy for ``mirror``; ``VerificationError`` otherwise."""
        scheme = self._scheme(ENVELOPE_SCHEME)
        assert isinstance(scheme, EnvelopeScheme), "the envelope scheme must open documents"
        try:
            payload, signer = scheme.open(document, what=what)
        except VerificationError as exc:
            if self._notes:
                exc.message += "".join(f"\n  {note}" for note in self._notes)
                exc.args = (exc.message,)
            raise
        return Verified(payload=payload, signers=self._enforce([signer], mirror, what=what))

    def envelope_signer(
        self, document: bytes, *, what: str, mirror: str | None = None
    ) -> tuple[bytes, Signer]:
        """The GnuPG-verified payload of Spack's clear-signed ``document`` and its signer,
        when that signer is a gpg key that counts for ``mirror`` (None: any declared key),
        whatever ``require`` says: re-signing Spack's metadata with a new gpg key needs the
        whole document vouched for by a GnuPG key, which reconcile's statement is not.
        ``VerificationError`` otherwise."""
        if not starts_clearsigned(document):
            raise VerificationError(f"{what}: Spack's metadata carries no GnuPG signature")
        scheme = self._scheme(ENVELOPE_SCHEME)
        assert isinstance(scheme, EnvelopeScheme), "the envelope scheme must open documents"
        payload, signer = scheme.open(document, what=what)
        counting = {k.identity for k in self.counting_keys(mirror) if k.scheme == signer.scheme}
        if signer.identity not in counting:
            raise VerificationError(
                f"{what}: Spack's metadata is signed by {signer.describe()}, which does not "
                f"count for {_where(mirror)}"
            )
        return payload, signer

    def wants_statement(self, mirror: str | None) -> bool:
        """Whether a key of a detached scheme (ed25519) counts for ``mirror``: then readers
        fetch the package's sidecar and check its statement (``verify_statement``)."""
        return any(key.scheme != ENVELOPE_SCHEME for key in self.counting_keys(mirror))

    def open_envelope(self, document: bytes, *, what: str, mirror: str | None = None) -> Opened:
        """Open Spack's clear-signed ``document``. When only GnuPG keys count for ``mirror``
        this is the whole decision (as ``verify_clearsigned``); otherwise a signature GnuPG
        does not accept is noted, and the statement's signatures decide."""
        if not self.wants_statement(mirror):
            verified = self.verify_clearsigned(document, what=what, mirror=mirror)
            return Opened(payload=verified.payload, signers=verified.signers, problems=())
        if not any(key.scheme == ENVELOPE_SCHEME for key in self.counting_keys(mirror)):
            problem = f"GnuPG signature not checked: no gpg key counts for {_where(mirror)}"
            return Opened(payload=_text(document, what), signers=(), problems=(problem,))
        scheme = self._scheme(ENVELOPE_SCHEME)
        assert isinstance(scheme, EnvelopeScheme), "the envelope scheme must open documents"
        try:
            payload, signer = scheme.open(document, what=what)
        except VerificationError as exc:
            problem = f"GnuPG signature ({ENVELOPE_SCHEME}): {exc.message}"
            return Opened(payload=_text(document, what), signers=(), problems=(problem,))
        return Opened(payload=payload, signers=(signer,), problems=())

    def verify_statement(
        self,
        statement: bytes,
        signatures: Sequence[tuple[str, bytes]],
        *,
        opened: Opened,
        what: str,
        mirror: str | None = None,
        problems: Sequence[str] = (),
    ) -> Verified:
        """The signers of an opened package: its envelope's and those of the ``(scheme,
        signature)`` pairs over ``statement`` that verify, if they satisfy the policy for
        ``mirror``. The refusal lists each signature found and why each failed."""
        signers, refused = self._check_detached(statement, signatures, what=what, start=2)
        return Verified(
            payload=opened.payload,
            signers=self._enforce(
                [*opened.signers, *signers],
                mirror,
                what=what,
                refused=[*opened.problems, *problems, *refused],
            ),
        )

    def _check_detached(
        self, message: bytes, signatures: Sequence[tuple[str, bytes]], *, what: str, start: int
    ) -> tuple[list[Signer], list[str]]:
        signers: list[Signer] = []
        refused: list[str] = []
        for number, (name, signature) in enumerate(signatures, start=start):
            if name not in SCHEMES:
                refused.append(f"signature {number} ({name[:40]}): no such signature scheme")
                continue
            try:
                signers.append(self._scheme(name).verify(message, signature, what=what))
            except VerificationError as exc:
                refused.append(f"signature {number} ({name}): {exc.message}")
        return signers, refused

    def verify_detached(
        self,
        message: bytes,
        signatures: Sequence[tuple[str, bytes]],
        *,
        what: str,
        mirror: str | None = None,
    ) -> Verified:
        """``message`` with the signers of those ``(scheme, signature)`` pairs that verify, if
        they satisfy the policy for ``mirror``. The refusal lists every signature's fate."""
        signers, refused = self._check_detached(message, signatures, what=what, start=1)
        return Verified(
            payload=message, signers=self._enforce(signers, mirror, what=what, refused=refused)
        )

    def _enforce(
        self,
        signers: Sequence[Signer],
        mirror: str | None,
        *,
        what: str,
        refused: Sequence[str] = (),
    ) -> tuple[Signer, ...]:
        """The distinct signers that count, when there are enough of them."""
        trust = self._mirrors.get(mirror or "", MirrorTrust())
        counting = {(k.scheme, k.identity): k.name for k in self.counting_keys(mirror)}
        counted: dict[str, Signer] = {}
        problems = [*refused, *self._notes]
        for signer in signers:
            name = counting.get((signer.scheme, signer.identity))
            if name is None:
                problems.append(
                    f"signed by {signer.describe()}, which does not count for "
                    f"{_where(mirror)} (its keys: {', '.join(sorted(counting.values())) or 'none'})"
                )
            else:
                counted.setdefault(name, signer)
        if len(counted) >= trust.require:
            return tuple(counted.values())
        missing = sorted(set(counting.values()) - set(counted))
        found = ", ".join(sorted(counted)) or "none"
        raise VerificationError(
            f"{what}: {_where(mirror)} requires {trust.require} distinct trusted signature"
            f"{'s' if trust.require != 1 else ''}, found {len(counted)} (valid by: {found}; "
            f"missing: {', '.join(missing) or 'none'})"
            + "".join(f"\n  {problem}" for problem in problems),
            hint="the mirror's owner must sign with the keys the manifest trusts for it",
        )


def _text(document: bytes, what: str) -> bytes:
    """The signed text of a clear-signed document, unverified (other signatures decide), or
    the document itself when it is not clear-signed (a plain spec)."""
    if not starts_clearsigned(document):
        return document
    try:
        return unverified_text(document)
    except ValueError as exc:
        raise VerificationError(
            f"{what}: not a clear-signed document ({exc})",
            hint="the mirror serves a damaged file; fetch it again or use another mirror",
            reference="malformed-metadata",
        ) from None


def _where(mirror: str | None) -> str:
    return f"mirror '{mirror}'" if mirror else "this mirror"
