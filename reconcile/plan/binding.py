"""A saved plan binds: ``apply PLAN`` runs exactly its actions, or refuses.

Under the install root's lock the resources are observed again and planned afresh, only to
compare. Each saved action is then:

- **done** when the fresh plan no longer has it and does not flag its resource as differing
  (someone, or an earlier run, already brought it to the planned state; for a removal: its
  prefix is gone, which is the one fact read from disk here): skipped;
- **to run** when the fresh plan has the same action (same saved form) and every fingerprint
  it was planned from is unchanged: run as saved;
- **stale** otherwise.

The whole plan is stale (``stale-plan``, naming each resource and what changed) when any
action is, when the manifest changed, when the fresh plan has an action for a resource the
saved plan left alone, or when a fingerprint that no saved action accounts for changed.
"""

from __future__ import annotations

import os

import attrs

from reconcile.errors import StalePlanError
from reconcile.plan.codec import action_to_dict
from reconcile.plan.model import Action, Plan, RemoveAction
from reconcile.reprs import fields_repr


@attrs.frozen(kw_only=True)
class Bound:
    """The saved actions still to run (in a plan the executor can carry out) and those done."""

    __repr__ = fields_repr

    plan: Plan
    done: tuple[Action, ...]


# Details that say how an action will be carried out, not what it does: a cache root that
# got the tarball meanwhile does not make a saved install another install.
_HOW = frozenset({"cached"})


def _differs(saved: Action, fresh: Action) -> list[str]:
    """The fields of ``details`` in which the fresh action is not the saved one."""
    old, new = action_to_dict(saved)["details"], action_to_dict(fresh)["details"]
    keys = (old.keys() | new.keys()) - _HOW
    return sorted(key for key in keys if old.get(key) != new.get(key))


def _fingerprint_change(saved: Plan, fresh: Plan, key: str) -> str | None:
    old, new = saved.fingerprints.get(key), fresh.fingerprints.get(key)
    if old == new:
        return None
    return f"{key}: was {old or 'not observed'}, now {new or 'not observed'}"


def bind_saved_plan(saved: Plan, fresh: Plan, *, source: str) -> Bound:
    """``saved`` as it may run now, given ``fresh`` (planned from what is there now);
    ``StalePlanError`` naming every change when it may not."""
    changes: list[str] = []
    if saved.manifest_digest != fresh.manifest_digest:
        changes.append(f"manifest {fresh.manifest_path} changed since the plan was made")
    fresh_actions = {a.id: a for a in fresh.actions}
    differing = {n.resource: n for n in fresh.differing}
    to_run: list[Action] = []
    done: list[Action] = []
    for action in saved.actions:
        current = fresh_actions.get(action.id)
        if current is None:
            noop = differing.get(action.resource)
            if noop is not None:
                changes.append(
                    f"{action.resource}: the plan would {action.kind} it, but now: {noop.reason}"
                )
            elif isinstance(action, RemoveAction) and os.path.lexists(action.prefix):
                # no longer planned because its record is gone: not ours any more, not removed
                changes.append(
                    f"{action.resource}: the plan would remove it, but no install record "
                    f"names {action.prefix} any more"
                )
            else:
                done.append(action)
            continue
        fields = _differs(action, current)
        if fields:
            changes.append(
                f"{action.resource}: {action.kind} is planned differently now "
                f"({', '.join(fields)} changed)"
            )
        changes.extend(
            change
            for key in action.inputs
            if (change := _fingerprint_change(saved, fresh, key)) is not None
        )
        to_run.append(current)
    saved_ids = {a.id for a in saved.actions}
    for action in fresh.actions:
        if action.id not in saved_ids:
            changes.append(
                f"{action.resource}: the plan leaves it alone, but now it needs "
                f"'{action.kind}' because {action.reason}"
            )
    accounted = {key for action in saved.actions for key in action.inputs}
    changes.extend(
        change
        for key in sorted(saved.fingerprints.keys() - accounted)
        if (change := _fingerprint_change(saved, fresh, key)) is not None
    )
    if changes:
        raise StalePlanError(
            f"the {source} is stale:\n" + "\n".join(f"  {c}" for c in dict.fromkeys(changes)),
            hint="nothing was changed; run 'reconcile plan --out PLAN' again and review the "
            "new plan",
        )
    return Bound(plan=attrs.evolve(fresh, actions=tuple(to_run)), done=tuple(done))
