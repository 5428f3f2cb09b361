"""The GnuPG scheme, through TrustPolicy, against real gpg: the Spack-made fixture specs, a real
throwaway keys made here (unpinned, expired, revoked, subkeys, double signatures)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import (
    FIXTURE_FPR,
    FIXTURE_KEY,
    GCC_RUNTIME_HASH,
    GREETLIB_HASH,
    HELLO_HASH,
    SHARED,
    SIGNED_CACHE,
    UNSIGNED_CACHE,
)
from throwaway_gpg import Signer, gpg, make_signer, revoke

from reconcile.errors import VerificationError
from reconcile.trust.gnupg import isolated_home
from reconcile.trust.policy import TrustPolicy
from reconcile.trust.verify import key_fingerprints

VECTOR = SHARED / "vectors" / "spack"
VECTOR_FPR = "CBAB2C1032C6FF5078049EC0FA61D50C12CAD37E"
VECTOR_SIG = (
    VECTOR / "test-debian6-core2-gcc-10.2.1-libelf-0.8.13-rqh2vuf6fqwkmipzgi2wjx352mq7y7ez"
    ".spec.json.sig"
)
STEMS = {
    HELLO_HASH: "linux-debian12-x86_64_v4-gcc-12.2.0-hello-app-3.0-" + HELLO_HASH,
    GREETLIB_HASH: "linux-debian12-x86_64_v4-gcc-12.2.0-greetlib-2.1-" + GREETLIB_HASH,
    GCC_RUNTIME_HASH: "linux-debian12-x86_64_v4-gcc-12.2.0-gcc-runtime-12.2.0-" + GCC_RUNTIME_HASH,
}
WHAT = "spec hello-app@3.0/d7r6xmz from mirror 'team'"


def signed_spec(dag_hash: str = HELLO_HASH) -> bytes:
    return (SIGNED_CACHE / "build_cache" / f"{STEMS[dag_hash]}.spec.json.sig").read_bytes()


def unsigned_spec(dag_hash: str = HELLO_HASH) -> bytes:
    return (UNSIGNED_CACHE / "build_cache" / f"{STEMS[dag_hash]}.spec.json").read_bytes()


@pytest.fixture(scope="module")
def verifier() -> Iterator[TrustPolicy]:
    with TrustPolicy.gpg({FIXTURE_FPR: FIXTURE_KEY.read_bytes()}) as pinned_fixture:
        yield pinned_fixture


@pytest.fixture(scope="module")
def keyring() -> Iterator[Path]:
    """A GNUPGHOME holding the secret keys of this module's throwaway signers."""
    with isolated_home() as home:
        yield home


@pytest.fixture(scope="module")
def other(keyring: Path) -> Signer:
    return make_signer(keyring, "Other Signer <other@example.invalid>")


def refused(verifier: TrustPolicy, data: bytes) -> str:
    with pytest.raises(VerificationError) as caught:
        verifier.verify_clearsigned(data, what=WHAT)
    message = caught.value.message
    assert message.startswith(WHAT + ": ")
    assert caught.value.hint
    return message


# --- key_fingerprints ---------------------------------------------------------------------


def test_key_fingerprints_of_the_fixture_and_vector_keys() -> None:
    assert key_fingerprints(FIXTURE_KEY.read_bytes()) == (FIXTURE_FPR,)
    assert key_fingerprints((VECTOR / f"{VECTOR_FPR}.pub").read_bytes()) == (VECTOR_FPR,)


def test_key_fingerprints_lists_every_primary_and_no_subkey(keyring: Path) -> None:
    with_subkey = make_signer(keyring, "Sub Holder <sub@example.invalid>", signing_subkey=True)
    both = FIXTURE_KEY.read_bytes() + with_subkey.public_key()
    assert key_fingerprints(both) == (FIXTURE_FPR, with_subkey.fingerprint)


def test_key_fingerprints_of_garbage_is_empty() -> None:
    assert key_fingerprints(b"not a key\n") == ()
    assert key_fingerprints(b"") == ()


# --- the fixture specs ----------------------------------------------------------------------


@pytest.mark.parametrize("dag_hash", list(STEMS))
def test_fixture_specs_verify_and_the_text_is_the_signed_json(
    verifier: TrustPolicy, dag_hash: str
) -> None:
    verified = verifier.verify_clearsigned(signed_spec(dag_hash), what=WHAT)
    assert verified.signers[0].identity == FIXTURE_FPR
    # Spack pushed the same specs unsigned: the signed text is exactly that JSON (gpg ends
    # its output with a line break).
    assert verified.payload == unsigned_spec(dag_hash) + b"\n"
    document = json.loads(verified.payload)
    assert document["spec"]["nodes"][0]["hash"] == dag_hash
    assert document["binary_cache_checksum"]["hash_algorithm"] == "sha256"


