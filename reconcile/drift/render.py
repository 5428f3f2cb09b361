"""A drift report as text for people, JSON for scripts (``schemas/drift.schema.json``) and
JUnit XML for CI systems (one test case per resource, a failure per drifted one)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import attrs

from reconcile.drift.findings import DriftReport, ResourceAudit

FORMAT_VERSION = 1
_HOW = {
    "fast": "fast check: type, size, mtime, mode, group and link targets; files hashed when "
    "size or mtime differ",
    "contents": "contents check: every file hashed",
}


def _finding_lines(audit: ResourceAudit) -> list[str]:
    lines = [f"{audit.resource}  {audit.location}"]
    for finding in audit.findings:
        lines.append(
            f"  {finding.severity:<7}  {finding.kind:<18} {finding.path}: {finding.detail}"
        )
    if audit.fix:
        lines.append(f"  fix: {audit.fix}")
    if audit.note:
        lines.append(f"  checked: {audit.note}")
    return lines


def render_text(report: DriftReport) -> str:
    lines: list[str] = []
    drifted = [a for a in report.ordered() if not a.clean]
    for audit in drifted:
        lines.extend(_finding_lines(audit))
        lines.append("")
    skipped = [a for a in report.audits if a.skipped]
    for audit in skipped:
        lines.append(f"{audit.resource}  {audit.location}\n  skipped: {audit.skipped}")
    if skipped:
        lines.append("")
    # a clean remote mirror was checked less deeply than the mode says: show how
    partial = [a for a in report.audits if a.clean and a.note and not a.skipped]
    for audit in partial:
        lines.append(f"{audit.resource}  {audit.location}\n  checked: {audit.note}")
    if partial:
        lines.append("")
    checked = len(report.audits) - len(skipped)
    also = f"; {len(skipped)} skipped" if skipped else ""
    if drifted:
        lines.append(
            f"Drift: {report.findings} finding{'s' if report.findings != 1 else ''} in "
            f"{len(drifted)} of {checked} resources checked{also} ({_HOW[report.mode]})."
        )
    else:
        lines.append(
            f"No drift: {checked} resource{'s' if checked != 1 else ''} checked{also} "
            f"({_HOW[report.mode]})."
        )
    return "\n".join(lines)


def report_document(report: DriftReport) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "mode": report.mode,
        "clean": report.clean,
        "findings": report.findings,
        "resources": [
            {
                "resource": a.resource,
                "location": a.location,
                "checked": a.checked,
                "clean": a.clean,
                "fix": a.fix,
                "skipped": a.skipped,
                "note": a.note,
                "findings": [attrs.asdict(f) for f in a.findings],
            }
            for a in report.ordered()
        ],
    }


def render_junit(report: DriftReport) -> bytes:
    failures = sum(1 for a in report.audits if not a.clean)
    suite = ET.Element(
        "testsuite",
        name="reconcile drift",
        tests=str(len(report.audits)),
        failures=str(failures),
        errors="0",
        skipped=str(sum(1 for a in report.audits if a.skipped)),
    )
    for audit in report.ordered():
        case = ET.SubElement(suite, "testcase", classname="reconcile.drift", name=audit.resource)
        if audit.skipped:
            ET.SubElement(case, "skipped", message=audit.skipped)
            continue
        if audit.clean:
            continue
        first = audit.findings[0]
        failure = ET.SubElement(
            case,
            "failure",
            message=f"{len(audit.findings)} finding(s): {first.kind} {first.path}",
            type=first.kind,
        )
        failure.text = "\n".join(_finding_lines(audit))
    suites = ET.Element("testsuites", name="reconcile drift")
    suites.append(suite)
    ET.indent(suites)
    document: bytes = ET.tostring(suites, encoding="utf-8", xml_declaration=True)
    return document + b"\n"
