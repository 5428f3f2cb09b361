"""unverified_text: the signed text of a clear-signed document, for mirrors declared unsigned."""

from __future__ import annotations

import pytest
from conftest import HELLO_HASH, SIGNED_CACHE, UNSIGNED_CACHE

from reconcile.trust.clearsign import starts_clearsigned, unverified_text

STEM = "linux-debian12-x86_64_v4-gcc-12.2.0-hello-app-3.0-" + HELLO_HASH


def test_the_fixture_signature_wraps_the_unsigned_json() -> None:
    signed = (SIGNED_CACHE / "build_cache" / f"{STEM}.spec.json.sig").read_bytes()
    unsigned = (UNSIGNED_CACHE / "build_cache" / f"{STEM}.spec.json").read_bytes()
    assert starts_clearsigned(signed)
    assert unverified_text(signed) == unsigned


def test_dash_escaping_and_crlf_are_undone() -> None:
    document = (
        b"-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA512\r\n\r\n"
        b"- -----BEGIN not armor\r\nplain\r\n"
        b"-----BEGIN PGP SIGNATURE-----\r\n\r\nAAAA\r\n-----END PGP SIGNATURE-----\r\n"
    )
    assert unverified_text(document) == b"-----BEGIN not armor\r\nplain"


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b'{"spec": {}}', "does not begin"),
        (b"x-----BEGIN PGP SIGNED MESSAGE-----\n\ntext\n", "does not begin"),
        (b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n", "empty line"),
        (b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\ntext\n", "no '-----BEGIN PGP SIG"),
    ],
)
def test_malformed_documents(document: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        unverified_text(document)
