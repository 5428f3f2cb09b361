"""The ed25519 scheme: Nix's real signatures check the primitive; keys, signatures and the
verifier's refusals."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from reconcile.errors import VerificationError
from reconcile.trust.ed25519 import (
    Ed25519SecretKey,
    Ed25519StatementSigner,
    Ed25519Verifier,
    parse_public_key,
    parse_signature,
    verifies,
)
from tests.conftest import SHARED

NIX = SHARED / "vectors" / "nix"
NIXOS_KEY = "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY="
NARINFOS = sorted(p.name for p in NIX.glob("*.narinfo"))


def narinfo(path: Path) -> dict[str, str]:
    fields = {}
    for line in path.read_text().splitlines():
        name, _, value = line.partition(": ")
        fields[name] = value
    return fields


def nix_fingerprint(fields: dict[str, str], *, nar_size_delta: int = 0) -> bytes:
    """Nix's ``ValidPathInfo::fingerprint``: what cache.nixos.org signs."""
    references = ",".join(f"/nix/store/{ref}" for ref in sorted(fields["References"].split()))
    size = int(fields["NarSize"]) + nar_size_delta
    return f"1;{fields['StorePath']};{fields['NarHash']};{size};{references}".encode()


def test_there_are_three_vectors() -> None:
    assert len(NARINFOS) == 3


@pytest.mark.parametrize("name", NARINFOS)
def test_nix_narinfo_verifies_and_fails_with_nar_size_changed(name: str) -> None:
    fields = narinfo(NIX / name)
    key = parse_public_key(NIXOS_KEY)
    key_name, signature = parse_signature(fields["Sig"])
    assert key_name == key.name == "cache.nixos.org-1"
    assert verifies(key.raw, nix_fingerprint(fields), signature)
    assert not verifies(key.raw, nix_fingerprint(fields, nar_size_delta=1), signature)
    assert not verifies(key.raw, nix_fingerprint(fields, nar_size_delta=-1), signature)
    # The same check through the scheme the trust policy uses.
    verifier = Ed25519Verifier(keys={"ed25519:nixos": key})
    signer = verifier.verify(nix_fingerprint(fields), fields["Sig"].encode(), what=name)
    assert (signer.scheme, signer.identity) == ("ed25519", "ed25519:nixos")
    with pytest.raises(VerificationError, match="does not match the signed data"):
        verifier.verify(
            nix_fingerprint(fields, nar_size_delta=1), fields["Sig"].encode(), what=name
        )


def test_generated_key_round_trips_in_nix_text_forms() -> None:
    secret = Ed25519SecretKey.generate("site-cache-1")
    again = Ed25519SecretKey.parse(secret.text())
    assert again == secret
    public = parse_public_key(secret.public_key().text())
    signature = Ed25519StatementSigner(secret).sign_statement(b"statement")
    assert signature.startswith("site-cache-1:")
    assert verifies(public.raw, b"statement", parse_signature(signature)[1])


def test_a_secret_key_whose_halves_disagree_is_refused() -> None:
    one, two = Ed25519SecretKey.generate("a"), Ed25519SecretKey.generate("a")
    mixed = base64.b64encode(one.seed + two.public_key().raw).decode()
    with pytest.raises(ValueError, match="does not belong"):
        Ed25519SecretKey.parse(f"a:{mixed}")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=", "expected an ed25519 public key"),
        (":6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=", "expected"),
        ("a b:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=", "expected"),
        ("k:not base64!", "not base64"),
        ("k:" + base64.b64encode(b"x" * 31).decode(), "must be 32 bytes, found 31"),
        ("k:" + base64.b64encode(b"x" * 64).decode(), "must be 32 bytes, found 64"),
    ],
)
def test_malformed_public_keys_are_refused(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_public_key(text)


def test_verifier_refusals_name_every_key_tried() -> None:
    right = Ed25519SecretKey.generate("right")
    other = Ed25519SecretKey.generate("other")
    impostor = Ed25519SecretKey.generate("right")  # same name, another key
    verifier = Ed25519Verifier(
        keys={"ed25519:r": right.public_key(), "ed25519:o": other.public_key()}
    )
    good = Ed25519StatementSigner(right).sign_statement(b"m")
    assert verifier.verify(b"m", good.encode(), what="spec x").identity == "ed25519:r"
    with pytest.raises(VerificationError) as changed:
        verifier.verify(b"m2", good.encode(), what="spec x")
    assert "key ed25519:o is named 'other', not 'right'" in changed.value.message
    assert "key ed25519:r: the signature does not match the signed data" in changed.value.message
    forged = Ed25519StatementSigner(impostor).sign_statement(b"m")
    with pytest.raises(VerificationError, match="key ed25519:r: the signature does not match"):
        verifier.verify(b"m", forged.encode(), what="spec x")
    unknown = Ed25519StatementSigner(Ed25519SecretKey.generate("stranger")).sign_statement(b"m")
    with pytest.raises(VerificationError, match="'stranger' is not valid under any"):
        verifier.verify(b"m", unknown.encode(), what="spec x")
    for hostile in (b"\xff", b"right:", b"right:" + b"A" * 90, good.encode() + b"AAAA"):
        with pytest.raises(VerificationError, match="malformed ed25519 signature"):
            verifier.verify(b"m", hostile, what="spec x")
