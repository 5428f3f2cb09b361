"""The ed25519 signature scheme, in Nix's text forms, verified in-process with ``cryptography``.

A public key is ``<name>:<base64 of 32 bytes>``, a secret key ``<name>:<base64 of 64 bytes>``
(seed then public key, as ``nix-store --generate-binary-cache-key`` writes it), a signature
``<name>:<base64 of 64 bytes>``. The name says which key made a signature; the key material
decides whether it is valid. Only ``reconcile.trust.policy`` constructs the verifier.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping

import attrs

from reconcile.errors import VerificationError
from reconcile.reprs import fields_repr
from reconcile.trust.signers import Signer

SCHEME = "ed25519"
PUBLIC_KEY_BYTES = 32
SECRET_KEY_BYTES = 64
SIGNATURE_BYTES = 64
# Nix key names: what ``nix-store --generate-binary-cache-key`` accepts in practice.
_KEY_NAME = re.compile(r"[A-Za-z0-9_.+-]{1,128}")

TAMPER_HINT = (
    "the package or its sidecar changed after it was signed, or the signature was made with "
    "another key: do not use this mirror until its owner re-signs the spec"
)


@attrs.frozen(kw_only=True)
class Ed25519PublicKeyText:
    __repr__ = fields_repr

    name: str
    raw: bytes  # 32 bytes

    def text(self) -> str:
        return f"{self.name}:{base64.b64encode(self.raw).decode()}"


def _split(text: str, *, what: str, size: int) -> tuple[str, bytes]:
    name, colon, encoded = text.strip().partition(":")
    if not colon or not _KEY_NAME.fullmatch(name):
        raise ValueError(
            f"expected {what} as '<name>:<base64>', with a name of letters, digits and . _ + -"
        )
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the part after '{name}:' is not base64") from None
    if len(raw) != size:
        raise ValueError(f"{what} must be {size} bytes, found {len(raw)}")
    return name, raw


def parse_public_key(text: str) -> Ed25519PublicKeyText:
    """``<name>:<base64>`` -> the key; ``ValueError`` with a short reason otherwise."""
    name, raw = _split(text, what="an ed25519 public key", size=PUBLIC_KEY_BYTES)
    return Ed25519PublicKeyText(name=name, raw=raw)


def parse_signature(text: str) -> tuple[str, bytes]:
    """``<name>:<base64>`` -> (key name, 64 signature bytes)."""
    return _split(text, what="an ed25519 signature", size=SIGNATURE_BYTES)


def verifies(key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is a valid ed25519 signature by the 32-byte ``key`` over
    ``message``."""
    # imported here, not at the top: most runs verify no ed25519 signature, and importing
    # cryptography takes tens of milliseconds (tests/structure/test_startup_imports.py)
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


class Ed25519Verifier:
    """Accepts a signature only when it verifies under a declared key of the name it carries."""

    scheme = SCHEME

    def __init__(self, *, keys: Mapping[str, Ed25519PublicKeyText]) -> None:
        """``keys``: the identity a signature by each key is reported as -> the key."""
        self._keys = dict(keys)

    def verify(self, message: bytes, signature: bytes, *, what: str) -> Signer:
        try:
            name, raw = parse_signature(signature.decode("ascii"))
        except (UnicodeDecodeError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, UnicodeDecodeError) else str(exc)
            raise VerificationError(
                f"{what}: malformed ed25519 signature ({reason})", hint=TAMPER_HINT
            ) from None
        reasons = []
        for identity, key in sorted(self._keys.items()):
            if key.name != name:
                reasons.append(f"key {identity} is named '{key.name}', not '{name}'")
            elif verifies(key.raw, message, raw):
                return Signer(scheme=SCHEME, identity=identity, signed_at=None)
            else:
                reasons.append(f"key {identity}: the signature does not match the signed data")
        raise VerificationError(
            f"{what}: ed25519 signature by key name '{name}' is not valid under any declared "
            f"ed25519 key ({'; '.join(reasons) or 'no ed25519 key is declared'})",
            hint=TAMPER_HINT,
        )

    def close(self) -> None:
        """Nothing to release: verification runs in this process."""


# --- signing (publishing) -------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Ed25519SecretKey:
    __repr__ = fields_repr

    name: str
    seed: bytes  # the 32-byte private seed

    @classmethod
    def generate(cls, name: str) -> Ed25519SecretKey:
        if not _KEY_NAME.fullmatch(name):
            raise ValueError(f"not an ed25519 key name: {name!r}")
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        private = Ed25519PrivateKey.generate()
        return cls(name=name, seed=private.private_bytes_raw())

    @classmethod
    def parse(cls, text: str) -> Ed25519SecretKey:
        """Nix's secret key text: ``<name>:<base64 of seed + public key>``; the public half
        must belong to the seed."""
        name, raw = _split(text, what="an ed25519 secret key", size=SECRET_KEY_BYTES)
        key = cls(name=name, seed=raw[:32])
        if key.public_key().raw != raw[32:]:
            raise ValueError("its public half does not belong to its private half")
        return key

    def text(self) -> str:
        raw = self.seed + self.public_key().raw
        return f"{self.name}:{base64.b64encode(raw).decode()}"

    def public_key(self) -> Ed25519PublicKeyText:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        public = Ed25519PrivateKey.from_private_bytes(self.seed).public_key()
        raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
        return Ed25519PublicKeyText(name=self.name, raw=raw)


class Ed25519StatementSigner:
    """Signs reconcile statements with one secret key (a ``StatementSigner``)."""

    scheme = SCHEME

    def __init__(self, key: Ed25519SecretKey) -> None:
        self._key = key

    @property
    def key_name(self) -> str:
        return self._key.name

    def sign_statement(self, statement: bytes) -> str:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        signature = Ed25519PrivateKey.from_private_bytes(self._key.seed).sign(statement)
        return f"{self._key.name}:{base64.b64encode(signature).decode()}"
