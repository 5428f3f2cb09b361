"""TrustPolicy: which keys count for which mirror, how many distinct signers are required,
detached signatures, signature times, and keys loaded once, when first needed."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import REPO
from throwaway_gpg import NO_PASSPHRASE, Signer, gpg, make_signer

from reconcile.errors import VerificationError
from reconcile.trust.gnupg import isolated_home
from reconcile.trust.policy import MirrorTrust, TrustedKey, TrustPolicy

WHAT = "spec hello-app@3.0/d7r6xmz from mirror 'team'"
MESSAGE = b"reconcile-sig-1;d7r6xmz;sha256:00;1;\n"


@pytest.fixture(scope="module")
def keyring() -> Iterator[Path]:
    with isolated_home() as home:
        yield home


@pytest.fixture(scope="module")
def alice(keyring: Path) -> Signer:
    return make_signer(keyring, "Alice <alice@example.invalid>")


@pytest.fixture(scope="module")
def bob(keyring: Path) -> Signer:
    return make_signer(keyring, "Bob <bob@example.invalid>")


def trusted(name: str, signer: Signer) -> TrustedKey:
    return TrustedKey(
        name=name, scheme="gpg", identity=signer.fingerprint, material=signer.public_key()
    )


def detached(signer: Signer, message: bytes, *extra: str) -> bytes:
    return gpg(
        signer.home,
        *NO_PASSPHRASE,
        *extra,
        "--local-user",
        signer.fingerprint,
        "--armor",
        "--detach-sign",
        stdin=message,
    )


def refusal(policy: TrustPolicy, document: bytes, mirror: str) -> str:
    with pytest.raises(VerificationError) as caught:
        policy.verify_clearsigned(document, mirror=mirror, what=WHAT)
    assert caught.value.hint
    return caught.value.message


# --- which keys count for a mirror ----------------------------------------------------------


def test_a_pinned_key_that_does_not_count_for_the_mirror_is_refused(
    alice: Signer, bob: Signer
) -> None:
    mirrors = {"team": MirrorTrust(keys=frozenset({"bob"}))}
    keys = [trusted("alice", alice), trusted("bob", bob)]
    with TrustPolicy.of_keys(keys, mirrors=mirrors) as policy:
        signed = alice.clearsign(b"hello\n")
        message = refusal(policy, signed, "team")
        assert f"gpg {alice.fingerprint}, which does not count for mirror 'team'" in message
        assert "missing: bob" in message
        # the same signature counts for a mirror without a policy of its own
        verified = policy.verify_clearsigned(signed, mirror="other", what=WHAT)
        assert [s.identity for s in verified.signers] == [alice.fingerprint]
        assert verified.payload == b"hello\n"


def test_require_two_refuses_one_valid_signature_and_names_the_missing_key(
    alice: Signer, bob: Signer
) -> None:
    mirrors = {"team": MirrorTrust(require=2)}
    with TrustPolicy.of_keys([trusted("alice", alice), trusted("bob", bob)], mirrors=mirrors) as p:
        message = refusal(p, alice.clearsign(b"hello\n"), "team")
    assert "requires 2 distinct trusted signatures, found 1" in message
    assert "valid by: alice" in message and "missing: bob" in message


def test_two_keys_with_one_identity_are_one_signer(alice: Signer) -> None:
    """Two [[key]] entries for the same key must not satisfy require = 2."""
    keys = [trusted("alice", alice), trusted("alice-again", alice)]
    detached_sig = detached(alice, MESSAGE)
    mirrors = {"team": MirrorTrust(require=2)}
    with TrustPolicy.of_keys(keys, mirrors=mirrors) as policy, pytest.raises(VerificationError):
        policy.verify_detached(
            MESSAGE, [("gpg", detached_sig), ("gpg", detached_sig)], mirror="team", what=WHAT
        )


# --- detached signatures --------------------------------------------------------------------


def test_detached_signatures_by_two_keys_satisfy_require_two(alice: Signer, bob: Signer) -> None:
    mirrors = {"team": MirrorTrust(require=2)}
    signatures = [("gpg", detached(alice, MESSAGE)), ("gpg", detached(bob, MESSAGE))]
    with TrustPolicy.of_keys([trusted("alice", alice), trusted("bob", bob)], mirrors=mirrors) as p:
        verified = p.verify_detached(MESSAGE, signatures, mirror="team", what=WHAT)
    assert verified.payload == MESSAGE
    assert {s.identity for s in verified.signers} == {alice.fingerprint, bob.fingerprint}
    assert {s.scheme for s in verified.signers} == {"gpg"}


def test_a_refusal_lists_every_signature_and_why_it_failed(alice: Signer, bob: Signer) -> None:
    mirrors = {"team": MirrorTrust(require=2)}
    signatures = [
        ("gpg", detached(alice, MESSAGE)),
        ("gpg", detached(bob, MESSAGE + b"changed")),
        ("ed25519", b"not a signature"),
        ("cosign", b"not a scheme"),
    ]
    keys = [trusted("alice", alice), trusted("bob", bob)]
    with (
        TrustPolicy.of_keys(keys, mirrors=mirrors) as policy,
        pytest.raises(VerificationError) as caught,
    ):
        policy.verify_detached(MESSAGE, signatures, mirror="team", what=WHAT)
    message = caught.value.message
    assert "found 1 (valid by: alice; missing: bob)" in message
    assert "signature 2 (gpg): " in message and "BAD signature" in message
    assert "signature 3 (ed25519): " in message and "malformed ed25519 signature" in message
    assert "signature 4 (cosign): no such signature scheme" in message


def test_a_detached_signature_over_another_message_is_refused(alice: Signer) -> None:
    signatures = [("gpg", detached(alice, MESSAGE))]
    with (
        TrustPolicy.of_keys([trusted("alice", alice)]) as policy,
        pytest.raises(VerificationError, match="BAD signature"),
    ):
        policy.verify_detached(MESSAGE + b"x", signatures, what=WHAT)


@pytest.mark.parametrize("form", ["inline", "clearsigned"])
def test_a_signed_message_given_as_a_detached_signature_is_refused(
    alice: Signer, form: str
) -> None:
    """A signed message verifies on its own, whatever the message given with it."""
    inline = (
        alice.clearsign(b"something else\n")
        if form == "clearsigned"
        else gpg(
            alice.home,
            *NO_PASSPHRASE,
            "--local-user",
            alice.fingerprint,
            "--armor",
            "--sign",
            stdin=b"something else\n",
        )
    )
    with (
        TrustPolicy.of_keys([trusted("alice", alice)]) as policy,
        pytest.raises(VerificationError, match=r"signature 1 \(gpg\): .*signature"),
    ):
        policy.verify_detached(MESSAGE, [("gpg", inline)], what=WHAT)


# --- the signer record ----------------------------------------------------------------------


def test_the_signer_carries_the_signature_time(keyring: Path) -> None:
    alice = make_signer(keyring, "Dated <dated@example.invalid>", faked_time="20200101T000000")
    when = ("--faked-system-time", "20240229T120000!")
    signed = gpg(
        alice.home,
        *NO_PASSPHRASE,
        *when,
        "--local-user",
        alice.fingerprint,
        "--clearsign",
        stdin=b"dated\n",
    )
    with TrustPolicy.of_keys([trusted("alice", alice)]) as policy:
        (signer,) = policy.verify_clearsigned(signed, what=WHAT).signers
        (detached_signer,) = policy.verify_detached(
            MESSAGE, [("gpg", detached(alice, MESSAGE, *when))], what=WHAT
        ).signers
    expected = datetime(2024, 2, 29, 12, 0, 0, tzinfo=UTC)
    assert (signer.scheme, signer.identity, signer.signed_at) == (
        "gpg",
        alice.fingerprint,
        expected,
    )
    assert detached_signer.signed_at == expected


# --- lifetime -------------------------------------------------------------------------------


def test_keys_are_loaded_once_and_only_when_first_needed(alice: Signer) -> None:
    calls: list[int] = []

    def load() -> list[TrustedKey]:
        calls.append(1)
        return [trusted("alice", alice)]

    with TrustPolicy(load) as policy:
        assert calls == []
        policy.verify_clearsigned(alice.clearsign(b"a\n"), what=WHAT)
        policy.verify_clearsigned(alice.clearsign(b"b\n"), what=WHAT)
        assert policy.public_keys("gpg") == {alice.fingerprint: alice.public_key()}
    assert calls == [1]
    with pytest.raises(RuntimeError):
        policy.verify_clearsigned(alice.clearsign(b"c\n"), what=WHAT)


def test_only_the_policy_constructs_a_scheme_verifier() -> None:
    """Callers (and tests) receive the policy; none builds a GnuPG verifier of its own."""
    sites = []
    for path in sorted([*(REPO / "reconcile").rglob("*.py"), *(REPO / "tests").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "GpgVerifier"
            ):
                sites.append(path.relative_to(REPO).as_posix())
    assert sites == ["reconcile/trust/policy.py"]
