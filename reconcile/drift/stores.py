"""Audits of what the manifest keeps outside the install tree: the source mirrors its
``[[source]]`` entries fill, local mirrors with ``[mirror.permissions]``, and cache roots.

Source mirrors are judged by the same pure function the planner uses, so drift and plan agree
on what is wrong; bookkeeping the planner would only record (an archive hashed but not yet
noted) is not drift.
"""

from __future__ import annotations

from reconcile.cache.files import sha256_of
from reconcile.cache.roots import cache_roots_of
from reconcile.cache.scan import read_record, scan_root
from reconcile.drift.findings import ResourceAudit, sorted_findings
from reconcile.engine import observe_mirror_permissions, observe_source_mirrors
from reconcile.manifest.model import ManifestFile
from reconcile.observe.findings import CheckMode, Finding
from reconcile.observe.ignore import IgnoreRules
from reconcile.plan.model import SourceAction
from reconcile.plan.sources import plan_sources


def audit_source_mirrors(manifest_file: ManifestFile, *, mode: CheckMode) -> list[ResourceAudit]:
    facts = observe_source_mirrors(manifest_file, check_contents=mode == "contents")
    audits = []
    for name, mirror_facts in facts.items():
        sources = [s for s in manifest_file.manifest.sources if s.mirror == name]
        steps = plan_sources(sources, mirror_facts, folder=manifest_file.path.parent)
        findings = [
            Finding(
                severity="error" if step.operation == "fetch" else "warning",
                kind="source-archive" if step.operation == "fetch" else "source-link",
                path=str(
                    mirror_facts.root / (step.archive if step.operation == "fetch" else step.link)
                ),
                detail=f"{step.label}: {step.reason}",
            )
            for step in steps
            if isinstance(step, SourceAction) and step.operation in ("fetch", "link")
        ]
        audits.append(
            ResourceAudit(
                resource=f"source-mirror:{name}",
                location=str(mirror_facts.root),
                findings=sorted_findings(findings),
                fix="run 'reconcile apply': it fetches, verifies and links what is missing"
                if findings
                else None,
                checked=len(sources),
            )
        )
    return audits


def audit_mirror_permissions(manifest_file: ManifestFile) -> list[ResourceAudit]:
    audits = []
    for name, facts in observe_mirror_permissions(manifest_file).items():
        ignore = IgnoreRules(manifest_file.manifest.mirror(name).drift_ignore)
        findings = []
        if not facts.exists:
            findings.append(
                Finding(
                    severity="error",
                    kind="mirror-missing",
                    path=facts.root,
                    detail="the mirror's folder is gone",
                )
            )
        for change in facts.changes:
            if ignore.ignores(change.path):
                continue
            path = facts.root if change.path == "." else f"{facts.root}/{change.path}"
            if change.old_mode != change.new_mode:
                findings.append(
                    Finding(
                        severity="warning",
                        kind="mode",
                        path=path,
                        detail=f"mode {change.old_mode:04o}, [mirror.permissions] asks for "
                        f"{change.new_mode:04o}",
                    )
                )
            if change.old_gid != change.new_gid:
                findings.append(
                    Finding(
                        severity="warning",
                        kind="group",
                        path=path,
                        detail=f"group id {change.old_gid}, [mirror.permissions] asks for "
                        f"{change.new_gid}",
                    )
                )
        audits.append(
            ResourceAudit(
                resource=f"mirror-permissions:{name}",
                location=facts.root,
                findings=sorted_findings(findings),
                fix="run 'reconcile apply': it sets the mirror's permissions" if findings else None,
                checked=1 if facts.exists else 0,
            )
        )
    return audits


def audit_cache_roots(manifest_file: ManifestFile, *, mode: CheckMode) -> list[ResourceAudit]:
    """Blobs whose size (fast) or content (contents) no longer match their name and record,
    and leftovers of writers that died."""
    audits = []
    for root in cache_roots_of(manifest_file):
        scan = scan_root(root)
        findings = []
        for entry in scan.entries:
            problem = None
            if not entry.recorded:
                problem = "it has no readable record"
            elif mode == "contents":
                actual = sha256_of(entry.path, root=root.path)
                if actual is None:
                    problem = "it cannot be read as a regular file"
                elif actual != entry.sha256:
                    problem = f"its content hashes to {actual}"
            if problem is None and entry.recorded:
                record = read_record(entry.path, entry.sha256)
                if record is not None and record.size != entry.size:
                    problem = f"{entry.size} bytes on disk, {record.size} recorded"
            if problem is not None:
                findings.append(
                    Finding(
                        severity="warning",
                        kind="corrupt-blob",
                        path=str(entry.path),
                        detail=f"{problem}; the next use evicts it and downloads the tarball again",
                    )
                )
        findings += [
            Finding(severity="notice", kind="leftover", path=str(item.path), detail=item.why)
            for item in scan.leftovers
        ]
        audits.append(
            ResourceAudit(
                resource=f"cache:{root.path}",
                location=str(root.path),
                findings=sorted_findings(findings),
                fix="'reconcile cache gc' removes leftovers; a corrupt blob is evicted and "
                "downloaded again the next time a run needs it"
                if findings
                else None,
                checked=len(scan.entries),
            )
        )
    return audits
