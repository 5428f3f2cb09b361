"""A saved plan is stale when anything it depended on, or anything the fresh plan depends
on, differs: ``reconcile apply PLAN`` then refuses it and lists each change."""

from __future__ import annotations

from reconcile.plan.model import Plan
from reconcile.plan.serialize import stale_resources


def _plan(fingerprints: dict[str, str], digest: str = "1" * 64) -> Plan:
    return Plan(
        manifest_path="/srv/reconcile.toml",
        manifest_digest=digest,
        install_root="/opt/sw",
        actions=(),
        noops=(),
        fingerprints=fingerprints,
        prefixes={},
    )


SAVED = {"record:aaaa": "absent", "metadata:aaaa": "5" * 64}


def test_the_same_fingerprints_are_not_stale() -> None:
    assert stale_resources(_plan(SAVED), _plan(dict(SAVED))) == []


def test_a_fingerprint_that_is_new_in_the_fresh_plan_makes_the_saved_plan_stale() -> None:
    # The fresh plan depends on something the saved plan never looked at (a prefix that went
    # missing in between, a new dependency): applying the saved plan would skip it.
    fresh = {**SAVED, "path:/opt/sw/b": "absent"}
    assert stale_resources(_plan(SAVED), _plan(fresh)) == [
        "path:/opt/sw/b: was not part of the plan, now absent"
    ]


def test_a_fingerprint_the_fresh_plan_no_longer_needs_makes_the_saved_plan_stale() -> None:
    fresh = {"record:aaaa": "absent"}
    assert stale_resources(_plan(SAVED), _plan(fresh)) == [
        f"metadata:aaaa: was {'5' * 64}, now not needed"
    ]


def test_a_changed_fingerprint_makes_the_saved_plan_stale() -> None:
    fresh = {**SAVED, "record:aaaa": "f" * 64}
    assert stale_resources(_plan(SAVED), _plan(fresh)) == [
        f"record:aaaa: was absent, now {'f' * 64}"
    ]


def test_a_changed_manifest_makes_the_saved_plan_stale() -> None:
    changes = stale_resources(_plan(SAVED), _plan(SAVED, digest="2" * 64))
    assert changes == ["manifest /srv/reconcile.toml changed since the plan was made"]
