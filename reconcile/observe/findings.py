"""What a comparison of the disk with what reconcile recorded finds, one finding at a time.

Below the plan layer: the planner sees the same drift facts that ``reconcile drift`` reports.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Literal

import attrs

from reconcile.reprs import fields_repr

Severity = Literal["error", "warning", "notice"]
# error: content that is broken or gone; warning: metadata or bookkeeping that differs;
# notice: leftovers a later apply clears.
CheckMode = Literal["fast", "contents"]


@attrs.frozen(kw_only=True)
class Finding:
    __repr__ = fields_repr

    severity: Severity
    kind: str  # "modified", "missing", "added", "mode", "group", "link-target", ...
    path: str  # the file, folder or URL concerned (masked), or the resource's own path
    detail: str  # what was expected and what is there


# What a repair fixes by re-staging the prefix, and what it sets back in place.
CONTENT_KINDS = frozenset({"modified", "missing", "type", "link-target", "unreadable"})
METADATA_KINDS = frozenset({"mode", "group"})
ADDED_KIND = "added"


def drift_fingerprint(findings: Iterable[Finding]) -> str:
    """A stable digest of what differs in one prefix (``"clean"`` when nothing does): a
    saved plan whose prefix drifted in another way since is stale."""
    lines = sorted(f"{f.kind} {f.path}" for f in findings)
    if not lines:
        return "clean"
    return hashlib.sha256("\n".join(lines).encode("utf-8", "surrogateescape")).hexdigest()


def relative_to_prefix(path: str, prefix: str) -> str:
    """A finding's path relative to its prefix (the prefix itself is ``.``)."""
    return "." if path == prefix else path.removeprefix(prefix.rstrip("/") + "/")
