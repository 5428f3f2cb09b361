"""Saved plans that are not what apply can trust: each is refused as ``invalid-plan`` with a
message that says what is wrong and where, never a traceback."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from reconcile.errors import ReconcileError
from reconcile.plan.serialize import observed_digest, plan_from_dict, read_plan

SAVED = json.loads(
    (Path(__file__).parent / "golden" / "install-fresh-closure" / "plan.json").read_text()
)


def refused(data: Any) -> ReconcileError:
    with pytest.raises(ReconcileError) as caught:
        plan_from_dict(data, source="saved.json")
    assert caught.value.reference == "invalid-plan"
    assert caught.value.message.startswith("saved.json: ")
    return caught.value


def test_the_saved_golden_plan_loads() -> None:
    assert len(plan_from_dict(SAVED, source="saved.json").installs) == 3


def test_another_format_version_is_refused_with_both_versions() -> None:
    error = refused({**SAVED, "format_version": 2})
    assert error.message == "saved.json: plan format version 2 is not supported (expected 1)"
    assert error.hint == "make the plan again with this version of reconcile"


def test_an_unknown_action_is_refused_and_numbered() -> None:
    data = copy.deepcopy(SAVED)
    data["actions"][1]["action"] = "format-disk"
    error = refused(data)
    assert "action 2: ValueError: unknown action 'format-disk'" in error.message
    assert error.hint == "pass a file written by 'reconcile plan --out'"


def test_an_action_with_a_field_of_the_wrong_type_is_refused_and_numbered() -> None:
    data = copy.deepcopy(SAVED)
    del data["actions"][2]["details"]["tarball_sha256"]
    error = refused(data)
    assert "action 3: " in error.message
    assert "tarball_sha256" in error.message


@pytest.mark.parametrize("data", [[], "plan", {"format_version": 1}, None])
def test_what_is_not_a_plan_at_all_is_refused(data: Any) -> None:
    assert "not a reconcile plan" in refused(data).message


def test_a_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text("{ not json")
    with pytest.raises(ReconcileError) as caught:
        read_plan(path)
    assert caught.value.reference == "invalid-plan"


def test_the_observed_digest_does_not_depend_on_the_order_of_the_fingerprints() -> None:
    forward = {"record:a": "absent", "metadata:b": "1" * 64}
    backward = dict(reversed(list(forward.items())))
    assert list(forward) != list(backward)
    assert observed_digest(forward) == observed_digest(backward)
    assert observed_digest(forward) != observed_digest({**forward, "record:a": "2" * 64})
