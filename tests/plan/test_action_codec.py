"""One action model: every action kind implements the protocol, has a commit phase, and goes
through the cattrs codec and back unchanged; malformed saved actions are refused clearly."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, get_args

import attrs
import pytest
from facts_codec import load_facts

from reconcile.errors import PlanError, ReconcileError
from reconcile.manifest.load import loads_manifest
from reconcile.plan.codec import ACTION_CLASSES, action_from_dict, action_to_dict
from reconcile.plan.model import COMMIT_ORDER, Action, ActionKind, Phase, Plan, SourceAction
from reconcile.plan.planner import make_plan
from reconcile.plan.serialize import plan_from_dict, plan_to_dict, read_plan

V1 = Path(__file__).parents[1] / "compat" / "v1"
# plans saved by earlier versions, and by this one for kinds added since
SAVED = [read_plan(V1 / name) for name in ("plan-install.json", "plan-permissions-publish.json")]
SAVED += [read_plan(path) for path in sorted((Path(__file__).parent / "saved").glob("*.json"))]
ALL_ACTIONS = [action for plan in SAVED for action in plan.actions]


def test_every_kind_has_one_class_and_every_class_a_phase() -> None:
    assert set(ACTION_CLASSES) == set(get_args(ActionKind))
    assert {kind for kind, _ in ACTION_CLASSES.values()} == set(get_args(Action))
    assert set(COMMIT_ORDER) == set(get_args(Phase))
    assert {a.kind for a in ALL_ACTIONS} == set(get_args(ActionKind))


@pytest.mark.parametrize("action", ALL_ACTIONS, ids=lambda a: a.id)
def test_action_protocol(action: Action) -> None:
    assert action.phase in COMMIT_ORDER
    assert action.id and action.resource and action.label and action.reason
    assert ACTION_CLASSES[action.kind][0] is type(action)
    assert all(isinstance(key, str) for key in action.inputs)


@pytest.mark.parametrize("action", ALL_ACTIONS, ids=lambda a: a.id)
def test_action_round_trip(action: Action) -> None:
    data = json.loads(json.dumps(action_to_dict(action)))
    again = action_from_dict(data)
    assert again == action
    assert action_to_dict(again) == data


def test_saved_plans_round_trip() -> None:
    for plan in SAVED:
        assert plan_from_dict(plan_to_dict(plan), source="memory") == plan


def test_credentials_never_reach_the_saved_form() -> None:
    source = next(a for a in ALL_ACTIONS if isinstance(a, SourceAction))
    secret = attrs.evolve(source, url="https://user:hunter2@example.org/a.tar.gz?token=abc")
    text = json.dumps(action_to_dict(secret))
    assert "hunter2" not in text and "abc" not in text


def _broken(change: Any) -> dict[str, Any]:
    data = plan_to_dict(SAVED[0])
    broken = copy.deepcopy(data)
    change(broken)
    return broken


HOSTILE = {
    "unknown action": lambda d: d["actions"][0].update(action="format-disk"),
    "missing details field": lambda d: d["actions"][0]["details"].pop("tarball_sha256"),
    "bytes not a number": lambda d: d["actions"][0]["details"].update(bytes="many"),
    "details not an object": lambda d: d["actions"][0].update(details=[1, 2]),
    "missing reason": lambda d: d["actions"][0].pop("reason"),
    "noop without reason": lambda d: d["noops"][0].pop("reason"),
    "alternates not a list of objects": lambda d: d["actions"][0]["details"].update(alternates=[1]),
    "actions not a list": lambda d: d.update(actions=7),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_malformed_saved_action_is_refused(name: str) -> None:
    with pytest.raises(ReconcileError) as caught:
        plan_from_dict(_broken(HOSTILE[name]), source="saved.json")
    assert caught.value.reference == "invalid-plan"
    assert "saved.json: not a reconcile plan" in caught.value.message


def test_saved_source_names_are_checked_again() -> None:
    def escape(data: dict[str, Any]) -> None:
        step = next(a for a in data["actions"] if a["action"] == "source-link")
        step["details"]["name"] = "../../etc"

    with pytest.raises(ReconcileError) as caught:
        plan_from_dict(_broken(escape), source="saved.json")
    assert caught.value.reference == "invalid-source"


GOLDEN = Path(__file__).parent / "golden"


def _fresh_plans() -> list[tuple[str, Plan]]:
    """The saved compat plans, and what the planner makes of every golden world now."""
    found: list[tuple[str, Plan]] = [
        (f"compat/{p.name}", read_plan(p)) for p in sorted(V1.glob("plan-*.json"))
    ]
    for case in sorted(GOLDEN.glob("*/manifest.toml")):
        manifest = loads_manifest(
            case.read_text(encoding="utf-8"), path=Path("/golden") / case.parent.name / case.name
        )
        facts = json.loads((case.parent / "facts.json").read_text(encoding="utf-8"))
        try:
            outcome = make_plan(manifest, load_facts(facts))
        except PlanError:
            continue
        if isinstance(outcome, Plan):
            found.append((f"golden/{case.parent.name}", outcome))
    return found


@pytest.mark.parametrize(("name", "plan"), _fresh_plans(), ids=lambda v: str(v)[:60])
def test_every_input_of_an_action_is_fingerprinted(name: str, plan: Plan) -> None:
    """``inputs`` name what a saved plan's staleness check compares: each one must be among
    the fingerprints the planner recorded, or a change to it would go unnoticed."""
    assert plan.actions or name.startswith("golden/")
    # Fingerprints added after format 1 plans were saved: an old plan has none, so applying
    # it compares "not observed" with what is there now, and it is refused as stale.
    added_later = ("target:", "drift:") if name.startswith("compat/") else ()
    for action in plan.actions:
        missing = [
            key
            for key in action.inputs
            if key not in plan.fingerprints and not key.startswith(added_later or ("\0",))
        ]
        assert missing == [], f"{name}: {action.id} relies on unrecorded {missing}"
