"""Reading one file of a binary cache: a missing file explained in the mirror's terms, and
JSON that does not parse refused as malformed metadata (shared by layouts 2 and 3)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from reconcile import bounded_json
from reconcile.errors import NotFoundError, VerificationError
from reconcile.transport.base import Transport
from reconcile.transport.bounds import Cap

# (what was read, why it is refused) -> the layout's own malformed-metadata error
Malformed = Callable[[str, str], VerificationError]


def read_explained(
    transport: Transport,
    url: str,
    *,
    missing: str,
    hint: str,
    local_copy: Path | None = None,
    cap: Cap | None = None,
    expect_prefix: bytes = b"",
) -> bytes:
    """The bytes at ``url``, revalidated against ``local_copy`` when given. A file that is
    not there raises ``NotFoundError`` with ``missing`` as its message and ``hint``: what the
    absence means for the mirror, which the bare URL does not say. ``cap`` and
    ``expect_prefix`` bound the read (``Transport.read_bytes``)."""
    try:
        if local_copy is not None:
            return transport.read_revalidated(url, local_copy, cap=cap)
        return transport.read_bytes(url, cap=cap, expect_prefix=expect_prefix)
    except NotFoundError as exc:
        raise NotFoundError(missing, hint=hint) from exc


def json_document(
    data: str | bytes, *, source: str, malformed: Malformed, share_repeats: bool = False
) -> object:
    """``data`` parsed as JSON; bytes that are not JSON are ``malformed(source, reason)``.
    ``share_repeats``: see ``bounded_json.loads`` (the document must be treated as
    read-only)."""
    try:
        return bounded_json.loads(data, share_repeats=share_repeats)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise malformed(source, f"not valid JSON ({exc})") from exc
    except bounded_json.TooDeepError as exc:
        raise malformed(source, str(exc)) from exc


# An index this large is parsed with repeated values shared: half the memory (a 200 MB index
# took 1.4 GB parsed plainly), for a slower parse that its download dwarfs anyway.
SHARE_INDEX_ABOVE = 32 << 20


def index_text(data: bytes, *, source: str, malformed: Malformed) -> str:
    """An index's bytes as text, so that the caller can drop the bytes before parsing (a
    large index is otherwise held three times over: bytes, text and objects)."""
    try:
        return data.decode(json.detect_encoding(data))
    except UnicodeDecodeError as exc:
        raise malformed(source, f"not valid JSON ({exc})") from exc


def index_document(text: str, *, source: str, malformed: Malformed) -> object:
    """A Spack database index parsed: read-only, shared values when it is large."""
    return json_document(
        text, source=source, malformed=malformed, share_repeats=len(text) > SHARE_INDEX_ABOVE
    )
