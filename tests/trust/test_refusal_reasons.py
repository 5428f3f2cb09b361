"""Each way GnuPG can report a signature it did not accept gets its own refusal, named after
what gpg saw: not a generic "no valid signature" that a later check would also produce."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import FIXTURE_FPR, FIXTURE_KEY, SIGNED_CACHE

from reconcile.errors import VerificationError
from reconcile.trust.gpg_status import parse_status
from reconcile.trust.policy import TrustPolicy
from reconcile.trust.verify import _refuse_bad_result

WHAT = "spec hello-app@3.0/d7r6xmz from mirror 'team'"
(SIGNED_HELLO,) = SIGNED_CACHE.glob("build_cache/*hello-app-3.0-*.spec.json.sig")
ISSUER = "0123456789ABCDEF0123456789ABCDEF01234567"


@pytest.fixture(scope="module")
def policy() -> Iterator[TrustPolicy]:
    with TrustPolicy.gpg({FIXTURE_FPR: FIXTURE_KEY.read_bytes()}) as pinned:
        yield pinned


def test_a_changed_signed_text_is_refused_as_a_bad_signature(policy: TrustPolicy) -> None:
    data = SIGNED_HELLO.read_bytes()
    tampered = data.replace(b"hello-app", b"hello-apq", 1)
    assert tampered != data
    with pytest.raises(VerificationError) as refused:
        policy.verify_clearsigned(tampered, what=WHAT)
    assert refused.value.message.startswith(f"{WHAT}: BAD signature by key ")
    assert refused.value.message.endswith(": the signed text does not match it")


def refusal(status_line: str) -> str:
    (line,) = parse_status(f"[GNUPG:] {status_line}\n").signature_results()
    with pytest.raises(VerificationError) as refused:
        _refuse_bad_result(line, what=WHAT)
    assert refused.value.hint
    return refused.value.message


def test_a_signature_gpg_cannot_check_is_refused_with_its_error_code() -> None:
    message = refusal(f"ERRSIG 89ABCDEF01234567 22 8 01 1700000000 4 {ISSUER.lower()}")
    assert message == (
        f"{WHAT}: the signature by key {ISSUER} cannot be checked (gpg error code 4)"
    )


def test_without_an_issuer_fingerprint_the_key_id_is_named() -> None:
    message = refusal("ERRSIG 89ABCDEF01234567 22 8 01 1700000000 9 -")
    assert message.startswith(f"{WHAT}: signed by key with key id 89ABCDEF01234567, which the ")


def test_a_signature_by_an_unknown_key_names_its_fingerprint() -> None:
    message = refusal(f"ERRSIG 89ABCDEF01234567 22 8 01 1700000000 9 {ISSUER}")
    assert message.startswith(f"{WHAT}: signed by key {ISSUER}, which the manifest does not pin")


@pytest.mark.parametrize(
    ("status_line", "expected"),
    [
        ("EXPKEYSIG 89ABCDEF01234567 Old <old@example.invalid>", "which has expired"),
        ("REVKEYSIG 89ABCDEF01234567 Gone <gone@example.invalid>", "which its owner has revoked"),
        ("EXPSIG 89ABCDEF01234567 Late <late@example.invalid>", "has expired"),
        ("BADSIG 89ABCDEF01234567 Evil <evil@example.invalid>", "BAD signature by key"),
    ],
)
def test_each_refused_outcome_names_the_key(status_line: str, expected: str) -> None:
    message = refusal(status_line)
    assert "89ABCDEF01234567" in message
    assert expected in message
