"""Audit of each ``[[view]]``: its symlink is reconcile's and points at a complete
generation, that generation's tree is still what its metadata records (every path, each
link's target, each file's size), and every prefix it links is still there."""

from __future__ import annotations

from pathlib import Path

from reconcile.drift.findings import ResourceAudit, sorted_findings
from reconcile.errors import ReconcileError
from reconcile.manifest.model import ManifestFile
from reconcile.observe.findings import Finding
from reconcile.views.generations import generations_dir, read_view_state, tree_digest

_FIX = "run 'reconcile apply' (it builds a new generation), or 'reconcile rollback'"


def audit_views(manifest_file: ManifestFile) -> list[ResourceAudit]:
    return [_audit_view(manifest_file, view.name) for view in manifest_file.manifest.views]


def _audit_view(manifest_file: ManifestFile, name: str) -> ResourceAudit:
    path = manifest_file.view_path(manifest_file.manifest.view(name))
    resource = f"view:{name}"
    try:
        state = read_view_state(path)
    except ReconcileError as exc:
        finding = Finding(severity="error", kind="view-broken", path=str(path), detail=exc.message)
        return ResourceAudit(resource=resource, location=str(path), findings=(finding,), fix=None)
    if state.current is None:
        return ResourceAudit(
            resource=resource,
            location=str(path),
            skipped="no generation yet: 'reconcile apply' builds it",
        )
    current = state.current_generation
    if current is None:
        finding = Finding(
            severity="error",
            kind="view-broken",
            path=str(path),
            detail=f"points at generation {state.current}, which is incomplete (its tree or "
            "its metadata is gone)",
        )
        return ResourceAudit(resource=resource, location=str(path), findings=(finding,), fix=_FIX)
    findings = [
        Finding(
            severity="error",
            kind="view-prefix-missing",
            path=spec.prefix,
            detail=f"generation {current.number} links {spec.label}, whose prefix is gone",
        )
        for spec in current.contents.specs
        if not Path(spec.prefix).is_dir()
    ]
    tree = generations_dir(path) / str(current.number)
    digest, files = tree_digest(tree)
    if digest != current.tree:
        findings.append(
            Finding(
                severity="error",
                kind="view-differs",
                path=str(tree),
                detail=f"generation {current.number} holds {files} paths, its metadata "
                f"records {current.files}: something in it was added, removed or changed",
            )
        )
    return ResourceAudit(
        resource=resource,
        location=str(path),
        findings=sorted_findings(findings),
        fix=_FIX if findings else None,
        checked=files,
    )