def test_one_byte_changed_in_the_signed_text_is_refused(verifier: TrustPolicy) -> None:
    data = signed_spec()
    tampered = data.replace(b'"version":"3.0"', b'"version":"3.1"', 1)
    assert tampered != data
    assert "BAD signature" in refused(verifier, tampered)


def test_one_byte_changed_in_the_signature_block_is_refused(verifier: TrustPolicy) -> None:
    data = signed_spec()
    start = data.index(b"-----BEGIN PGP SIGNATURE-----") + 40
    at = start + 100  # inside the base64 of the signature packet
    flipped = b"A" if data[at : at + 1] != b"A" else b"B"
    refused(verifier, data[:at] + flipped + data[at + 1 :])


def test_a_changed_signature_with_a_recomputed_armor_checksum_is_refused(
    verifier: TrustPolicy,
) -> None:
    """The armor's CRC no longer catches it: gpg itself must find the signature bad."""
    data = signed_spec()
    head, _, armor = data.partition(b"-----BEGIN PGP SIGNATURE-----\n")
    assert armor.startswith(b"\n")  # no armor headers, then the base64 body and "=CRC"
    body = armor.split(b"\n=", 1)[0]
    packet = bytearray(base64.b64decode(body))
    packet[-20] ^= 0x01  # a bit of the RSA signature value
    encoded = base64.b64encode(bytes(packet))
    lines = b"\n".join(encoded[i : i + 64] for i in range(0, len(encoded), 64))
    crc = base64.b64encode(_crc24(bytes(packet)).to_bytes(3, "big"))
    rebuilt = (
        head
        + b"-----BEGIN PGP SIGNATURE-----\n\n"
        + lines
        + b"\n="
        + crc
        + b"\n-----END PGP SIGNATURE-----\n"
    )
    assert "BAD signature" in refused(verifier, rebuilt)


def _crc24(data: bytes) -> int:
    """OpenPGP's armor checksum (RFC 4880, section 6.1)."""
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


# --- who signed -----------------------------------------------------------------------------


def test_a_signer_that_is_not_pinned_is_refused_and_named(
    verifier: TrustPolicy, other: Signer
) -> None:
    resigned = other.clearsign(unsigned_spec())
    message = refused(verifier, resigned)
    assert other.fingerprint in message
    assert "does not pin" in message
    assert "must pin it" in message


def test_a_pinned_throwaway_signer_is_accepted(other: Signer) -> None:
    with TrustPolicy.gpg({other.fingerprint: other.public_key()}) as pinned_other:
        verified = pinned_other.verify_clearsigned(other.clearsign(b"hello\n"), what=WHAT)
    assert verified.signers[0].identity == other.fingerprint
    assert verified.payload == b"hello\n"


def test_a_subkey_signature_maps_to_its_pinned_primary(keyring: Path) -> None:
    holder = make_signer(keyring, "Subkey Signer <subkey@example.invalid>", signing_subkey=True)
    with TrustPolicy.gpg({holder.fingerprint.lower(): holder.public_key()}) as pinned:
        verified = pinned.verify_clearsigned(holder.clearsign(b"signed by a subkey\n"), what=WHAT)
    assert verified.signers[0].identity == holder.fingerprint
    assert verified.payload == b"signed by a subkey\n"


def test_a_second_signature_is_refused_even_if_both_are_good(keyring: Path, other: Signer) -> None:
    second = make_signer(keyring, "Second <second@example.invalid>")
    both = other.clearsign(b"twice signed\n", extra=("--local-user", second.fingerprint))
    pinned = {other.fingerprint: other.public_key(), second.fingerprint: second.public_key()}
    with TrustPolicy.gpg(pinned) as both_pinned:
        assert "exactly one signature, found 2" in refused(both_pinned, both)


def test_a_key_that_has_expired_is_refused(keyring: Path) -> None:
    old = make_signer(
        keyring, "Expired <expired@example.invalid>", expire="1d", faked_time="20200101T000000"
    )
    signed = gpg(
        keyring,
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
        "--faked-system-time",
        "20200101T010000",
        "--local-user",
        old.fingerprint,
        "--clearsign",
        stdin=b"signed while the key was valid\n",
    )
    with TrustPolicy.gpg({old.fingerprint: old.public_key()}) as pinned_old:
        assert "expired" in refused(pinned_old, signed)


