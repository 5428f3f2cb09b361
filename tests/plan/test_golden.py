"""Golden tests of the pure planner: each folder of ``golden/`` is one world.

A case holds ``manifest.toml`` and ``facts.json`` (the observed facts, see facts_codec.py);
``plan.json`` is what the planner makes of them: the plan as ``reconcile plan --json``
prints it, or ``{"need_facts": ...}`` when it must observe more first, or ``{"refused": ...}``
with the error it raises. A case with ``saved-facts.json`` also plans from those (the plan
saved earlier) and ``stale.json`` lists what ``reconcile apply PLAN`` reports as changed.

After a deliberate change to the planner, rewrite the expected files with
``python3 -m pytest tests/plan/test_golden.py --update-golden`` and review the diff.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from facts_codec import dump_facts, load_facts

from reconcile.errors import PlanError
from reconcile.manifest.load import loads_manifest
from reconcile.manifest.model import ManifestFile
from reconcile.plan.model import Plan
from reconcile.plan.planner import NeedFacts, make_plan
from reconcile.plan.serialize import plan_from_dict, plan_to_dict, stale_resources

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "manifest.toml").is_file())
# Where the manifests claim to live: fixed, so that plans do not depend on the checkout.
MANIFEST_FOLDER = Path("/golden")


def _manifest(case: str) -> ManifestFile:
    text = (GOLDEN / case / "manifest.toml").read_text(encoding="utf-8")
    return loads_manifest(text, path=MANIFEST_FOLDER / case / "manifest.toml")


def _facts(case: str, name: str) -> Any:
    return json.loads((GOLDEN / case / name).read_text(encoding="utf-8"))


def _outcome(manifest: ManifestFile, facts: Any) -> Plan | NeedFacts | PlanError:
    observed = load_facts(facts)
    assert load_facts(dump_facts(observed)) == observed  # the facts file says all it means
    try:
        return make_plan(manifest, observed)
    except PlanError as error:
        return error


def _as_json(outcome: Plan | NeedFacts | PlanError) -> dict[str, Any]:
    if isinstance(outcome, PlanError):
        return {
            "refused": {
                "reference": outcome.reference,
                "message": outcome.message.splitlines(),
                "hint": outcome.hint,
            }
        }
    if isinstance(outcome, NeedFacts):
        need: dict[str, Any] = {
            "specs": {h: node.short() for h, node in sorted(outcome.specs.items())},
            "paths": sorted(outcome.paths),
        }
        if outcome.reverify:  # installs whose signer no longer counts, to look up again
            need["reverify"] = {h: node.short() for h, node in sorted(outcome.reverify.items())}
        if outcome.sidecars:  # published specs whose sidecar signers publishing must know
            need["sidecars"] = sorted(f"{mirror}/{h}" for mirror, h in outcome.sidecars)
        return {"need_facts": need}
    data = plan_to_dict(outcome)
    # What apply reads back shows as the same plan (saved source actions keep masked URLs
    # and no observed sizes: apply re-plans them).
    assert plan_to_dict(plan_from_dict(data, source="golden")) == data
    return data


def _check(path: Path, actual: dict[str, Any], update: bool) -> None:
    text = json.dumps(actual, indent=1, ensure_ascii=False) + "\n"
    if update:
        path.write_text(text, encoding="utf-8")
        return
    assert path.is_file(), f"{path} is missing: run pytest with --update-golden"
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert actual == expected, f"{path.parent.name}: the plan changed (--update-golden)"


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES)
def test_golden_plan(case: str, update_golden: bool) -> None:
    manifest = _manifest(case)
    outcome = _outcome(manifest, _facts(case, "facts.json"))
    _check(GOLDEN / case / "plan.json", _as_json(outcome), update_golden)
    if not (GOLDEN / case / "saved-facts.json").is_file():
        return
    saved = _outcome(manifest, _facts(case, "saved-facts.json"))
    assert isinstance(saved, Plan) and isinstance(outcome, Plan), "stale cases compare plans"
    _check(GOLDEN / case / "stale.json", {"stale": stale_resources(saved, outcome)}, update_golden)


def test_every_golden_plan_follows_the_plan_schema() -> None:
    """The schema documents every action kind's saved form (reverify and resign included)."""
    import jsonschema

    schema = json.loads((Path(__file__).parents[2] / "schemas" / "plan.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    plans = [_facts(case, "plan.json") for case in CASES]
    checked = [plan for plan in plans if "actions" in plan]
    assert len(checked) >= 40
    for plan in checked:
        validator.validate(plan)
