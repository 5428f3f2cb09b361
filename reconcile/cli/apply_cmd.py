"""``reconcile apply``: kept apart from plan and validate so that those do not load the
executor (archives, relocation, ELF parsing) or the progress display.

apply itself loads them only once it has something to do: a no-op apply costs what a no-op
plan costs (tests/structure/test_startup_imports.py)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from reconcile.apply.context import ApplyResult, ApplySettings
from reconcile.apply.events import Reporter, SilentReporter
from reconcile.apply.leftovers import clear_leftovers_when_idle
from reconcile.buildcache.pinned_keys import trust_policy
from reconcile.cache.open import open_blob_cache
from reconcile.cli.commands import EXIT_OK, confirm
from reconcile.cli.render import human_bytes, render_plan, unknown_relocation_note
from reconcile.engine import lock_use, observe_and_plan
from reconcile.errors import LockWaitedError, PlanError, StalePlanError
from reconcile.manifest.load import load_manifest
from reconcile.manifest.model import ManifestFile
from reconcile.plan.locking import LockUse, check_saved_against_lock
from reconcile.plan.model import Action, Plan
from reconcile.state.lock import LockOwner, lock_holder, wait_until_free
from reconcile.state.records import records_dir
from reconcile.transport.registry import TransportPool, endpoints_of

if TYPE_CHECKING:
    from reconcile.cache.store import BlobCache
    from reconcile.trust.policy import TrustPolicy

# how many times apply plans again after waiting for another apply's lock
PLAN_ATTEMPTS = 5


def _reporter(as_json: bool, total_bytes: int) -> tuple[Reporter, AbstractContextManager[object]]:
    """Silent for JSON, a live display on a terminal, plain lines otherwise (CI logs)."""
    if as_json:
        return SilentReporter(), nullcontext()
    from reconcile.cli.progress import LiveReporter, PlainReporter

    if sys.stdout.isatty() and os.environ.get("CI") is None:
        live = LiveReporter(total_bytes)
        return live, live
    return PlainReporter(), nullcontext()


def _tell(text: str) -> None:
    print(text, file=sys.stderr)


def _tree_state(loaded: ManifestFile) -> tuple[frozenset[str], LockOwner | None]:
    """The install records' names and who holds the lock: what changes when another apply
    commits (plan is not atomic against it)."""
    if loaded.manifest.install is None:
        return frozenset(), None
    root = loaded.install_root()
    try:
        names = frozenset(p.name for p in records_dir(root).iterdir())
    except OSError:
        names = frozenset()
    return names, lock_holder(root)


def _execute(
    plan: Plan, loaded: ManifestFile, pool: TransportPool, reporter: Reporter, **settings: Any
) -> ApplyResult:
    """``apply_plan`` with the signers publishing uses: the executor (archives, relocation,
    ELF parsing) and the signers are imported here, once there is something to do."""
    from reconcile.apply.executor import apply_plan
    from reconcile.trust.ed25519_keys import ed25519_signer
    from reconcile.trust.keystore import signer_from_keystore

    return apply_plan(
        plan,
        loaded,
        pool,
        reporter,
        ApplySettings(
            signer_for=signer_from_keystore, statement_signer_for=ed25519_signer, **settings
        ),
    )


def apply(
    manifest: Path,
    *,
    saved: Path | None,
    assume_yes: bool,
    as_json: bool,
    jobs: int = 1,
    check_contents: bool = False,
    lock_timeout: float = 0.0,
    force: bool = False,
    locked: bool = False,
) -> int:
    loaded = load_manifest(manifest)
    lock = lock_use(loaded, locked=locked)
    if saved is not None:
        return _apply_saved(
            loaded,
            saved,
            as_json=as_json,
            jobs=jobs,
            check_contents=check_contents,
            lock_timeout=lock_timeout,
            lock=lock,
        )
    if loaded.manifest.install is not None and lock_timeout > 0:
        # Planning while another apply commits would see its prefixes half made: wait first.
        wait_until_free(
            loaded.install_root(),
            timeout=lock_timeout,
            waiting=lambda text: print(text, file=sys.stderr),
        )
    with (
        TransportPool(endpoints_of(loaded), limits=loaded.manifest.limits) as pool,
        trust_policy(loaded, read_url=pool.read_bytes) as trust,
    ):
        cache = open_blob_cache(loaded)
        for attempt in range(PLAN_ATTEMPTS):
            before = _tree_state(loaded)
            try:
                fresh = observe_and_plan(
                    loaded,
                    pool,
                    cache=cache,
                    check_contents=check_contents,
                    trust=trust,
                    force=force,
                    lock=lock,
                )
            except PlanError:
                # Another apply committed while this one observed (its prefixes appeared
                # after their records were read): wait for it, then plan from what it left.
                if lock_timeout <= 0 or attempt + 1 == PLAN_ATTEMPTS:
                    raise
                if _tree_state(loaded) == before and before[1] is None:
                    raise
                wait_until_free(loaded.install_root(), timeout=lock_timeout, waiting=_tell)
                continue
            if not as_json:
                print(render_plan(fresh))
                install = loaded.manifest.install
                note = unknown_relocation_note(fresh)
                if install is not None and install.strict_relocation and note is not None:
                    print(note, file=sys.stderr)
            if fresh.is_empty:
                clear_leftovers_when_idle(loaded, cache)  # what a killed run left after commit
                if as_json:
                    empty = ApplyResult(installed=(), bytes_fetched=0)
                    print(result_json(result_to_dict(empty, pool.bytes_by_mirror())))
                return EXIT_OK
            if not assume_yes and not confirm(fresh):
                print("Apply cancelled; nothing was changed.")
                return EXIT_OK
            # a confirmed plan is what runs: re-checked under the lock like a saved one
            recheck = (
                None
                if assume_yes
                else _rechecker(
                    loaded, pool, cache, trust, check_contents, "plan you confirmed", [], lock
                )
            )
            reporter, display = _reporter(as_json, fresh.bytes_to_fetch)
            try:
                with display:
                    result = _execute(
                        fresh,
                        loaded,
                        pool,
                        reporter,
                        jobs=jobs,
                        cache=cache,
                        trust=trust,
                        lock_timeout=lock_timeout,
                        recheck=recheck,
                    )
                break
            except LockWaitedError:
                # Another apply ran while this one waited for the lock: plan again from what
                # it left (a saved or confirmed plan is re-checked under the lock instead).
                if attempt + 1 == PLAN_ATTEMPTS:
                    raise
                print(
                    "another apply finished while this one waited; planning again", file=sys.stderr
                )
        else:  # pragma: no cover - the loop returns or raises
            raise AssertionError("unreachable")
    if as_json:
        print(result_json(result_to_dict(result, result.bytes_by_mirror)))
    else:
        print(render_apply_summary(result))
    return EXIT_OK


def _rechecker(
    loaded: ManifestFile,
    pool: TransportPool,
    cache: BlobCache | None,
    trust: TrustPolicy,
    check_contents: bool,
    source: str,
    done: list[Action],
    lock: LockUse | None,
) -> Callable[[Plan], Plan]:
    """What the executor calls holding the lock: observe again and bind ``plan`` to what is
    there now (``plan/binding.py``); the actions found done are added to ``done``."""

    from reconcile.plan.binding import bind_saved_plan

    def recheck(plan: Plan) -> Plan:
        fresh = observe_and_plan(
            loaded,
            pool,
            cache=cache,
            check_contents=check_contents or plan.checked == "contents",
            trust=trust,
            force=any(r.force for r in plan.removals),
            lock=lock,
        )
        bound = bind_saved_plan(plan, fresh, source=source)
        done.extend(bound.done)
        return bound.plan

    return recheck


def _apply_saved(
    loaded: ManifestFile,
    saved: Path,
    *,
    as_json: bool,
    jobs: int,
    check_contents: bool,
    lock_timeout: float,
    lock: LockUse | None,
) -> int:
    """``apply PLAN``: exactly the saved actions, re-checked under the lock
    (``plan/binding.py``): those done are skipped, any other change refuses the plan. The
    re-check plans with the lock file as a fresh apply would (with ``--locked``, it fails
    where the lock file does not satisfy the manifest); with ``--locked``, every install the
    saved plan holds must also be a node of the lock file, with the locked tarball."""
    from reconcile.plan.serialize import read_plan

    saved_plan = read_plan(saved)
    if lock is not None and lock.mode == "locked":
        check_saved_against_lock(saved_plan, lock, source=str(saved))
    if saved_plan.manifest_digest != loaded.digest:
        raise StalePlanError(
            f"the saved plan {saved} is stale:\n  manifest {loaded.path} changed since the "
            "plan was made",
            hint="nothing was changed; run 'reconcile plan --out PLAN' again and review the "
            "new plan",
        )
    done: list[Action] = []
    with (
        TransportPool(endpoints_of(loaded), limits=loaded.manifest.limits) as pool,
        trust_policy(loaded, read_url=pool.read_bytes) as trust,
    ):
        cache = open_blob_cache(loaded)

        recheck = _rechecker(
            loaded, pool, cache, trust, check_contents, f"saved plan {saved}", done, lock
        )
        reporter, display = _reporter(as_json, saved_plan.bytes_to_fetch)
        with display:
            result = _execute(
                saved_plan,
                loaded,
                pool,
                reporter,
                jobs=jobs,
                cache=cache,
                trust=trust,
                lock_timeout=lock_timeout,
                recheck=recheck,
            )
    result = attrs.evolve(result, skipped=tuple(a.label for a in done))
    if as_json:
        print(json.dumps(result_to_dict(result, result.bytes_by_mirror)))
    elif saved_plan.actions and len(done) == len(saved_plan.actions):
        print(
            f"The saved plan {saved} is already applied: its {len(done)} action(s) are done; "
            "nothing was changed."
        )
    elif not saved_plan.actions:
        print(f"The saved plan {saved} has no actions, and nothing it relied on changed.")
    else:
        print(render_apply_summary(result))
    return EXIT_OK


def render_apply_summary(result: ApplyResult) -> str:
    """Per mirror, what was downloaded and what cache roots saved; then one summary line."""
    lines = []
    mirrors = sorted(set(result.bytes_by_mirror) | set(result.cache_bytes_by_mirror))
    for mirror in mirrors:
        received = result.bytes_by_mirror.get(mirror, 0)
        cached = result.cache_bytes_by_mirror.get(mirror, 0)
        lines.append(
            f"  mirror '{mirror}': {human_bytes(received)} downloaded, "
            f"{human_bytes(cached)} served from cache roots"
        )
    cached_specs = sum(1 for s in result.sources if s.from_cache)
    changed = f", {len(result.repaired)} repaired" if result.repaired else ""
    changed += f", {len(result.skipped)} already done (skipped)" if result.skipped else ""
    changed += f", {len(result.removed)} removed" if result.removed else ""
    changed += f", {len(result.reverified)} re-verified" if result.reverified else ""
    changed += (
        f", {len(result.permissions_changed)} permissions changed"
        if result.permissions_changed
        else ""
    )
    from_cache = f" ({cached_specs} from cache roots)" if cached_specs else ""
    if result.published:
        changed += f", {len(result.published)} published"
    if result.resigned:
        changed += f", {len(result.resigned)} signed again"
    if result.synced:
        changed += f", {len(result.synced)} synced"
    if result.views:
        changed += ", " + ", ".join(result.views)
    if result.mirrors_fixed:
        changed += f", permissions set on {len(result.mirrors_fixed)} mirror(s)"
    if result.sources_fetched or result.sources_linked or result.sources_recorded:
        changed += (
            f", {result.sources_fetched} source archive(s) fetched, {result.sources_linked} linked"
        )
        if result.sources_recorded:  # adopted: already there, now with a verification record
            changed += f", {result.sources_recorded} verification record(s) written"
    tarball_bytes = result.bytes_fetched - result.source_bytes_fetched
    fetched = f"{human_bytes(tarball_bytes)} of tarballs"
    if result.source_bytes_fetched:
        fetched += f" and {human_bytes(result.source_bytes_fetched)} of source archives"
    lines.append(
        f"Apply complete: {len(result.installed)} installed{from_cache}{changed}, "
        f"{fetched} fetched."
    )
    return "\n".join(lines)


def result_json(document: dict[str, Any]) -> str:
    """One line for programs reading a pipe; indented when a person reads it on a terminal."""
    return json.dumps(document, indent=1 if sys.stdout.isatty() else None)


def result_to_dict(result: ApplyResult, bytes_by_mirror: dict[str, int]) -> dict[str, Any]:
    """The JSON form of an apply's result (``apply --json``)."""
    mirrors = sorted(set(bytes_by_mirror) | set(result.cache_bytes_by_mirror))
    return {
        "installed": list(result.installed),
        "skipped": list(result.skipped),
        "repaired": list(result.repaired),
        "removed": list(result.removed),
        "permissions_changed": list(result.permissions_changed),
        "reverified": list(result.reverified),
        "published": list(result.published),
        "resigned": list(result.resigned),
        "sources_fetched": result.sources_fetched,
        "sources_linked": result.sources_linked,
        "sources_recorded": result.sources_recorded,
        "source_bytes_fetched": result.source_bytes_fetched,
        "mirror_permissions": list(result.mirrors_fixed),
        "synced": list(result.synced),
        "views": list(result.views),
        "bytes_fetched": result.bytes_fetched,
        "mirrors": {
            m: {
                "bytes_downloaded": bytes_by_mirror.get(m, 0),
                "bytes_from_cache": result.cache_bytes_by_mirror.get(m, 0),
            }
            for m in mirrors
        },
        "specs": [
            {
                "spec": s.label,
                "mirror": s.mirror,
                "from_cache": s.from_cache,
                "bytes": s.bytes,
            }
            for s in result.sources
        ],
    }
