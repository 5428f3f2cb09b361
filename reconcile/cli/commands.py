"""The commands behind the CLI: each returns an exit code and prints its own output."""

from __future__ import annotations

import json
import os
import sys
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from reconcile.apply.events import Reporter, SilentReporter
from reconcile.apply.executor import ApplyResult, ApplySettings, apply_plan
from reconcile.cache.open import open_blob_cache
from reconcile.cli.progress import LiveReporter, PlainReporter
from reconcile.cli.render import render_apply_summary, render_plan, result_to_dict
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
        result = observe_and_plan(loaded, pool, cache=open_blob_cache(loaded))
    if out is not None:
        write_plan(result, out)
    if as_json:
        print(json.dumps(plan_to_dict(result), indent=1))
    else:
        print(render_plan(result, verbose=verbose))
        if out is not None:
            print(f"Saved the plan to {out}; run 'reconcile apply {out}' to carry it out.")
    return EXIT_CHANGES if detailed_exitcode and not result.is_empty else EXIT_OK


def _confirm(fresh: Plan) -> bool:
    if not sys.stdin.isatty():
        raise ReconcileError(
            "apply without a saved plan asks for confirmation, but there is no terminal",
            hint="pass --yes, or apply a plan saved with 'reconcile plan --out PLAN'",
            reference="confirmation-needed",
        )
    answer = input(f"Apply these {len(fresh.actions)} changes? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _reporter(as_json: bool, total_bytes: int) -> tuple[Reporter, AbstractContextManager[object]]:
    """Silent for JSON, a live display on a terminal, plain lines otherwise (CI logs)."""
    if as_json:
        return SilentReporter(), nullcontext()
    if sys.stdout.isatty() and os.environ.get("CI") is None:
        live = LiveReporter(total_bytes)
        return live, live
    return PlainReporter(), nullcontext()


def apply(
    manifest: Path, *, saved: Path | None, assume_yes: bool, as_json: bool, jobs: int = 1
) -> int:
    loaded = load_manifest(manifest)
    saved_plan = read_plan(saved) if saved is not None else None
    with TransportPool(endpoints_of(loaded)) as pool:
        cache = open_blob_cache(loaded)
        fresh = observe_and_plan(loaded, pool, cache=cache)
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
                empty = ApplyResult(installed=(), bytes_fetched=0)
                print(json.dumps(result_to_dict(empty, pool.bytes_by_mirror())))
            return EXIT_OK
        if saved_plan is None and not assume_yes and not _confirm(fresh):
            print("Apply cancelled; nothing was changed.")
            return EXIT_OK
        reporter, display = _reporter(as_json, fresh.bytes_to_fetch)
        with display:
            result = apply_plan(
                fresh, loaded, pool, reporter, ApplySettings(jobs=jobs, cache=cache)
            )
    if as_json:
        print(json.dumps(result_to_dict(result, result.bytes_by_mirror)))
    else:
        print(render_apply_summary(result))
    return EXIT_OK
