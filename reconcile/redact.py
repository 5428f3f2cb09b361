"""Secrets kept out of every message, record, plan and log: URLs are shown masked."""

from __future__ import annotations

import urllib.parse

MASK = "***"


def _masked_query(query: str) -> str:
    """Every value of a query string masked, names kept: ``token=abc&x=1`` ->
    ``token=***&x=***``. A part without ``=`` may be a bare token, so it is masked whole."""
    parts: list[str] = []
    for part in query.split("&"):
        if not part:
            parts.append(part)
        elif "=" in part:
            parts.append(part.split("=", 1)[0] + "=" + MASK)
        else:
            parts.append(MASK)
    return "&".join(parts)


def mask_credentials(url: str) -> str:
    """``https://user:secret@host/x`` -> ``https://user:***@host/x``, a lone user part
    (often a token: ``https://TOKEN@host``) -> ``https://***@host``, and every query-string
    value (``?token=abc`` -> ``?token=***``): signed URLs and API tokens travel there."""
    try:
        parts = urllib.parse.urlsplit(url)
        username, password = parts.username, parts.password
    except ValueError:  # a malformed URL (bad port, bracket): show nothing after the scheme
        scheme = url.split("://", 1)[0] if "://" in url else ""
        return f"{scheme}://{MASK}" if scheme else MASK
    netloc = parts.netloc
    if password is not None or username is not None:
        host = netloc.rsplit("@", 1)[1]
        netloc = f"{username or ''}:{MASK}@{host}" if password is not None else f"{MASK}@{host}"
    query = _masked_query(parts.query) if parts.query else parts.query
    if netloc == parts.netloc and query == parts.query:
        return url
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
