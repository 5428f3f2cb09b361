"""How a registry asks for credentials, and the answer: the ``WWW-Authenticate`` challenge
of a 401, then basic auth, or the token flow (ask the challenge's ``realm`` for a bearer
token for the ``service`` and ``scope``, with the mirror's credentials if there are any,
anonymously otherwise).

Credentials only ever go over https: to the registry when it asks for basic auth, and to the
token realm it names. A token is kept per scope for the transport's lifetime and never shown.
"""

from __future__ import annotations

import re
import urllib.parse

import attrs

from reconcile.errors import TransportError
from reconcile.redact import mask_credentials
from reconcile.reprs import fields_repr
from reconcile.transport.credentials import Credentials

# "key=value" or 'key="quoted \" value"' inside a challenge
_PARAM = re.compile(r'\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*)\s*,?')
_SCHEME = re.compile(r"\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?:\s+|$)")
# A token answer is a few kilobytes.
MAX_TOKEN_ANSWER_BYTES = 1 << 20


@attrs.frozen(kw_only=True)
class Challenge:
    __repr__ = fields_repr

    scheme: str  # lower-cased: "basic", "bearer"
    params: dict[str, str]


def parse_challenges(header: str) -> list[Challenge]:
    """The challenges of a ``WWW-Authenticate`` header (RFC 7235, without token68)."""
    challenges: list[Challenge] = []
    position = 0
    while position < len(header):
        scheme = _SCHEME.match(header, position)
        if scheme is None:
            break
        position = scheme.end()
        params: dict[str, str] = {}
        while True:
            param = _PARAM.match(header, position)
            if param is None:
                break
            value = param[2]
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            params[param[1].lower()] = value
            position = param.end()
        challenges.append(Challenge(scheme=scheme[1].lower(), params=params))
        while position < len(header) and header[position] in ", ":
            position += 1
    return challenges


def find(challenges: list[Challenge], scheme: str) -> Challenge | None:
    return next((c for c in challenges if c.scheme == scheme), None)


def token_request(
    challenge: Challenge, scope: str, where: str, *, registry_scheme: str = "https"
) -> str:
    """The realm URL to ask for a token; refused when it is not http(s), and when an https
    registry names a plain-http one (a downgrade: the token, which the registry then takes
    as the client's identity, would travel in clear text where anyone on the path could
    replace it). A plain-http registry (``oci+http://``) may name either."""
    realm = challenge.params.get("realm", "")
    parts = urllib.parse.urlsplit(realm)
    allowed = ("https",) if registry_scheme == "https" else ("http", "https")
    if parts.scheme not in allowed or not parts.hostname:
        kind = "an https URL" if registry_scheme == "https" else "an http(s) URL"
        raise TransportError(
            f"{where}: the registry names {mask_credentials(realm)!r} as its token service, "
            f"which is not {kind}",
            hint="the registry is misconfigured; ask its owner to fix its auth realm",
            reference="registry-auth-failed",
        )
    query = {"scope": challenge.params.get("scope") or scope}
    if "service" in challenge.params:
        query["service"] = challenge.params["service"]
    query["client_id"] = "reconcile"
    joined = "&".join(p for p in (parts.query, urllib.parse.urlencode(query)) if p)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, joined, ""))


def check_realm_for_credentials(url: str, credentials: Credentials | None, where: str) -> None:
    """Credentials go to a token realm only over https."""
    if credentials is not None and urllib.parse.urlsplit(url).scheme != "https":
        raise TransportError(
            f"{where}: the registry's token service {mask_credentials(url)} is plain http, "
            f"and the credentials from {credentials.source} are never sent in clear text",
            hint="use a registry whose token service is https, or remove the credentials "
            "for anonymous access",
            reference="registry-auth-failed",
        )


def token_from_answer(document: object, where: str) -> str:
    """``{"token": ...}`` or ``{"access_token": ...}`` (the two names registries use)."""
    token = None
    if isinstance(document, dict):
        token = document.get("token") or document.get("access_token")
    if not isinstance(token, str) or not token or any(c in token for c in "\r\n"):
        raise TransportError(
            f"{where}: the registry's token service answered without a usable token",
            hint="the token service is misconfigured or not a registry token service",
            reference="registry-auth-failed",
        )
    return token
