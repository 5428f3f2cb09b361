"""The planner's safety refusals, each shown to depend on exactly the fact it guards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from facts_codec import load_facts

from reconcile.errors import PlanError
from reconcile.manifest.load import loads_manifest
from reconcile.manifest.model import ManifestFile
from reconcile.plan.model import Plan
from reconcile.plan.planner import make_plan

GOLDEN = Path(__file__).parent / "golden"
GREETLIB = "yrhiacwgupby4tv3k7q335q6ovlg2ts2"
GREETLIB_PREFIX = f"/opt/sw/greetlib-2.1-{GREETLIB}"
PINNED = "E4A1C447981D70AB30BD8B09643A47B4E5E41176"


def _case(name: str) -> tuple[ManifestFile, dict[str, Any]]:
    text = (GOLDEN / name / "manifest.toml").read_text()
    manifest = loads_manifest(text, path=Path("/golden") / name / "manifest.toml")
    return manifest, json.loads((GOLDEN / name / "facts.json").read_text())


def test_an_existing_prefix_without_an_install_record_is_never_overwritten() -> None:
    manifest, facts = _case("refuse-existing-prefix-without-record")
    assert facts["path_exists"][GREETLIB_PREFIX] is True
    assert GREETLIB not in facts["records"]
    with pytest.raises(PlanError) as refused:
        make_plan(manifest, load_facts(facts))
    assert f"{GREETLIB_PREFIX} already exists but reconcile has no install record" in (
        refused.value.message
    )
    # the same world with the path free plans greetlib into exactly that prefix
    facts["path_exists"][GREETLIB_PREFIX] = False
    plan = make_plan(manifest, load_facts(facts))
    assert isinstance(plan, Plan)
    assert {a.prefix for a in plan.installs if a.hash == GREETLIB} == {GREETLIB_PREFIX}


def test_an_existing_prefix_recorded_at_another_path_is_never_overwritten() -> None:
    manifest, facts = _case("refuse-existing-prefix-recorded-elsewhere")
    assert facts["records"][GREETLIB]["prefix"] != GREETLIB_PREFIX
    with pytest.raises(PlanError, match="has no install record for it"):
        make_plan(manifest, load_facts(facts))


@pytest.mark.parametrize(
    ("case", "spec"),
    [
        ("refuse-signer-not-pinned", GREETLIB),
        ("refuse-signed-mirror-without-signer", "d7r6xmzoqurk6flnbcq6ygnn57fqrl35"),
    ],
)
def test_metadata_from_a_signed_mirror_needs_a_pinned_signer(case: str, spec: str) -> None:
    manifest, facts = _case(case)
    with pytest.raises(PlanError, match="which the manifest does not pin"):
        make_plan(manifest, load_facts(facts))
    facts["verified"][spec]["fetched"]["signer"] = PINNED
    assert isinstance(make_plan(manifest, load_facts(facts)), Plan)
