"""Plans to and from JSON (``schemas/plan.schema.json``): for ``--json`` and saved plans."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import cattrs

from reconcile import bounded_json
from reconcile.errors import ReconcileError
from reconcile.observe.findings import CheckMode
from reconcile.plan.codec import (
    action_from_dict,
    action_to_dict,
    describe_error,
    noop_from_dict,
    noop_to_dict,
)
from reconcile.plan.model import FORMAT_VERSION, Plan


def observed_digest(fingerprints: dict[str, str]) -> str:
    canonical = json.dumps(fingerprints, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    return {
        "format_version": plan.format_version,
        "manifest": {"path": plan.manifest_path, "digest": plan.manifest_digest},
        "install_root": plan.install_root,
        "checked": plan.checked,
        "actions": [action_to_dict(action) for action in plan.actions],
        "noops": [noop_to_dict(noop) for noop in plan.noops],
        "summary": {
            "install": len(plan.installs),
            "repair": len(plan.repairs),
            "remove": len(plan.removals),
            "permissions": len(plan.permission_changes),
            "publish": len(plan.publications),
            "sources": len(plan.source_actions),
            "mirror_permissions": len(plan.mirror_permission_changes),
            "sync": len(plan.syncs),
            "noop": len(plan.noops),
            "bytes_to_fetch": plan.bytes_to_fetch,
            # only when there are some: plans without re-verifications read as before
            **({"reverify": len(plan.reverifications)} if plan.reverifications else {}),
            **({"resign": len(plan.resignings)} if plan.resignings else {}),
            **({"view": len(plan.views)} if plan.views else {}),
        },
        "observed": {
            "digest": observed_digest(plan.fingerprints),
            "fingerprints": dict(plan.fingerprints),
        },
        "prefixes": dict(plan.prefixes),
        "external_paths": list(plan.external_paths),
    }


def plan_from_dict(data: Any, *, source: str) -> Plan:
    """Rebuild a saved plan; ``ReconcileError`` naming ``source`` if it is not one."""
    try:
        if data["format_version"] != FORMAT_VERSION:
            raise ReconcileError(
                f"{source}: plan format version {data['format_version']!r} is not supported "
                f"(expected {FORMAT_VERSION})",
                hint="make the plan again with this version of reconcile",
                reference="invalid-plan",
            )
        actions = []
        for number, item in enumerate(data["actions"]):
            try:
                actions.append(action_from_dict(item))
            except (KeyError, TypeError, ValueError, cattrs.BaseValidationError) as exc:
                raise ValueError(f"action {number + 1}: {describe_error(exc)}") from exc
        return Plan(
            manifest_path=data["manifest"]["path"],
            manifest_digest=data["manifest"]["digest"],
            install_root=data["install_root"],
            actions=tuple(actions),
            noops=tuple(noop_from_dict(n) for n in data["noops"]),
            fingerprints=dict(data["observed"]["fingerprints"]),
            prefixes=dict(data["prefixes"]),
            external_paths=tuple(data["external_paths"]),
            checked=_checked(data.get("checked")),
        )
    except (KeyError, TypeError, ValueError, cattrs.BaseValidationError) as exc:
        raise ReconcileError(
            f"{source}: not a reconcile plan ({describe_error(exc)})",
            hint="pass a file written by 'reconcile plan --out'",
            reference="invalid-plan",
        ) from exc


def _checked(value: Any) -> CheckMode | None:
    """How the saved plan compared prefixes (absent from plans of older versions)."""
    if value is None or value == "fast" or value == "contents":
        return value  # type: ignore[no-any-return]
    raise ValueError(f"checked must be 'fast', 'contents' or null, got {value!r}")


def write_plan(plan: Plan, path: Path) -> None:
    text = json.dumps(plan_to_dict(plan), indent=1, sort_keys=False) + "\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def read_plan(path: Path) -> Plan:
    try:
        data = bounded_json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ReconcileError(f"{path}: no such plan file", reference="invalid-plan") from exc
    except (OSError, ValueError) as exc:
        raise ReconcileError(
            f"{path}: cannot read the plan: {exc}", reference="invalid-plan"
        ) from exc
    return plan_from_dict(data, source=str(path))


def stale_resources(saved: Plan, fresh: Plan) -> list[str]:
    """What changed between a saved plan and a fresh one, one line per resource."""
    changes = []
    if saved.manifest_digest != fresh.manifest_digest:
        changes.append(f"manifest {fresh.manifest_path} changed since the plan was made")
    for key in sorted(set(saved.fingerprints) | set(fresh.fingerprints)):
        old, new = saved.fingerprints.get(key), fresh.fingerprints.get(key)
        if old != new:
            changes.append(f"{key}: was {old or 'not part of the plan'}, now {new or 'not needed'}")
    return changes