def test_a_revoked_key_is_refused(keyring: Path) -> None:
    doomed = make_signer(keyring, "Revoked <revoked@example.invalid>")
    signed = doomed.clearsign(b"signed before the revocation\n")
    revoke(doomed)
    with TrustPolicy.gpg({doomed.fingerprint: doomed.public_key()}) as pinned_doomed:
        assert "revoked" in refused(pinned_doomed, signed)


def test_a_sha1_signature_is_refused(other: Signer) -> None:
    weak = other.clearsign(b"weak hash\n", extra=("--digest-algo", "SHA1"))
    assert b"Hash: SHA1" in weak
    with TrustPolicy.gpg({other.fingerprint: other.public_key()}) as pinned_other:
        assert "SHA-1" in refused(pinned_other, weak)


def test_unpinned_keys_that_come_with_a_pinned_key_verify_nothing(other: Signer) -> None:
    bundle = FIXTURE_KEY.read_bytes() + other.public_key()
    with TrustPolicy.gpg({FIXTURE_FPR: bundle}) as pinned:
        assert (
            pinned.verify_clearsigned(signed_spec(), what=WHAT).signers[0].identity == FIXTURE_FPR
        )
        assert other.fingerprint in refused(pinned, other.clearsign(b"smuggled\n"))


def test_key_material_without_the_pinned_key_is_refused(other: Signer) -> None:
    with (
        TrustPolicy.gpg({FIXTURE_FPR: other.public_key()}) as policy,
        pytest.raises(VerificationError, match=FIXTURE_FPR),
    ):
        policy.verify_clearsigned(signed_spec(), what=WHAT)


# --- what is returned -----------------------------------------------------------------------


def test_text_after_the_signature_block_is_never_returned(verifier: TrustPolicy) -> None:
    appended = signed_spec() + b'\n{"spec": "substituted", "evil": true}\n'
    verified = verifier.verify_clearsigned(appended, what=WHAT)
    assert b"evil" not in verified.payload
    assert verified.payload == unsigned_spec() + b"\n"


def test_text_before_the_header_is_refused(verifier: TrustPolicy) -> None:
    prefixed = b'{"evil": true}\n' + signed_spec()
    assert "not a clear-signed document" in refused(verifier, prefixed)


def test_a_second_block_after_the_signature_is_refused(verifier: TrustPolicy) -> None:
    unsigned_block = b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nevil\n"
    refused(verifier, signed_spec() + unsigned_block)
    refused(verifier, signed_spec() + signed_spec(GREETLIB_HASH))


def test_documents_without_a_signature_are_refused(verifier: TrustPolicy) -> None:
    assert "not a clear-signed document" in refused(verifier, unsigned_spec())
    assert "not a clear-signed document" in refused(verifier, b"")
    header_only = b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n" + unsigned_spec()
    assert "no valid signature" in refused(verifier, header_only)


def test_an_inline_signed_message_is_refused(other: Signer) -> None:
    inline = gpg(
        other.home,
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
        "--local-user",
        other.fingerprint,
        "--armor",
        "--sign",
        stdin=b"inline\n",
    )
    with TrustPolicy.gpg({other.fingerprint: other.public_key()}) as pinned_other:
        assert "not a clear-signed document" in refused(pinned_other, inline)


# --- a real Spack test vector ---------------------------------------------------------------


def test_the_spack_vector_verifies_with_its_own_key_only(verifier: TrustPolicy) -> None:
    data = VECTOR_SIG.read_bytes()
    own_key = (VECTOR / f"{VECTOR_FPR}.pub").read_bytes()
    with TrustPolicy.gpg({VECTOR_FPR: own_key}) as pinned_vector:
        verified = pinned_vector.verify_clearsigned(data, what=WHAT)
    assert verified.signers[0].identity == VECTOR_FPR
    document = json.loads(verified.payload)
    assert document["spec"]["nodes"][0]["name"] == "libelf"
    assert "binary_cache_checksum" in document
    assert VECTOR_FPR in refused(verifier, data)


# --- lifetime -------------------------------------------------------------------------------


def test_close_removes_the_keyring_and_the_verifier_is_unusable() -> None:
    verifier = TrustPolicy.gpg({FIXTURE_FPR: FIXTURE_KEY.read_bytes()})
    verifier.verify_clearsigned(signed_spec(), what=WHAT)
    home = verifier._schemes["gpg"]._home  # the scheme's private GnuPG home
    assert home is not None and (home / "pubring.kbx").exists()
    verifier.close()
    verifier.close()  # twice is fine
    assert not home.exists()
    with pytest.raises(RuntimeError):
        verifier.verify_clearsigned(signed_spec(), what=WHAT)
