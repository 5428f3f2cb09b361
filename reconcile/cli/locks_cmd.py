"""``reconcile locks``: who holds the install root's lock, read without taking it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import attrs

from reconcile.errors import ReconcileError
from reconcile.manifest.load import load_manifest
from reconcile.state.lock import lock_holder, lock_path


def run_locks(args: argparse.Namespace, manifest: Path) -> int:
    loaded = load_manifest(manifest)
    if loaded.manifest.install is None:
        raise ReconcileError(
            f"{loaded.path}: the manifest has no [install] table, so there is no install root "
            "to lock",
            hint="add [install] with a root and specs",
            reference="plan-failed",
        )
    root = loaded.install_root()
    holder = lock_holder(root)
    if args.json:
        print(
            json.dumps(
                {
                    "install_root": str(root),
                    "lock_file": str(lock_path(root)),
                    "held": holder is not None,
                    "holder": attrs.asdict(holder) if holder is not None else None,
                },
                indent=2,
            )
        )
    elif holder is None:
        print(f"{root}: free (no run holds {lock_path(root)})")
    else:
        print(f"{root}: held by {holder.describe()}")
    return 0 if holder is None else 2
