"""Credentials for HTTP(S) mirrors: where they come from, and the rule that keeps them safe.

Looked up in this order, first found wins:
1. the mirror URL's userinfo (``https://user:secret@host/...``);
2. the environment: ``RECONCILE_MIRROR_<NAME>_USERNAME`` + ``_PASSWORD`` (basic auth) or
   ``RECONCILE_MIRROR_<NAME>_TOKEN`` (bearer), ``<NAME>`` being the manifest's mirror name
   upper-cased with every other character than A-Z and 0-9 written as ``_``;
3. ``$NETRC`` or ``~/.netrc``, by host.

Credentials only ever travel over https: a plain-http mirror with credentials in its URL or
in the environment is refused with an error (not silently sent, not silently dropped), and
netrc entries are not used for it. Secrets never appear in a repr, message or log line.
"""

from __future__ import annotations

import netrc
import os
import re
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import attrs
import requests
import requests.auth

from reconcile.errors import TransportError
from reconcile.redact import mask_credentials
from reconcile.reprs import fields_repr


def mirror_env_prefix(mirror_name: str) -> str:
    """``team-cache`` -> ``RECONCILE_MIRROR_TEAM_CACHE_``."""
    return "RECONCILE_MIRROR_" + re.sub(r"[^A-Z0-9]", "_", mirror_name.upper()) + "_"


def credential_hint(mirror_name: str | None) -> str:
    """Every way to give credentials, with the mirror's own variable names when known."""
    prefix = mirror_env_prefix(mirror_name) if mirror_name else "RECONCILE_MIRROR_<NAME>_"
    return (
        f"give credentials in the mirror URL (https only), or set {prefix}USERNAME and "
        f"{prefix}PASSWORD (or {prefix}TOKEN for a bearer token), or add the host to "
        "~/.netrc (or to the file named by $NETRC)"
    )


def strip_credentials(url: str) -> str:
    """The URL without its userinfo: what is actually sent on the request line."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal loses its brackets in ``hostname``
        host = f"[{host}]"
    if parts.port is not None:
        host += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def origin_of(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the default port filled in: where credentials may go."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


class _BearerAuth(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "_BearerAuth(token=***)"


@attrs.frozen(kw_only=True)
class Credentials:
    """One set of credentials, and where it came from (for messages: never the secret)."""

    __repr__ = fields_repr

    kind: Literal["basic", "bearer"]
    username: str  # empty for a bearer token
    secret: str = attrs.field(repr=False)
    source: str  # "the mirror URL", "environment RECONCILE_MIRROR_X_TOKEN", "netrc /x"

    def auth(self) -> requests.auth.AuthBase:
        if self.kind == "bearer":
            return _BearerAuth(self.secret)
        return requests.auth.HTTPBasicAuth(self.username, self.secret)


def _from_userinfo(url: str) -> Credentials | None:
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return None
    return Credentials(
        kind="basic",
        username=urllib.parse.unquote(parts.username or ""),
        secret=urllib.parse.unquote(parts.password or ""),
        source="the mirror URL",
    )


def _from_environment(mirror_name: str, environ: Mapping[str, str]) -> Credentials | None:
    prefix = mirror_env_prefix(mirror_name)
    # An empty variable counts as unset: CI systems set missing secrets to "" (forks).
    username = environ.get(prefix + "USERNAME") or None
    password = environ.get(prefix + "PASSWORD") or None
    token = environ.get(prefix + "TOKEN") or None
    if token is not None and (username is not None or password is not None):
        raise TransportError(
            f"mirror '{mirror_name}': both {prefix}TOKEN and {prefix}USERNAME/PASSWORD are set",
            hint=f"set either {prefix}TOKEN (bearer) or {prefix}USERNAME with "
            f"{prefix}PASSWORD (basic), not both",
        )
    if token is not None:
        return Credentials(
            kind="bearer", username="", secret=token, source=f"environment {prefix}TOKEN"
        )
    if username is None and password is None:
        return None
    if username is None or password is None:
        present, missing = (
            (prefix + "USERNAME", prefix + "PASSWORD")
            if password is None
            else (prefix + "PASSWORD", prefix + "USERNAME")
        )
        raise TransportError(
            f"mirror '{mirror_name}': {present} is set but {missing} is not",
            hint=f"set both {prefix}USERNAME and {prefix}PASSWORD, or neither",
        )
    return Credentials(
        kind="basic",
        username=username,
        secret=password,
        source=f"environment {prefix}USERNAME/{prefix}PASSWORD",
    )


def netrc_path(environ: Mapping[str, str]) -> Path:
    named = environ.get("NETRC")
    return Path(named) if named else Path.home() / ".netrc"


def _from_netrc(host: str, environ: Mapping[str, str]) -> Credentials | None:
    path = netrc_path(environ)
    if not path.is_file():
        return None
    try:
        entries = netrc.netrc(str(path))
    except netrc.NetrcParseError as exc:
        # the parser's own message may quote a token of the file, which may be a password
        raise TransportError(
            f"cannot read {path}: syntax error on line {exc.lineno}",
            hint="fix the file (lines of 'machine HOST login USER password SECRET'), or "
            "point $NETRC at another one",
        ) from None
    except OSError as exc:
        raise TransportError(
            f"cannot read {path}: {exc.strerror}",
            hint="make the file readable, or point $NETRC at another one",
        ) from None
    entry = entries.authenticators(host)
    if entry is None:
        return None
    login, _account, password = entry
    if not login and not password:
        return None
    return Credentials(kind="basic", username=login, secret=password, source=f"netrc {path}")


def resolve_credentials(
    base_url: str,
    mirror_name: str | None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Credentials | None:
    """The credentials to send to ``base_url``'s origin, or None.

    Raises ``TransportError`` when credentials are given for a plain-http URL, or when the
    environment variables are incomplete or contradictory.
    """
    env = os.environ if environ is None else environ
    scheme, host, _port = origin_of(base_url)
    found = _from_userinfo(base_url)
    if found is None and mirror_name is not None:
        found = _from_environment(mirror_name, env)
    if found is not None and scheme != "https":
        where = f"mirror '{mirror_name}'" if mirror_name else mask_credentials(base_url)
        raise TransportError(
            f"{where}: credentials from {found.source} would be sent in clear text over "
            f"plain {scheme}: {mask_credentials(base_url)}",
            hint="serve the mirror over https:// (credentials are never sent over plain "
            "http), or remove the credentials if the mirror does not need them",
        )
    if found is None and scheme == "https" and host:
        found = _from_netrc(host, env)
    return found
