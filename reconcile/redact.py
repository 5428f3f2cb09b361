"""Secrets kept out of every message, record, plan and log: URLs are shown masked."""

from __future__ import annotations

import urllib.parse


def mask_credentials(url: str) -> str:
    """``https://user:secret@host/x`` -> ``https://user:***@host/x``, and a lone user part
    (often a token: ``https://TOKEN@host``) -> ``https://***@host`` (for every message)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    user = parts.username or ""
    masked = f"{user}:***@{host}" if parts.password is not None else f"***@{host}"
    return urllib.parse.urlunsplit((parts.scheme, masked, parts.path, parts.query, parts.fragment))
