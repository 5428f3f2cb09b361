"""``reconcile list``: what reconcile installed under the manifest's root, read from the
install records alone (no mirror is asked anything)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reconcile.cli.render import human_bytes
from reconcile.drift.declared import DECLARED, DEPENDENCY, declared_status
from reconcile.errors import ReconcileError
from reconcile.manifest.load import load_manifest
from reconcile.state.records import InstallRecord, read_records


def _row(record: InstallRecord, status: str) -> dict[str, Any]:
    return {
        "name": record.name,
        "version": record.version,
        "hash": record.hash,
        "status": status,
        "prefix": record.prefix,
        "mirror": record.mirror,
        "signer": record.signer,
        "installed_at": record.installed_at,
        "size": sum(row[3] or 0 for row in record.entries.rows),  # (path, type, mode, size, ...)
        "present": Path(record.prefix).is_dir(),
    }


def run_list(manifest: Path, *, as_json: bool) -> int:
    loaded = load_manifest(manifest)
    install = loaded.manifest.install
    if install is None:
        raise ReconcileError(
            f"{loaded.path}: the manifest has no [install] table, so nothing is installed",
            hint="add [install] with a root and specs",
            reference="plan-failed",
        )
    records = read_records(loaded.install_root())
    status = declared_status(records, install.specs)
    rows = sorted(
        (_row(r, status[h]) for h, r in records.items()),
        key=lambda row: (row["name"], row["version"], row["hash"]),
    )
    if as_json:
        print(json.dumps({"root": str(loaded.install_root()), "installed": rows}, indent=2))
        return 0
    if not rows:
        print(f"Nothing installed under {loaded.install_root()}.")
        return 0
    for row in rows:
        signer = f"signed by {row['signer'][-16:]}" if row["signer"] else "unsigned"
        missing = "" if row["present"] else "  (prefix missing)"
        print(
            f"{row['name']}@{row['version']}/{row['hash'][:7]}  {row['status']:<10}  "
            f"{human_bytes(row['size']):>9}  {row['installed_at']}  from {row['mirror']}, "
            f"{signer}{missing}"
        )
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in (DECLARED, DEPENDENCY)}
    undeclared = len(rows) - counts[DECLARED] - counts[DEPENDENCY]
    print(
        f"{len(rows)} installed: {counts[DECLARED]} declared, {counts[DEPENDENCY]} "
        f"dependencies, {undeclared} no longer declared."
    )
    return 0
