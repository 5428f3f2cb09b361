"""The view step: each planned ``[[view]]`` gets a new generation, built beside the view
and switched to with one rename of the view's symlink; old generations beyond ``keep`` go.

Phase 1 checks that each view is still as planned (its symlink and current generation).
Commit builds the tree under a temporary name in the generations folder (a crash leaves
that, which the next build clears), writes the metadata, renames the tree into place,
switches, logs the switch and trims. A view that cannot be built (a conflict, a missing
prefix) keeps its current generation; the run fails at the end naming it, after the steps
that do not depend on it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import attrs

from reconcile.apply.context import ApplyResult, RunContext
from reconcile.errors import ApplyError, ReconcileError
from reconcile.faults import crash_point
from reconcile.plan.model import ViewAction
from reconcile.plan.views import view_state_fingerprint
from reconcile.state.records import utc_timestamp
from reconcile.views.build import build_tree
from reconcile.views.generations import (
    BUILDING_PREFIX,
    Generation,
    generations_dir,
    log_switch,
    next_number,
    open_generations,
    read_view_state,
    switch,
    tree_digest,
    trim,
    write_metadata,
)


class ViewStep:
    """Phase ``view``."""

    def __init__(self, run: RunContext) -> None:
        self.run = run

    def prepare(self, workdir: Path) -> None:
        del workdir  # views are built in place, beside the view, at commit
        for action in self.run.plan.views:
            state = read_view_state(Path(action.path))
            planned = self.run.plan.fingerprints.get(f"view:{action.view}")
            if view_state_fingerprint(state) != planned:
                raise ApplyError(
                    f"view '{action.view}' changed since the plan (it was {planned}, it is "
                    f"{view_state_fingerprint(state)}): another run or a rollback switched it",
                    hint="run plan again",
                    reference="stale-plan",
                )

    def commit(self, result: ApplyResult) -> ApplyResult:
        switched = []
        for action in self.run.plan.views:
            try:
                number = build_generation(action)
            except ReconcileError as exc:
                self.run.deferred.append(
                    exc.add_context(
                        f"view '{action.view}' was not switched (it keeps its current generation)"
                    )
                )
                continue
            self.run.reporter.event(
                f"view '{action.view}': switched to generation {number} at {action.path}"
            )
            switched.append(f"view '{action.view}' at generation {number}")
        return attrs.evolve(result, views=tuple(switched))


def build_generation(action: ViewAction) -> int:
    """Build, switch to, log and trim; the new generation's number."""
    path = Path(action.path)
    number = next_number(path)
    building = f"{BUILDING_PREFIX}{number}-{secrets.token_hex(4)}"
    with open_generations(path) as folder:
        os.mkdir(building, 0o755, dir_fd=folder.fd)
        try:
            build_tree(
                generations_dir(path) / building,
                action.contents,
                view_path=path,
                install_root=action.install_root,
            )
            crash_point("view-building")
            digest, files = tree_digest(generations_dir(path) / building)
            write_metadata(
                folder,
                Generation(
                    number=number,
                    created=utc_timestamp(),
                    fingerprint=action.fingerprint,
                    contents=action.contents,
                    tree=digest,
                    files=files,
                ),
            )
            folder.replace(building, str(number))
        except BaseException:
            folder.unlink(f"{number}.json")
            folder.remove_tree(building)
            raise
        folder.fsync()
    crash_point("view-before-switch")
    switch(path, number)
    log_switch(path, when=utc_timestamp(), before=action.current, after=number, reason="apply")
    trim(path, action.keep)
    return number
