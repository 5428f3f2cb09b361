"""Every audit the manifest calls for, in one report."""

from __future__ import annotations

from reconcile.drift.findings import CheckMode, DriftReport
from reconcile.drift.install_tree import audit_install_tree
from reconcile.errors import ReconcileError
from reconcile.manifest.model import ManifestFile


def audit(manifest_file: ManifestFile, *, mode: CheckMode, jobs: int = 1) -> DriftReport:
    manifest = manifest_file.manifest
    if manifest.install is None:
        raise ReconcileError(
            f"{manifest_file.path}: the manifest has no [install] table, so there is no "
            "install tree to audit",
            hint="add [install] with a root and specs",
            reference="plan-failed",
        )
    audits = audit_install_tree(manifest_file, mode=mode, jobs=jobs)
    return DriftReport(mode=mode, audits=tuple(audits))
