"""What an audit finds: findings grouped by resource, most serious first."""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from reconcile.observe.findings import CheckMode, Finding, Severity
from reconcile.reprs import fields_repr

SEVERITY_RANK: dict[Severity, int] = {"error": 0, "warning": 1, "notice": 2}


@attrs.frozen(kw_only=True)
class ResourceAudit:
    """One resource that was checked (a prefix, a mirror, a cache root, ...) and what differs."""

    __repr__ = fields_repr

    resource: str  # "spec:zlib@1.3/abcdefg...", "mirror:team", "cache:ci", "install-root"
    location: str  # where it lives (prefix, folder or URL)
    findings: tuple[Finding, ...] = ()
    fix: str | None = None  # the command or step that resolves the findings
    checked: int = 0  # files, links and folders compared
    skipped: str | None = None  # why the resource was not audited at all
    note: str | None = None  # what was checked, when less than the mode says (remote mirrors)

    @property
    def clean(self) -> bool:
        """Nothing found; a skipped resource is clean only in that nothing was found."""
        return not self.findings

    @property
    def worst(self) -> int:
        return min((SEVERITY_RANK[f.severity] for f in self.findings), default=len(SEVERITY_RANK))


@attrs.frozen(kw_only=True)
class DriftReport:
    __repr__ = fields_repr

    mode: CheckMode
    audits: tuple[ResourceAudit, ...]

    @property
    def clean(self) -> bool:
        return all(a.clean for a in self.audits)

    @property
    def findings(self) -> int:
        return sum(len(a.findings) for a in self.audits)

    def ordered(self) -> tuple[ResourceAudit, ...]:
        """Drifted resources first, the most serious first; then the clean ones."""
        return tuple(sorted(self.audits, key=lambda a: (a.worst, a.resource)))


def sorted_findings(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    return tuple(sorted(findings, key=lambda f: (SEVERITY_RANK[f.severity], f.kind, f.path)))
