"""The shape of an OpenPGP clear-signed document (RFC 4880, section 7), without verifying it.

Verified text always comes from gpg's own output; ``unverified_text`` exists for mirrors the
manifest declares unsigned, where the signature is deliberately ignored, and for metadata whose
trust rests on reconcile's signed statement instead (``TrustPolicy.open_envelope``).
"""

from __future__ import annotations

CLEARSIGN_HEADER = b"-----BEGIN PGP SIGNED MESSAGE-----"
SIGNATURE_HEADER = b"-----BEGIN PGP SIGNATURE-----"


def starts_clearsigned(data: bytes) -> bool:
    """True when ``data`` begins, at its first byte, with the clear-signed header line."""
    if not data.startswith(CLEARSIGN_HEADER):
        return False
    rest = data[len(CLEARSIGN_HEADER) :]
    return rest.startswith((b"\n", b"\r\n"))


def unverified_text(data: bytes) -> bytes:
    """The signed text of a clear-signed document, dash-escaping undone, signature ignored.

    ``ValueError`` when ``data`` is not shaped like a clear-signed document.
    """
    if not starts_clearsigned(data):
        raise ValueError("it does not begin with '-----BEGIN PGP SIGNED MESSAGE-----'")
    lines = data.splitlines(keepends=True)[1:]
    # Armor headers ("Hash: SHA512") run up to the first empty line.
    for index, line in enumerate(lines):
        if not line.strip():
            body = lines[index + 1 :]
            break
    else:
        raise ValueError("its armor headers are not followed by an empty line")
    text: list[bytes] = []
    for line in body:
        if line.rstrip(b"\r\n") == SIGNATURE_HEADER:
            # The line break before the signature belongs to the armor, not to the text.
            if text:
                text[-1] = text[-1].rstrip(b"\r\n")
            return b"".join(text)
        text.append(line[2:] if line.startswith(b"- ") else line)
    raise ValueError("it has no '-----BEGIN PGP SIGNATURE-----' line")
