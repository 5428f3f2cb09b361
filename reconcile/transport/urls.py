"""URLs below a mirror's URL. A mirror URL may carry a query string (``https://host/path?
token=...``: registries that take a token in the query): every URL derived from it puts its
path before the query and keeps the query, so each request carries the token. Only http(s)
mirror URLs may have one (``manifest/checks.py``); a fragment is never allowed.
"""

from __future__ import annotations


def split_query(url: str) -> tuple[str, str]:
    """``https://h/x?t=1`` -> (``https://h/x``, ``?t=1``); without a query, (url, "")."""
    head, mark, query = url.partition("?")
    return head, mark + query


def join_url(base: str, *parts: str) -> str:
    """Append path components to a URL, before its query (no normalisation of ``..``:
    callers pass names)."""
    head, query = split_query(base)
    url = head.rstrip("/")
    for part in parts:
        url += "/" + part.strip("/")
    return url + query


def append_to_name(url: str, suffix: str) -> str:
    """``.../index.json?t=1`` + ``.hash`` -> ``.../index.json.hash?t=1``."""
    head, query = split_query(url)
    return head + suffix + query


def relative_to(url: str, base: str) -> str | None:
    """The path of ``url`` below ``base`` ("" for ``base`` itself), or None when ``url`` is
    not derived from ``base`` (another path, or another query)."""
    head, query = split_query(url)
    base_head, base_query = split_query(base)
    if query != base_query:
        return None
    head, base_head = head.rstrip("/"), base_head.rstrip("/")
    if head == base_head:
        return ""
    if head.startswith(base_head + "/"):
        return head[len(base_head) + 1 :]
    return None
