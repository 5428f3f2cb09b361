"""Each of the GnuPG verifier's two pinning defences, tested alone.

The verifier deletes every unpinned key from its keyring, and it also refuses a valid
signature whose signer is not pinned. Either would stop a signature by an unpinned key on its
own, so a test that only checks the outcome passes when one of them is removed. These tests
take the other defence out of the way (a key slipped into the keyring behind the verifier's
back; a look at the keyring itself), so each fails when its own check is removed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FIXTURE_FPR, FIXTURE_KEY
from throwaway_gpg import Signer, make_signer

from reconcile.errors import VerificationError
from reconcile.trust.gnupg import isolated_home, run_gpg
from reconcile.trust.policy import SCHEMES, TrustPolicy
from reconcile.trust.verify import GpgVerifier, _listed_primaries

WHAT = "spec hello-app@3.0/d7r6xmz from mirror 'team'"


@pytest.fixture(scope="module")
def other() -> Iterator[Signer]:
    with isolated_home() as home:
        yield make_signer(home, "Unpinned <unpinned@example.invalid>")


def gpg_scheme(pinned: dict[str, bytes]) -> GpgVerifier:
    """The GnuPG scheme as the trust policy builds it (the one place that constructs it)."""
    made = SCHEMES["gpg"](TrustPolicy.gpg(pinned).load())
    assert isinstance(made, GpgVerifier)
    return made


def _keyring(verifier: GpgVerifier) -> Path:
    return verifier._require_home()


def test_a_valid_signature_by_an_unpinned_key_in_the_keyring_is_refused(other: Signer) -> None:
    # However a key reaches the verifier's keyring, a valid signature by it does not count.
    with gpg_scheme({FIXTURE_FPR: FIXTURE_KEY.read_bytes()}) as verifier:
        run_gpg(_keyring(verifier), ["--import"], stdin=other.public_key())
        assert other.fingerprint in _listed_primaries(_keyring(verifier))
        with pytest.raises(VerificationError) as refused:
            verifier.open(other.clearsign(b"smuggled\n"), what=WHAT)
    message = refused.value.message
    # gpg checked the signature (the key was there): the pin check refused it
    assert message == f"{WHAT}: signed by key {other.fingerprint}, which the manifest does not pin"


def test_unpinned_keys_that_come_with_a_pinned_key_are_not_kept(other: Signer) -> None:
    bundle = FIXTURE_KEY.read_bytes() + other.public_key()
    with gpg_scheme({FIXTURE_FPR: bundle}) as verifier:
        assert _listed_primaries(_keyring(verifier)) == (FIXTURE_FPR,)
        with pytest.raises(VerificationError) as refused:
            verifier.open(other.clearsign(b"smuggled\n"), what=WHAT)
    # gpg could not even check the signature: the key is gone from the keyring
    assert "which the manifest does not pin (the manifest must pin it" in refused.value.message
