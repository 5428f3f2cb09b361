"""Verifying GnuPG clear-signed metadata against the keys the manifest pins."""

from __future__ import annotations

from collections.abc import Mapping

import attrs


@attrs.frozen(kw_only=True)
class VerifiedText:
    text: bytes  # the signed content, as GnuPG output it (this, not the armored input, is parsed)
    fingerprint: str  # primary-key fingerprint of the signer, upper-case hex


def key_fingerprints(armored: bytes) -> tuple[str, ...]:
    """Primary-key fingerprints in an armored public key block (isolated GNUPGHOME)."""
    raise NotImplementedError


class GpgVerifier:
    """Accepts only valid signatures whose primary-key fingerprint is pinned."""

    def __init__(self, *, pinned: Mapping[str, bytes]) -> None:
        """``pinned`` maps each trusted fingerprint to its armored public key (already checked
        to carry that fingerprint)."""
        raise NotImplementedError

    def verify_clearsigned(self, data: bytes, *, what: str) -> VerifiedText:
        """``what`` names the document in errors (spec and mirror). ``VerificationError``
        for a bad, unknown-key, unpinned or missing signature."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError
