"""The commands behind the CLI: each returns an exit code and prints its own output."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from reconcile.apply.executor import ApplyResult, apply_plan
from reconcile.cli.render import human_bytes, render_plan
from reconcile.errors import ReconcileError, StalePlanError
from reconcile.manifest.load import load_manifest
from reconcile.observe.gather import observe_and_plan
from reconcile.plan.model import Plan
from reconcile.plan.serialize import plan_to_dict, read_plan, stale_resources, write_plan
from reconcile.transport.registry import TransportPool, endpoints_of

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


def validate(manifest: Path) -> int:
    loaded = load_manifest(manifest)
    m = loaded.manifest
    specs = len(m.install.specs) if m.install else 0
    print(
        f"{manifest}: valid ({len(m.mirrors)} mirror{'s' if len(m.mirrors) != 1 else ''}, "
        f"{len(m.keys)} key{'s' if len(m.keys) != 1 else ''}, "
        f"{specs} spec selector{'s' if specs != 1 else ''})"
    )
    return EXIT_OK


def plan(
    manifest: Path, *, as_json: bool, detailed_exitcode: bool, out: Path | None, verbose: bool
) -> int:
    loaded = load_manifest(manifest)
    with TransportPool(endpoints_of(loaded)) as pool:
        result = observe_and_plan(loaded, pool)
    if out is not None:
        write_plan(result, out)
    if as_json:
        print(json.dumps(plan_to_dict(result), indent=1))
    else:
        print(render_plan(result, verbose=verbose))
        if out is not None:
            print(f"Saved the plan to {out}; run 'reconcile apply {out}' to carry it out.")
    return EXIT_CHANGES if detailed_exitcode and not result.is_empty else EXIT_OK


def _result_dict(result: ApplyResult) -> dict[str, object]:
    return {
        "installed": list(result.installed),
        "permissions_changed": list(result.permissions_changed),
        "bytes_fetched": result.bytes_fetched,
    }


def _confirm(fresh: Plan) -> bool:
    if not sys.stdin.isatty():
        raise ReconcileError(
            "apply without a saved plan asks for confirmation, but there is no terminal",
            hint="pass --yes, or apply a plan saved with 'reconcile plan --out PLAN'",
            reference="confirmation-needed",
        )
    answer = input(f"Apply these {len(fresh.actions)} changes? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def apply(manifest: Path, *, saved: Path | None, assume_yes: bool, as_json: bool) -> int:
    loaded = load_manifest(manifest)
    saved_plan = read_plan(saved) if saved is not None else None
    with TransportPool(endpoints_of(loaded)) as pool:
        fresh = observe_and_plan(loaded, pool)
        if saved_plan is not None:
            changes = stale_resources(saved_plan, fresh)
            if changes:
                raise StalePlanError(
                    f"the saved plan {saved} is stale:\n" + "\n".join(f"  {c}" for c in changes),
                    hint="run 'reconcile plan --out PLAN' again and review the new plan",
                )
        elif not as_json:
            print(render_plan(fresh))
        if fresh.is_empty:
            if as_json:
                print(json.dumps(_result_dict(ApplyResult(installed=(), bytes_fetched=0))))
            return EXIT_OK
        if saved_plan is None and not assume_yes and not _confirm(fresh):
            print("Apply cancelled; nothing was changed.")
            return EXIT_OK
        report = (lambda _line: None) if as_json else (lambda line: print(line, flush=True))
        result = apply_plan(fresh, loaded, pool, report)
    if as_json:
        print(json.dumps(_result_dict(result)))
    else:
        changed = (
            f", {len(result.permissions_changed)} permissions changed"
            if result.permissions_changed
            else ""
        )
        print(
            f"Apply complete: {len(result.installed)} installed{changed}, "
            f"{human_bytes(result.bytes_fetched)} fetched."
        )
    return EXIT_OK
