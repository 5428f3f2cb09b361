"""The executor: the only part of reconcile that changes the install tree and mirrors.

One model for every kind of action (docs/architecture.md, "Applying a plan"):

1. **Prepare** (phase 1), for every commit step in ``COMMIT_ORDER``: fetch and verify
   everything its actions need (signatures, checksums, archive rules, relocation, the state
   each change starts from) into private staging. Nothing is committed unless every step
   prepared; a verification failure anywhere stops the run with nothing changed.
2. **Commit**, step by step in ``COMMIT_ORDER`` (installs, all or nothing up to the first
   rename; permissions; publications; syncs; source mirrors; mirror permissions), holding the
   install root's lock when the plan touches the install tree.

A failure that concerns one action only (a source whose download failed) does not stop the
steps after it; the run fails at the end with every such failure.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import attrs

from reconcile import safe_fs
from reconcile.apply.context import (
    ApplyResult,
    ApplySettings,
    CommitStep,
    RunContext,
    SignerFor,
    SpecSource,
)
from reconcile.apply.events import Reporter
from reconcile.apply.installs import InstallStep, PermissionsStep
from reconcile.apply.leftovers import (
    clear_leftovers,
    clear_leftovers_when_idle,
    remove_run_folder,
)
from reconcile.apply.mirror_permissions import MirrorPermissionsStep
from reconcile.apply.publishing import PublishStep
from reconcile.apply.removals import RemoveStep
from reconcile.apply.repairs import RepairStep
from reconcile.apply.resign import ResignStep
from reconcile.apply.reverify import ReverifyStep
from reconcile.apply.sources import SourceStep, combined_failure
from reconcile.apply.sync import SyncStep
from reconcile.apply.views import ViewStep
from reconcile.errors import ApplyError, LockWaitedError, ReconcileError
from reconcile.folders import folder_mode
from reconcile.manifest.model import ManifestFile
from reconcile.plan.model import COMMIT_ORDER, Phase, Plan
from reconcile.state.leftovers import run_folder_name
from reconcile.state.lock import install_root_lock, state_dir
from reconcile.transport.registry import TransportPool

__all__ = ["ApplyResult", "ApplySettings", "SignerFor", "SpecSource", "apply_plan"]


class _SourcesStep:
    """The source step as a commit step: its per-source failures wait for the end."""

    def __init__(self, run: RunContext) -> None:
        self.run = run
        self.step = SourceStep(run.plan.source_actions, pool=run.pool, reporter=run.reporter)

    def prepare(self, workdir: Path) -> None:
        self.step.prepare(workdir)

    def commit(self, result: ApplyResult) -> ApplyResult:
        done = self.step.commit()
        failure = combined_failure(self.step.errors)
        if failure is not None:
            self.run.deferred.append(failure)
        return attrs.evolve(
            result,
            sources_fetched=done.fetched,
            sources_linked=done.linked,
            sources_recorded=done.recorded,
            source_bytes_fetched=done.bytes_fetched,
            bytes_fetched=result.bytes_fetched + done.bytes_fetched,
        )


STEPS: dict[Phase, Callable[[RunContext], CommitStep]] = {
    "install": InstallStep,
    "repair": RepairStep,
    "permissions": PermissionsStep,
    "reverify": ReverifyStep,
    "remove": RemoveStep,
    "view": ViewStep,
    "publish": PublishStep,
    "resign": ResignStep,
    "sync": SyncStep,
    "source": _SourcesStep,
    "mirror-permissions": MirrorPermissionsStep,
}


def _run(run: RunContext, staging: Path) -> ApplyResult:
    steps = [(phase, STEPS[phase](run)) for phase in COMMIT_ORDER if run.plan.in_phase(phase)]
    for phase, step in steps:  # phase 1: everything fetched and verified
        step.prepare(staging / phase)
    result = ApplyResult(installed=(), bytes_fetched=0)
    for phase, step in steps:
        if phase not in ("install", "repair"):  # these mark the moment of their first rename
            run.committed = True
        result = step.commit(result)
    result = attrs.evolve(result, bytes_by_mirror=run.pool.bytes_by_mirror())
    if run.deferred:
        raise run.deferred[0] if len(run.deferred) == 1 else _several(run.deferred)
    return result


def _several(errors: list[ReconcileError]) -> ApplyError:
    return ApplyError(
        f"{len(errors)} steps of the apply failed:\n"
        + "\n".join(f"    {error.message}" for error in errors),
        hint="fix each problem named above; everything else was applied",
    )


def _missing_folders(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, outermost first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return list(reversed(missing))


def _remove_empty_staging(root: Path) -> None:
    staging = state_dir(root) / "staging"
    if staging.is_dir() and not any(staging.iterdir()):
        staging.rmdir()


def apply_plan(
    plan: Plan,
    manifest_file: ManifestFile,
    pool: TransportPool,
    reporter: Reporter,
    settings: ApplySettings | None = None,
) -> ApplyResult:
    """Carry out ``plan``: prepare every action, then commit them in ``COMMIT_ORDER``.

    When it fails before committing anything, it also removes, still holding the lock, the
    folders it created (the install root included) and the ``.reconcile`` state folder if
    it holds nothing but the lock, so a refused apply leaves the disk as it found it.
    """
    settings = settings or ApplySettings()
    if not plan.touches_install_tree:
        # The install root's lock is not needed; when it is free, clear what crashes left.
        clear_leftovers_when_idle(manifest_file, settings.cache)
        if settings.recheck is not None:
            plan = settings.recheck(plan)  # the subset of a plan that needs no lock needs none
    if plan.is_empty:
        return ApplyResult(installed=(), bytes_fetched=0)
    run = RunContext(
        plan=plan, manifest_file=manifest_file, pool=pool, reporter=reporter, settings=settings
    )
    if not plan.touches_install_tree:  # only mirrors to fill or fix: no install root needed
        with tempfile.TemporaryDirectory(prefix="reconcile-apply-") as private:
            return _run(run, Path(private))
    root = manifest_file.install_root()
    created = _missing_folders(root)
    # Only the lock's folder is made before the lock is held; every removal happens under it,
    # so a run that loses the lock never touches the state of the run that holds it.
    with install_root_lock(root, timeout=settings.lock_timeout, waiting=reporter.event) as held:
        if held.waited and settings.recheck is None:
            raise LockWaitedError(
                f"another run held the lock on {root} while this one waited, so its plan may "
                "be out of date",
                hint="plan again (apply without a saved plan does so by itself)",
            )
        cleared = clear_leftovers(root, settings.cache)
        if cleared:
            reporter.event(f"removed {len(cleared)} leftover(s) of interrupted runs")
        if settings.recheck is not None:
            # observed again under the lock, after what crashed runs left was cleared
            try:
                plan = run.plan = settings.recheck(plan)
            except BaseException:
                held.remove_unused_state(created)
                raise
            if plan.is_empty:
                return ApplyResult(installed=(), bytes_fetched=0)
        run.recovered = frozenset(str(p) for p in cleared) & {a.prefix for a in plan.installs}
        run_dir = state_dir(root) / "staging" / run_folder_name()
        # Made without following a link below the root; private: its tarball copies are.
        safe_fs.make_folders(root, run_dir.parent, mode=folder_mode())
        safe_fs.make_folders(root, run_dir, mode=0o700)
        try:
            return _run(run, run_dir)
        except BaseException:
            if not run.committed:
                remove_run_folder(root, run_dir)
                _remove_empty_staging(root)
                held.remove_unused_state(created)
            raise
        finally:
            remove_run_folder(root, run_dir)
