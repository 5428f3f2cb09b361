"""The fields of a ``[[key]] kind = "sigstore"`` entry: checks of single values, and what an
``identity_glob`` matches.

A pattern's ``*`` matches any run of characters within one ``/``-separated segment, ``**``
matches across segments; every other character stands for itself. A pattern must begin with
literal text (the scheme and host of a workflow URI, the user of an e-mail address): one that
begins with ``*`` would accept identities anyone can obtain.
"""

from __future__ import annotations

import re
import urllib.parse

MAX_IDENTITY_CHARS = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _plain_text(text: str, what: str) -> str | None:
    if not text.strip():
        return f"expected {what}, got an empty string"
    if text != text.strip() or _CONTROL.search(text):
        return f"{what} must not hold spaces at its ends or control characters: {text[:80]!r}"
    if len(text) > MAX_IDENTITY_CHARS:
        return f"{what} is longer than {MAX_IDENTITY_CHARS} characters"
    return None


def check_identity(text: str) -> str | None:
    """An exact certificate SAN: an e-mail address or a URI, as Fulcio writes it."""
    problem = _plain_text(text, "a certificate identity (an e-mail address or a URI)")
    if problem is None and "*" in text:
        return (
            f"identity is matched exactly, and {text[:80]!r} holds '*' (write identity_glob "
            "for a pattern)"
        )
    return problem


def check_identity_glob(text: str) -> str | None:
    problem = _plain_text(text, "an identity pattern")
    if problem is not None:
        return problem
    if "*" not in text:
        return f"{text[:80]!r} has no '*' (write identity = ... for an exact identity)"
    if text.startswith("*"):
        return (
            f"{text[:80]!r} begins with '*', so it would accept identities anyone can obtain "
            "(begin with the scheme and host, or the e-mail address's user)"
        )
    if "***" in text:
        return f"{text[:80]!r} holds '***' (expected '*' within a segment or '**' across them)"
    return None


def check_issuer(text: str) -> str | None:
    """The OIDC issuer URL the certificate names (``https://token.actions...``)."""
    problem = _plain_text(text, "an OIDC issuer URL")
    if problem is not None:
        return problem
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        return f"expected an OIDC issuer URL such as https://accounts.example, got {text[:80]!r}"
    return None


def check_instance(text: str, instances: tuple[str, ...]) -> str | None:
    if text not in instances:
        return f"unknown Sigstore instance {text!r} (expected one of: {', '.join(instances)})"
    return None


def glob_regex(pattern: str) -> re.Pattern[str]:
    """The regular expression (for ``fullmatch``) of an ``identity_glob``."""
    parts = []
    for index, piece in enumerate(pattern.split("**")):
        if index:
            parts.append(".*")
        parts.append("[^/]*".join(re.escape(literal) for literal in piece.split("*")))
    return re.compile("".join(parts), re.DOTALL)


def glob_matches(pattern: str, identity: str) -> bool:
    return glob_regex(pattern).fullmatch(identity) is not None
