"""The GnuPG verifier's judgement of gpg's status lines, on status streams written out by
hand: the combinations a real gpg rarely produces, where each check must hold on its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import FIXTURE_FPR, FIXTURE_KEY

from reconcile.errors import VerificationError
from reconcile.trust.gpg_status import parse_status
from reconcile.trust.policy import SCHEMES, TrustPolicy
from reconcile.trust.verify import GpgVerifier, _primary_fingerprints

WHAT = "spec hello-app@3.0/d7r6xmz from mirror 'team'"
SUBKEY = "1111111111111111111111111111111111111111"
KEYID = FIXTURE_FPR[-16:]
GOOD = f"GOODSIG {KEYID} Fixture <fixture@example.invalid>"
PLAINTEXT = "PLAINTEXT 74 1700000000 "


def validsig(signing: str = FIXTURE_FPR, *, hash_algorithm: str = "10", primary: str = "") -> str:
    return f"VALIDSIG {signing} 2023-11-14 1700000000 0 4 0 22 {hash_algorithm} 01 {primary}"


@pytest.fixture(scope="module")
def verifier() -> Iterator[GpgVerifier]:
    made = SCHEMES["gpg"](TrustPolicy.gpg({FIXTURE_FPR: FIXTURE_KEY.read_bytes()}).load())
    assert isinstance(made, GpgVerifier)
    with made:
        yield made


def judge(verifier: GpgVerifier, *lines: str, returncode: int = 0) -> str:
    status = parse_status("".join(f"[GNUPG:] {line}\n" for line in lines))
    signer = verifier._judge(status, returncode, b"gpg: said something\n", what=WHAT, plaintexts=1)
    return signer.identity


def refused(verifier: GpgVerifier, *lines: str, returncode: int = 0) -> str:
    with pytest.raises(VerificationError) as caught:
        judge(verifier, *lines, returncode=returncode)
    assert caught.value.message.startswith(f"{WHAT}: ")
    return caught.value.message


def test_one_good_valid_signature_by_the_pinned_key_is_accepted(verifier: GpgVerifier) -> None:
    lines = ("NEWSIG", GOOD, validsig(primary=FIXTURE_FPR), PLAINTEXT)
    assert judge(verifier, *lines) == FIXTURE_FPR


def test_a_subkey_signature_counts_as_its_primary_key(verifier: GpgVerifier) -> None:
    lines = ("NEWSIG", GOOD, validsig(SUBKEY, primary=FIXTURE_FPR), PLAINTEXT)
    assert judge(verifier, *lines) == FIXTURE_FPR


def test_without_a_primary_field_the_signing_key_must_be_pinned(verifier: GpgVerifier) -> None:
    assert judge(verifier, "NEWSIG", GOOD, validsig(), PLAINTEXT) == FIXTURE_FPR
    message = refused(verifier, "NEWSIG", GOOD, validsig(SUBKEY), PLAINTEXT)
    assert f"signed by key {SUBKEY}, which the manifest does not pin" in message


def test_a_good_signature_without_a_valid_one_is_refused(verifier: GpgVerifier) -> None:
    assert "carries no valid signature" in refused(verifier, "NEWSIG", GOOD, PLAINTEXT)


def test_a_valid_signature_line_without_a_good_one_is_refused(verifier: GpgVerifier) -> None:
    lines = ("NEWSIG", validsig(primary=FIXTURE_FPR), PLAINTEXT)
    assert "carries no valid signature" in refused(verifier, *lines)


def test_a_second_signature_without_a_result_of_its_own_is_refused(
    verifier: GpgVerifier,
) -> None:
    lines = ("NEWSIG", GOOD, validsig(primary=FIXTURE_FPR), "NEWSIG", PLAINTEXT)
    assert "expected exactly one signature, found 2" in refused(verifier, *lines)


def test_two_signed_texts_are_refused(verifier: GpgVerifier) -> None:
    lines = ("NEWSIG", GOOD, validsig(primary=FIXTURE_FPR), PLAINTEXT, PLAINTEXT)
    assert "gpg found 2 signed texts" in refused(verifier, *lines)


def test_an_error_after_a_good_signature_is_refused(verifier: GpgVerifier) -> None:
    lines = ("NEWSIG", GOOD, validsig(primary=FIXTURE_FPR), PLAINTEXT)
    assert "gpg reported an error after the signature" in refused(verifier, *lines, returncode=2)


@pytest.mark.parametrize(("algorithm", "name"), [("1", "MD5"), ("2", "SHA-1"), ("3", "RIPEMD-160")])
def test_weak_hashes_are_refused(verifier: GpgVerifier, algorithm: str, name: str) -> None:
    lines = ("NEWSIG", GOOD, validsig(hash_algorithm=algorithm, primary=FIXTURE_FPR), PLAINTEXT)
    assert f"signed with the weak hash {name}" in refused(verifier, *lines)


# --- which fingerprints in a key listing are primary keys ------------------------------------

PUB = "pub:-:255:22:643A47B4E5E41176:1700000000:::-:::scSC::::::23::0:"
SUB = "sub:-:255:22:2222222222222222:1700000000::::::s::::::23:"


def fpr(fingerprint: str) -> str:
    return f"fpr:::::::::{fingerprint}:"


def test_primary_fingerprints_follow_pub_records_only() -> None:
    listing = "\n".join(["tru::1:1700000000:0:3:1:5", PUB, fpr(FIXTURE_FPR), SUB, fpr(SUBKEY)])
    assert _primary_fingerprints(listing) == (FIXTURE_FPR,)


def test_a_fingerprint_before_any_pub_record_is_not_a_primary() -> None:
    assert _primary_fingerprints("\n".join([fpr(SUBKEY), PUB, fpr(FIXTURE_FPR)])) == (FIXTURE_FPR,)


@pytest.mark.parametrize("record", [SUB, "sec:-:255:22:X:1::::::", "ssb:-:255:22:Y:1::::::"])
def test_a_pub_record_without_its_fingerprint_lends_none_to_the_next_key(record: str) -> None:
    # Only the fingerprint right after a pub record is a primary key's.
    assert _primary_fingerprints("\n".join([PUB, record, fpr(SUBKEY)])) == ()


def test_a_short_fpr_record_is_ignored() -> None:
    assert _primary_fingerprints("\n".join([PUB, "fpr::::::::"])) == ()
