"""Plans to and from JSON (``schemas/plan.schema.json``): for ``--json`` and saved plans."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from reconcile.errors import ReconcileError
from reconcile.manifest.model import Source
from reconcile.plan.model import (
    FORMAT_VERSION,
    Action,
    InstallAction,
    MirrorPermissionsAction,
    NoOp,
    PermissionsAction,
    Plan,
    PublishAction,
    SourceAction,
    SyncAction,
)
from reconcile.sources.layout import source_paths

_DETAIL_FIELDS = (
    "hash",
    "name",
    "version",
    "prefix",
    "mirror",
    "mirror_url",
    "spec_url",
    "tarball_url",
    "tarball_sha256",
    "signer",
    "dependencies",
    "allowed_link_targets",
    "externals",
    "spec",
)


_SYNC_FIELDS = (
    "hash",
    "name",
    "version",
    "mirror",
    "mirror_url",
    "layout",
    "source",
    "source_url",
    "source_layout",
    "source_signed",
    "sign_with",
    "fingerprint",
)


def observed_digest(fingerprints: dict[str, str]) -> str:
    canonical = json.dumps(fingerprints, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    actions = []
    for action in plan.actions:
        details: dict[str, Any]
        if isinstance(action, PublishAction):
            details = {
                name: getattr(action, name)
                for name in (
                    "hash",
                    "name",
                    "version",
                    "prefix",
                    "mirror",
                    "mirror_url",
                    "layout",
                    "key",
                    "fingerprint",
                    "buildpath",
                )
            }
            details["hash_to_prefix"] = dict(action.hash_to_prefix)
        elif isinstance(action, SyncAction):
            details = {name: getattr(action, name) for name in _SYNC_FIELDS}
            details["spec"] = dict(action.spec)
        elif isinstance(action, MirrorPermissionsAction):
            details = {
                "mirror": action.mirror,
                "root": action.root,
                "permissions": dict(action.permissions),
                "changes": action.changes,
                "examples": list(action.examples),
            }
        elif isinstance(action, PermissionsAction):
            details = {
                "hash": action.hash,
                "name": action.name,
                "version": action.version,
                "prefix": action.prefix,
                "permissions": dict(action.permissions),
            }
        else:
            details = {name: getattr(action, name) for name in _DETAIL_FIELDS}
            details["dependencies"] = list(action.dependencies)
            details["allowed_link_targets"] = list(action.allowed_link_targets)
            details["bytes"] = action.tarball_bytes
            details["cached"] = action.cached
            details["alternates"] = [
                {"mirror": name, "tarball_url": url} for name, url in action.alternates
            ]
        actions.append(
            {
                "id": action.id,
                "action": action.kind,
                "resource": action.resource,
                "reason": action.reason,
                "details": details,
            }
        )
    for step in plan.source_actions:
        actions.append(
            {
                "id": step.id,
                "action": f"source-{step.kind}",
                "resource": step.resource,
                "reason": step.reason,
                "details": {
                    "name": step.name,
                    "version": step.version,
                    "mirror": step.mirror,
                    "mirror_root": step.mirror_root,
                    "url": step.shown_url,
                    "sha256": step.sha256,
                    "archive": step.archive,
                    "link": step.link,
                },
            }
        )
    return {
        "format_version": plan.format_version,
        "manifest": {"path": plan.manifest_path, "digest": plan.manifest_digest},
        "install_root": plan.install_root,
        "actions": actions,
        "noops": [{"resource": n.resource, "reason": n.reason} for n in plan.noops],
        "summary": {
            "install": len(plan.installs),
            "permissions": len(plan.permission_changes),
            "publish": len(plan.publications),
            "sources": len(plan.source_actions),
            "mirror_permissions": len(plan.mirror_permission_changes),
            "sync": len(plan.syncs),
            "noop": len(plan.noops),
            "bytes_to_fetch": plan.bytes_to_fetch,
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
        actions: list[Action] = []
        source_actions = []
        for item in data["actions"]:
            d = item["details"]
            if str(item["action"]).startswith("source-"):
                source_actions.append(_source_action(item))
                continue
            if item["action"] == "publish":
                actions.append(
                    PublishAction(
                        hash=d["hash"],
                        name=d["name"],
                        version=d["version"],
                        prefix=d["prefix"],
                        mirror=d["mirror"],
                        mirror_url=d["mirror_url"],
                        layout=int(d["layout"]),
                        key=d["key"],
                        fingerprint=d["fingerprint"],
                        buildpath=d["buildpath"],
                        hash_to_prefix=dict(d["hash_to_prefix"]),
                        reason=item["reason"],
                    )
                )
                continue
            if item["action"] == "sync":
                actions.append(
                    SyncAction(
                        reason=item["reason"],
                        spec=dict(d["spec"]),
                        **{k: d[k] for k in _SYNC_FIELDS},
                    )
                )
                continue
            if item["action"] == "mirror-permissions":
                actions.append(
                    MirrorPermissionsAction(
                        mirror=d["mirror"],
                        root=d["root"],
                        permissions=dict(d["permissions"]),
                        changes=int(d["changes"]),
                        examples=tuple(d["examples"]),
                        reason=item["reason"],
                    )
                )
                continue
            if item["action"] == "permissions":
                actions.append(
                    PermissionsAction(
                        hash=d["hash"],
                        name=d["name"],
                        version=d["version"],
                        prefix=d["prefix"],
                        permissions=dict(d["permissions"]),
                        reason=item["reason"],
                    )
                )
                continue
            if item["action"] != "install":
                raise ValueError(f"unknown action {item['action']!r}")
            actions.append(
                InstallAction(
                    hash=d["hash"],
                    name=d["name"],
                    version=d["version"],
                    prefix=d["prefix"],
                    mirror=d["mirror"],
                    mirror_url=d["mirror_url"],
                    spec_url=d["spec_url"],
                    tarball_url=d["tarball_url"],
                    tarball_sha256=d["tarball_sha256"],
                    tarball_bytes=int(d["bytes"]),
                    signer=d["signer"],
                    reason=item["reason"],
                    dependencies=tuple(d["dependencies"]),
                    allowed_link_targets=tuple(d["allowed_link_targets"]),
                    externals=dict(d["externals"]),
                    cached=bool(d["cached"]),
                    alternates=tuple((a["mirror"], a["tarball_url"]) for a in d["alternates"]),
                    spec=dict(d["spec"]),
                )
            )
        return Plan(
            manifest_path=data["manifest"]["path"],
            manifest_digest=data["manifest"]["digest"],
            install_root=data["install_root"],
            actions=tuple(actions),
            noops=tuple(NoOp(resource=n["resource"], reason=n["reason"]) for n in data["noops"]),
            fingerprints=dict(data["observed"]["fingerprints"]),
            prefixes=dict(data["prefixes"]),
            external_paths=tuple(data["external_paths"]),
            source_actions=tuple(source_actions),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ReconcileError(
            f"{source}: not a reconcile plan ({type(exc).__name__}: {exc})",
            hint="pass a file written by 'reconcile plan --out'",
            reference="invalid-plan",
        ) from exc


def _source_action(item: dict[str, Any]) -> SourceAction:
    d = item["details"]
    paths = source_paths(
        Source(
            name=d["name"],
            version=d["version"],
            url=d["url"],
            sha256=d["sha256"],
            mirror=d["mirror"],
        )
    )
    return SourceAction(
        kind=item["action"].removeprefix("source-"),
        name=d["name"],
        version=d["version"],
        mirror=d["mirror"],
        mirror_root=d["mirror_root"],
        url=d["url"],  # masked: a saved plan never holds credentials (apply re-plans)
        sha256=d["sha256"],
        archive=d["archive"],
        link=d["link"],
        link_target=paths.link_target,
        reason=item["reason"],
    )


def write_plan(plan: Plan, path: Path) -> None:
    text = json.dumps(plan_to_dict(plan), indent=1, sort_keys=False) + "\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def read_plan(path: Path) -> Plan:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
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
