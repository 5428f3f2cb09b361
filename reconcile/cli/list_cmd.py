"""``reconcile list``: what reconcile installed under the manifest's root, read from the
install records alone (no mirror is asked anything)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reconcile.cli.render import human_bytes
from reconcile.errors import ReconcileError
from reconcile.manifest.load import load_manifest
from reconcile.spack.selector import parse_selector
from reconcile.spack.spec import SpecNode, parse_node
from reconcile.state.records import InstallRecord, read_records

# Why a spec is there: a selector names it, it is in a declared spec's run-time closure, or
# nothing in the manifest asks for it any more.
DECLARED, DEPENDENCY, UNDECLARED = "declared", "dependency", "undeclared"


def _status(records: Mapping[str, InstallRecord], specs: tuple[str, ...]) -> dict[str, str]:
    nodes: dict[str, SpecNode] = {h: parse_node({**r.spec, "hash": h}) for h, r in records.items()}
    selectors = [parse_selector(text) for text in specs]
    status = {h: UNDECLARED for h in records}
    pending = [h for h, n in nodes.items() if any(s.matches(n, nodes.get) for s in selectors)]
    for dag_hash in pending:
        status[dag_hash] = DECLARED
    seen: set[str] = set()
    while pending:
        dag_hash = pending.pop()
        if dag_hash in seen:
            continue
        seen.add(dag_hash)
        for dependency in nodes[dag_hash].runtime_dependencies():
            if dependency.hash in records:
                if status[dependency.hash] == UNDECLARED:
                    status[dependency.hash] = DEPENDENCY
                pending.append(dependency.hash)
    return status


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
        "size": sum(entry.size or 0 for entry in record.entries),
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
    status = _status(records, install.specs)
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
