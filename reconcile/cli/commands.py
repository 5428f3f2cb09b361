"""The commands behind the CLI: each returns an exit code and prints its own output."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from reconcile.cache.open import open_blob_cache
from reconcile.cli.render import render_plan, unknown_relocation_note
from reconcile.cli.signals import PromptInterrupted
from reconcile.engine import lock_use, observe_and_plan
from reconcile.errors import PlanError, ReconcileError
from reconcile.manifest.load import load_manifest
from reconcile.plan.model import Plan
from reconcile.state.lock import lock_holder
from reconcile.transport.registry import TransportPool, endpoints_of

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


def validate(manifest: Path, *, as_json: bool = False) -> int:
    loaded = load_manifest(manifest)
    m = loaded.manifest
    specs = len(m.install.specs) if m.install else 0
    if as_json:
        counts = {"mirrors": len(m.mirrors), "keys": len(m.keys), "specs": specs}
        print(json.dumps({"manifest": str(manifest), "valid": True, **counts}, indent=2))
        return EXIT_OK
    print(
        f"{manifest}: valid ({len(m.mirrors)} mirror{'s' if len(m.mirrors) != 1 else ''}, "
        f"{len(m.keys)} key{'s' if len(m.keys) != 1 else ''}, "
        f"{specs} spec selector{'s' if specs != 1 else ''})"
    )
    return EXIT_OK


def plan(
    manifest: Path,
    *,
    as_json: bool,
    detailed_exitcode: bool,
    out: Path | None,
    verbose: bool,
    check_contents: bool = False,
    force: bool = False,
    locked: bool = False,
) -> int:
    loaded = load_manifest(manifest)
    lock = lock_use(loaded, locked=locked)
    if out is not None and not out.absolute().parent.is_dir():
        # found before reading any mirror, not after
        raise ReconcileError(
            f"cannot save the plan to {out}: the folder {out.absolute().parent} does not exist",
            hint="create that folder first, or give --out a path in an existing folder",
            reference="no-such-path",
        )
    root = loaded.install_root() if loaded.manifest.install is not None else None
    running = lock_holder(root) if root is not None else None
    try:
        with TransportPool(endpoints_of(loaded), limits=loaded.manifest.limits) as pool:
            result = observe_and_plan(
                loaded,
                pool,
                cache=open_blob_cache(loaded),
                check_contents=check_contents,
                force=force,
                lock=lock,
            )
    except PlanError as exc:
        if running is None:
            raise
        # The prefixes a running apply is committing have no record yet: blaming them (and
        # advising to remove them) would destroy a good install.
        raise PlanError(
            f"an apply is running on {root} ({running.describe()}), so the tree cannot be "
            f"planned now:\n  {exc.message}",
            hint="plan again when it has finished; 'reconcile locks' shows who holds the lock",
            reference="apply-running",
        ) from exc
    if running is not None:
        print(
            f"note: an apply is running on {root} ({running.describe()}); this plan shows the "
            "tree as it is now, before that apply finishes",
            file=sys.stderr,
        )
    if out is not None or as_json:
        # the plan's JSON form (and cattrs, which reads it back) only when asked for
        from reconcile.plan.serialize import plan_to_dict, write_plan

        if out is not None:
            write_plan(result, out)
        if as_json:
            print(json.dumps(plan_to_dict(result), indent=1))
    if not as_json:
        print(render_plan(result, verbose=verbose))
        install = loaded.manifest.install
        note = unknown_relocation_note(result)
        if install is not None and install.strict_relocation and note is not None:
            print(note, file=sys.stderr)
        if out is not None:
            print(f"Saved the plan to {out}; run 'reconcile apply {out}' to carry it out.")
    return EXIT_CHANGES if detailed_exitcode and not result.is_empty else EXIT_OK


def confirm(fresh: Plan) -> bool:
    if not sys.stdin.isatty():
        raise ReconcileError(
            "apply without a saved plan asks for confirmation, but there is no terminal",
            hint="pass --yes, or apply a plan saved with 'reconcile plan --out PLAN'",
            reference="confirmation-needed",
        )
    try:
        answer = input(f"Apply these {len(fresh.actions)} changes? [y/N] ")
    except KeyboardInterrupt:
        raise PromptInterrupted from None
    return answer.strip().lower() in ("y", "yes")
