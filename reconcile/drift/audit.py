"""Every audit the manifest calls for, in one report."""

from __future__ import annotations

from reconcile.drift.binary_mirrors import audit_binary_mirrors
from reconcile.drift.findings import DriftReport
from reconcile.drift.install_tree import audit_install_tree
from reconcile.drift.stores import (
    audit_cache_roots,
    audit_mirror_permissions,
    audit_source_mirrors,
)
from reconcile.drift.views import audit_views
from reconcile.errors import ReconcileError
from reconcile.manifest.model import ManifestFile
from reconcile.observe.findings import CheckMode


def audit(manifest_file: ManifestFile, *, mode: CheckMode, jobs: int = 1) -> DriftReport:
    manifest = manifest_file.manifest
    if (
        manifest.install is None
        and not manifest.sources
        and not manifest.caches
        and not manifest.publish
        and not any(m.permissions or m.specs for m in manifest.mirrors)
    ):
        raise ReconcileError(
            f"{manifest_file.path}: the manifest has no [install] table, [[source]], "
            "[[cache]] or [mirror.permissions], so there is nothing to audit",
            hint="add [install] with a root and specs",
            reference="plan-failed",
        )
    audits = audit_install_tree(
        manifest_file, mode=mode, ignore_patterns=manifest.drift.ignore, jobs=jobs
    )
    audits += audit_binary_mirrors(manifest_file, mode=mode)
    audits += audit_mirror_permissions(manifest_file)
    audits += audit_source_mirrors(manifest_file, mode=mode)
    audits += audit_cache_roots(manifest_file, mode=mode)
    audits += audit_views(manifest_file)
    return DriftReport(mode=mode, audits=tuple(audits))
