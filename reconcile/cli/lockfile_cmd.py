"""``reconcile lock``: resolve the manifest's selectors and write the lock file beside it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from reconcile.cache.open import open_blob_cache
from reconcile.engine import observe_and_plan
from reconcile.errors import LockFileError, ReconcileError
from reconcile.manifest.load import load_manifest
from reconcile.manifest.lockfile import (
    LockFile,
    dump_lock,
    lock_path,
    lock_to_dict,
    read_lock,
    write_lock,
)
from reconcile.plan.locking import LockUse
from reconcile.transport.registry import TransportPool, endpoints_of


def run_lock(args: argparse.Namespace, manifest: Path) -> int:
    loaded = load_manifest(manifest)
    path = lock_path(loaded.path)
    selectors = loaded.manifest.install.specs if loaded.manifest.install else ()
    update: frozenset[str] | None = frozenset()
    if args.update is not None:
        unknown = [s for s in args.update if s not in selectors]
        if unknown:
            declared = ", ".join(f"'{s}'" for s in selectors) or "none"
            raise ReconcileError(
                f"--update names {', '.join(repr(s) for s in unknown)}, which [install] specs "
                f"does not declare (declared: {declared})",
                hint="give the selectors exactly as the manifest writes them, or --update "
                "alone to resolve them all",
                reference="unknown-selector",
            )
        update = frozenset(args.update) if args.update else None
    try:
        old = read_lock(path)
    except LockFileError:
        if update is not None:
            raise  # the kept entries would come from it
        old = None  # every selector is resolved anew: the broken lock is only replaced
    use = LockUse(
        lock=old, name=path.name, mode="write", update=update, pick_newest=args.pick == "newest"
    )
    with TransportPool(endpoints_of(loaded), limits=loaded.manifest.limits) as pool:
        plan = observe_and_plan(loaded, pool, cache=open_blob_cache(loaded), lock=use)
    new = plan.resolved_lock
    assert new is not None
    changed = old is None or dump_lock(old) != dump_lock(new)
    if changed:
        write_lock(path, new)
    if args.json:
        print(json.dumps({"path": str(path), "written": changed, "lock": lock_to_dict(new)}))
        return 0
    for line in describe_changes(old, new):
        print(line)
    counts = (
        f"{_count(len(new.specs), 'selector')}, {_count(len(new.nodes), 'node')}, "
        f"{_count(len(new.sources), 'source')}"
    )
    if changed:
        print(f"Wrote {path} ({counts}); commit it with the manifest.")
    else:
        print(f"{path} is up to date ({counts}).")
    if not selectors and not new.sources:
        print("note: the manifest declares no [install] specs and no sources", file=sys.stderr)
    return 0


def describe_changes(old: LockFile | None, new: LockFile) -> list[str]:
    """One line per selector, marked like a plan: ``+`` new, ``~`` another hash, ``-`` gone."""
    lines = []
    before = {s.selector: s for s in old.specs} if old is not None else {}
    nodes = new.by_hash
    for spec in new.specs:
        label = nodes[spec.hash].short()
        size = _count(len(spec.closure), "node")
        previous = before.get(spec.selector)
        if previous is None:
            lines.append(f"+ {spec.selector} -> {label} ({size})")
        elif previous.hash != spec.hash:
            lines.append(f"~ {spec.selector} -> {label} (was /{previous.hash[:7]}; {size})")
        elif previous.closure != spec.closure:
            lines.append(f"~ {spec.selector} -> {label} (its closure changed; {size})")
        else:
            lines.append(f"  {spec.selector} -> {label} ({size})")
    declared = {s.selector for s in new.specs}
    lines.extend(
        f"- {selector} (no longer declared)" for selector in sorted(set(before) - declared)
    )
    return lines


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
