"""Files written by an earlier reconcile still load: install records (through observe) and
saved plans (through the plan loader and ``reconcile apply PLAN``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    FIXTURE_FPR,
    FIXTURE_KEY,
    GCC_RUNTIME_HASH,
    GREETLIB_HASH,
    HELLO_HASH,
    SIGNED_CACHE,
)

from reconcile.cli.main import main
from reconcile.observe.install_tree import observe_install_tree
from reconcile.plan.serialize import plan_from_dict, plan_to_dict, read_plan
from reconcile.state.records import record_fingerprint, record_to_dict

V1 = Path(__file__).parent / "v1"
PLANS = {
    "plan-install.json": [
        "install",
        "sync",
        "mirror-permissions",
        "source-fetch",
        "source-link",
    ],
    "plan-permissions-publish.json": [
        "permissions",
        "publish",
        "mirror-permissions",
        "source-record",
        "source-link",
    ],
}


def contained(old: Any, new: Any, where: str = "$") -> list[str]:
    """Where ``new`` loses or changes something ``old`` had (new keys are allowed)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            problem
            for key, value in old.items()
            for problem in (
                contained(value, new[key], f"{where}.{key}")
                if key in new
                else [f"{where}.{key}: missing"]
            )
        ]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            p
            for i, (a, b) in enumerate(zip(old, new, strict=True))
            for p in contained(a, b, f"{where}[{i}]")
        ]
    return [] if old == new else [f"{where}: was {old!r}, now {new!r}"]


def test_v1_install_records_are_observed(tmp_path: Path) -> None:
    root = tmp_path / "opt"
    shutil.copytree(V1 / "records", root / ".reconcile" / "records")
    records, present = observe_install_tree(root)
    assert set(records) == {HELLO_HASH, GREETLIB_HASH, GCC_RUNTIME_HASH}
    assert present <= set(records)
    hello = records[HELLO_HASH]
    assert (hello.name, hello.version, hello.signer) == ("hello-app", "3.0", FIXTURE_FPR)
    assert any(e.path == "bin/hello-app" for e in hello.entries)
    for dag_hash, record in records.items():
        written = json.loads((V1 / "records" / f"{dag_hash}.json").read_text())
        assert contained(written, record_to_dict(record)) == []
        assert record_fingerprint(record) != record_fingerprint(None)


@pytest.mark.parametrize("name", sorted(PLANS))
def test_v1_saved_plans_load_and_keep_every_field(name: str) -> None:
    written = json.loads((V1 / name).read_text())
    plan = read_plan(V1 / name)
    kinds = [a["action"] for a in plan_to_dict(plan)["actions"]]
    assert list(dict.fromkeys(kinds)) == PLANS[name]
    assert len(plan.actions) == len(written["actions"])
    assert contained(written, plan_to_dict(plan)) == []
    dumped = plan_to_dict(plan)
    assert plan_to_dict(plan_from_dict(dumped, source="memory")) == dumped


@pytest.mark.parametrize("name", sorted(PLANS))
def test_v1_saved_plan_reaches_the_stale_check_of_apply(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``apply PLAN`` reads the old plan and compares it with a fresh one: it is refused as
    stale (made for another manifest), never as unreadable."""
    manifest = tmp_path / "reconcile.toml"
    manifest.write_text(
        f'version = 1\n\n[install]\nroot = "opt"\nspecs = ["hello-app"]\n\n'
        f'[[mirror]]\nname = "team"\nurl = "{SIGNED_CACHE}"\nsigned = true\n\n'
        f'[[key]]\nname = "team-gpg"\nkind = "gpg"\nfingerprint = "{FIXTURE_FPR}"\n'
        f'file = "{FIXTURE_KEY}"\n'
    )
    assert main(["-m", str(manifest), "apply", str(V1 / name)]) == 1
    err = capsys.readouterr().err
    assert "is stale" in err and "changed since the plan was made" in err
    assert "not a reconcile plan" not in err
    assert not (tmp_path / "opt").exists()
