"""``reconcile generations``, ``reconcile rollback`` and ``reconcile env``: a view's
generations, switching back to one, and the shell lines that put the view to use."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from reconcile.errors import ReconcileError
from reconcile.manifest.load import load_manifest
from reconcile.manifest.model import ManifestFile, View
from reconcile.state.lock import install_root_lock
from reconcile.state.records import utc_timestamp
from reconcile.views.environment import render_environment, view_variables
from reconcile.views.generations import (
    Generation,
    ViewState,
    log_switch,
    missing_prefixes,
    read_log,
    read_view_state,
    rollback_target,
    switch,
)


def _view(loaded: ManifestFile, name: str | None) -> View:
    views = loaded.manifest.views
    if not views:
        raise ReconcileError(
            f"{loaded.path} declares no [[view]]",
            hint="add a [[view]] table with name and path, then run 'reconcile apply'",
            reference="no-such-view",
        )
    if name is None:
        return views[0]
    try:
        return loaded.manifest.view(name)
    except KeyError:
        raise ReconcileError(
            f"{loaded.path} declares no view {name!r} (declared: "
            f"{', '.join(v.name for v in views)})",
            hint="name one of the declared views with --view",
            reference="no-such-view",
        ) from None


def _generation_row(generation: Generation, state: ViewState) -> dict[str, Any]:
    return {
        "number": generation.number,
        "created": generation.created,
        "current": generation.number == state.current,
        "link": generation.contents.link,
        "files": generation.files,
        "specs": [
            {"name": s.name, "version": s.version, "hash": s.hash, "prefix": s.prefix}
            for s in generation.contents.specs
        ],
    }


def run_generations(args: argparse.Namespace, manifest: Path) -> int:
    loaded = load_manifest(manifest)
    view = _view(loaded, args.view)
    path = loaded.view_path(view)
    state = read_view_state(path)
    if args.json:
        document = {
            "view": view.name,
            "path": str(path),
            "current": state.current,
            "generations": [_generation_row(g, state) for g in state.generations],
            "switches": read_log(path),
        }
        print(json.dumps(document, indent=2))
        return 0
    if not state.generations:
        print(f"View '{view.name}' ({path}) has no generation yet: 'reconcile apply' builds it.")
        return 0
    print(f"View '{view.name}' at {path}:")
    for generation in reversed(state.generations):
        mark = "*" if generation.number == state.current else " "
        specs = ", ".join(s.label for s in generation.contents.specs) or "nothing"
        print(
            f"{mark} {generation.number:>4}  {generation.created}  {generation.contents.link}, "
            f"{generation.files} paths: {specs}"
        )
    print(f"{len(state.generations)} kept (keep = {view.keep}); * marks the current one.")
    return 0


def run_rollback(args: argparse.Namespace, manifest: Path) -> int:
    loaded = load_manifest(manifest)
    view = _view(loaded, args.view)
    path = loaded.view_path(view)
    # the install root's lock: no apply builds or prunes while the view switches
    with install_root_lock(loaded.install_root()):
        state = read_view_state(path)
        target = rollback_target(state, args.to)
        if target.number == state.current:
            print(f"View '{view.name}' is at generation {target.number} already.")
            return 0
        missing = missing_prefixes(target)
        if missing:
            raise ReconcileError(
                f"generation {target.number} of view '{view.name}' links prefixes that are "
                f"gone: {', '.join(missing)}",
                hint="roll back to a generation whose prefixes are installed "
                "('reconcile generations' lists them)",
                reference="view-prefix-missing",
            )
        switch(path, target.number)
        log_switch(
            path, when=utc_timestamp(), before=state.current, after=target.number, reason="rollback"
        )
    before = f"generation {state.current}" if state.current is not None else "nothing"
    print(f"View '{view.name}': switched from {before} to generation {target.number} ({path}).")
    return 0


def run_env(args: argparse.Namespace, manifest: Path) -> int:
    loaded = load_manifest(manifest)
    view = _view(loaded, args.view)
    path = loaded.view_path(view)
    current = read_view_state(path).current_generation
    if current is None:
        raise ReconcileError(
            f"view '{view.name}' ({path}) has no generation yet",
            hint="run 'reconcile apply' to build it",
            reference="no-such-generation",
        )
    projections = [spec.projection for spec in current.contents.specs]
    print(render_environment(view_variables(path, projections), args.shell), end="")
    return 0
