"""What the audits of remote mirrors (s3://, oci://) share: findings named by the object's
URL (credentials masked), ignore globs matched against the key inside the mirror, and a note
that says what a listing can and cannot show."""

from __future__ import annotations

from reconcile.drift.findings import ResourceAudit, sorted_findings
from reconcile.observe.findings import Finding, Severity
from reconcile.observe.ignore import IgnoreRules
from reconcile.redact import mask_credentials

FIX = (
    "run 'reconcile apply': it publishes or syncs what the mirror lacks; remove objects the "
    "index does not list with the store's own tools"
)


class RemoteAudit:
    """Findings about one remote mirror, keyed by paths relative to its URL."""

    def __init__(self, *, resource: str, url: str, ignore: IgnoreRules, note: str) -> None:
        self.resource, self.ignore, self.note = resource, ignore, note
        self.url = mask_credentials(url).rstrip("/")
        self.findings: list[Finding] = []
        self.checked = 0

    def where(self, key: str) -> str:
        return f"{self.url}/{key}" if key else self.url

    def add(self, severity: Severity, kind: str, key: str, detail: str) -> None:
        if key and self.ignore.ignores(key):
            return
        self.findings.append(
            Finding(severity=severity, kind=kind, path=self.where(key), detail=detail)
        )

    def result(self) -> ResourceAudit:
        return ResourceAudit(
            resource=self.resource,
            location=self.url,
            findings=sorted_findings(self.findings),
            fix=FIX if self.findings else None,
            checked=self.checked,
            note=self.note,
        )
