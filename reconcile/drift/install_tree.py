"""The install tree's audit: every recorded prefix against its record, and the records against
the manifest (declared specs missing, installs no longer declared, signers no longer pinned),
plus what interrupted runs left behind. Reads only; takes no lock."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from reconcile.drift.declared import (
    UNDECLARED,
    declared_status,
    missing_dependencies,
    unmatched_selectors,
)
from reconcile.drift.findings import ResourceAudit, sorted_findings
from reconcile.drift.revoked import revoked_installs
from reconcile.manifest.model import ManifestFile
from reconcile.observe.findings import (
    ADDED_KIND,
    CONTENT_KINDS,
    METADATA_KINDS,
    CheckMode,
    Finding,
)
from reconcile.observe.ignore import IgnoreRules
from reconcile.observe.prefix_drift import compare_prefix
from reconcile.state.records import InstallRecord, read_records, records_dir
from reconcile.trust.revocation import GoneSigner

STATE_FOLDER = ".reconcile"


def _resource(record: InstallRecord) -> str:
    return f"spec:{record.name}@{record.version}/{record.hash[:7]}"


_REPAIR = (
    "run 'reconcile apply': it re-stages the prefix from its verified tarball and swaps it "
    "in (files reconcile did not install are kept unless install.strict = true)"
)
_METADATA = "run 'reconcile apply': it sets the recorded modes and group back"
_ADDED = (
    "files reconcile did not install: remove them, or set install.strict = true and run "
    "'reconcile apply', which removes them"
)


def _audit_record(
    record: InstallRecord,
    *,
    mode: CheckMode,
    ignore: IgnoreRules,
    undeclared: bool,
    unpinned: bool,
    missing_deps: list[str],
    revoked: GoneSigner | None = None,
) -> ResourceAudit:
    comparison = compare_prefix(record, mode=mode, ignore=ignore)
    findings = list(comparison.findings)
    if undeclared:
        findings.append(
            Finding(
                severity="warning",
                kind="undeclared",
                path=record.prefix,
                detail="installed by reconcile, but no declared spec or closure needs it now",
            )
        )
    if unpinned:
        findings.append(
            Finding(
                severity="warning",
                kind="unpinned-signer",
                path=record.prefix,
                detail=f"signed by {record.signer}, a key the manifest no longer pins",
            )
        )
    if revoked is not None:
        findings.append(
            Finding(
                severity="error",
                kind="revoked-signer",
                path=record.prefix,
                detail=revoked.describe(),
            )
        )
    for dependency in missing_deps:
        findings.append(
            Finding(
                severity="error",
                kind="dependency-missing",
                path=record.prefix,
                detail=f"needs {dependency} at run time, which is not installed",
            )
        )
    kinds = {f.kind for f in findings}
    fix = None
    if kinds & {"prefix-missing", "dependency-missing"}:
        fix = "run 'reconcile apply': it installs what is missing"
    elif kinds & CONTENT_KINDS:
        fix = _REPAIR
    elif kinds & METADATA_KINDS:
        fix = _METADATA
    elif ADDED_KIND in kinds:
        fix = _ADDED
    if "undeclared" in kinds and fix is None:
        fix = (
            "add it to install.specs if it is still wanted; otherwise set install.prune = "
            "true and run 'reconcile apply', which removes it (if this manifest installed it)"
        )
    if "revoked-signer" in kinds and fix is None:
        fix = (
            "run 'reconcile apply': it re-verifies the install from a mirror whose signature "
            "by a key that still counts vouches for the same tarball, or reinstalls it"
        )
    if "unpinned-signer" in kinds and fix is None:
        fix = (
            "run 'reconcile apply': it re-verifies the install from a mirror whose signature "
            "by a pinned key vouches for the same tarball, or reinstalls it; or pin the key "
            "again in [[key]]"
        )
    return ResourceAudit(
        resource=_resource(record),
        location=record.prefix,
        findings=sorted_findings(findings),
        fix=fix,
        checked=comparison.checked,
    )


def _leftovers(root: Path) -> list[Finding]:
    """Staging folders and half-written records of interrupted runs."""
    found: list[Finding] = []
    staging = root / STATE_FOLDER / "staging"
    for folder, pattern in ((staging, "run-"), (records_dir(root), ".")):
        try:
            names = sorted(p.name for p in folder.iterdir())
        except FileNotFoundError:
            continue
        except OSError as exc:
            found.append(
                Finding(
                    severity="error",
                    kind="unreadable",
                    path=str(folder),
                    detail=f"cannot be listed ({exc.strerror or exc}); leftovers not checked",
                )
            )
            continue
        for name in names:
            if name.startswith(pattern) and (pattern != "." or name.endswith(".tmp")):
                found.append(
                    Finding(
                        severity="notice",
                        kind="leftover",
                        path=str(folder / name),
                        detail="left by an interrupted run",
                    )
                )
    return found


def audit_install_tree(
    manifest_file: ManifestFile,
    *,
    mode: CheckMode,
    ignore_patterns: Iterable[str] = (),
    jobs: int = 1,
) -> list[ResourceAudit]:
    install = manifest_file.manifest.install
    if install is None:
        return []
    root = manifest_file.install_root()
    records = read_records(root)
    status = declared_status(records, install.specs)
    pinned = {key.identity.upper() for key in manifest_file.manifest.keys}
    missing = missing_dependencies(records, status)
    ignore = IgnoreRules(ignore_patterns)
    revoked = {item.record.hash: item for item in revoked_installs(manifest_file, records)}

    def audit(record: InstallRecord) -> ResourceAudit:
        return _audit_record(
            record,
            mode=mode,
            ignore=ignore,
            undeclared=status[record.hash] == UNDECLARED,
            unpinned=record.signer is not None and record.signer.upper() not in pinned,
            missing_deps=missing.get(record.hash, []),
            revoked=revoked.get(record.hash),
        )

    ordered = [records[h] for h in sorted(records)]
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as workers:
        audits = list(workers.map(audit, ordered))
    root_findings = [
        Finding(
            severity="error",
            kind="not-installed",
            path=str(root),
            detail=f"install.specs declares {selector!r}, but no installed spec matches it",
        )
        for selector in unmatched_selectors(records, install.specs)
    ]
    root_findings += _leftovers(root)
    fix = None
    if any(f.kind == "not-installed" for f in root_findings):
        fix = "run 'reconcile apply' to install the declared specs"
    elif root_findings:
        fix = "the next 'reconcile apply' clears leftovers whose process is gone"
    audits.append(
        ResourceAudit(
            resource="install-root",
            location=str(root),
            findings=sorted_findings(root_findings),
            fix=fix,
            checked=len(records),
        )
    )
    return audits
