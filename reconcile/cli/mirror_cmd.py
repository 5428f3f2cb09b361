"""``reconcile mirror list NAME [SELECTOR]``: what a declared mirror offers, from its index.

Like ``spack buildcache list``: the index says which specs exist, it is not signed; every
spec that is installed or synced from it is verified on its own, from its signed metadata.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from reconcile.buildcache.layout_oci import describe_layout
from reconcile.errors import ReconcileError
from reconcile.manifest.load import load_manifest
from reconcile.observe.facts import MirrorView
from reconcile.observe.mirrors import observe_mirrors
from reconcile.redact import mask_credentials
from reconcile.spack.selector import compilers_of, parse_selector
from reconcile.transport.registry import TransportPool, endpoints_of


def run_mirror(args: argparse.Namespace, manifest: Path) -> int:
    loaded = load_manifest(manifest)
    names = [m.name for m in loaded.manifest.mirrors]
    if args.name not in names:
        raise ReconcileError(
            f"no mirror named {args.name!r} in {loaded.path} (declared: "
            f"{', '.join(names) or 'none'})",
            hint="use a name from the manifest's [[mirror]] tables",
            reference="usage",
        )
    try:
        selector = parse_selector(args.selector) if args.selector else None
    except ValueError as exc:
        raise ReconcileError(
            str(exc), hint="see docs/manifest.md#specs", reference="usage"
        ) from None
    with TransportPool(endpoints_of(loaded), limits=loaded.manifest.limits) as pool:
        views = observe_mirrors(loaded, pool)
    (view,) = [v for v in views if v.name == args.name]
    if view.problem is not None:
        raise ReconcileError(
            f"mirror '{view.name}' ({mask_credentials(view.url)}): {view.problem}",
            hint="check the mirror's url in the manifest",
            reference="transport-error",
        )
    rows = _rows(view, selector)
    if args.json:
        print(json.dumps({"mirror": view.name, "layout": view.layout, "specs": rows}, indent=2))
        return 0
    for row in rows:
        compilers = " ".join(f"%{c}" for c in row["compilers"])
        print(f"{row['name']}@{row['version']}/{row['hash'][:7]}  {row['arch']}  {compilers}")
    shown = f" matching '{args.selector}'" if selector is not None else ""
    print(f"{len(rows)} specs{shown} in mirror '{view.name}' ({describe_layout(view.layout)}).")
    return 0


def _rows(view: MirrorView, selector: Any) -> list[dict[str, Any]]:
    nodes = {h: e.node for h, e in view.index.items()}
    rows = []
    for dag_hash, entry in view.index.items():
        node = entry.node
        if not entry.in_buildcache or node.is_external:
            continue
        if selector is not None and not selector.matches(node, nodes.get):
            continue
        rows.append(
            {
                "name": node.name,
                "version": node.version,
                "hash": dag_hash,
                "arch": node.arch,
                "compilers": [f"{n}@{v or '?'}" for n, v in compilers_of(node, nodes.get)],
            }
        )
    return sorted(rows, key=lambda row: (row["name"], row["version"], row["hash"]))
