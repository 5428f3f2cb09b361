"""Actions to and from their JSON form, through cattrs.

Every action is ``{"id", "action", "resource", "reason", "details"}``: the first four come
from the action's protocol (``plan.model.ActionProtocol``), ``details`` are its fields as
cattrs unstructures them, with the few renames and omissions the saved-plan format (version
1, ``schemas/plan.schema.json``) has always had. The ``action`` tag picks the class when a
plan is loaded; nothing here dispatches by hand on the class of an action.
"""

from __future__ import annotations

import functools
from typing import Any

import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from reconcile.manifest.model import Source
from reconcile.plan.model import (
    Action,
    ActionKind,
    InstallAction,
    MirrorPermissionsAction,
    NoOp,
    PermissionsAction,
    PublishAction,
    RemoveAction,
    RepairAction,
    ResignAction,
    ReverifyAction,
    SourceAction,
    SyncAction,
    ViewAction,
)
from reconcile.redact import mask_credentials
from reconcile.sources.layout import source_paths

# tag -> (class, the fields the tag itself stands for)
ACTION_CLASSES: dict[ActionKind, tuple[type[Action], dict[str, str]]] = {
    "install": (InstallAction, {}),
    "repair": (RepairAction, {}),
    "reverify": (ReverifyAction, {}),
    "remove": (RemoveAction, {}),
    "permissions": (PermissionsAction, {}),
    "publish": (PublishAction, {}),
    "resign": (ResignAction, {}),
    "sync": (SyncAction, {}),
    "source-fetch": (SourceAction, {"operation": "fetch"}),
    "source-record": (SourceAction, {"operation": "record"}),
    "source-link": (SourceAction, {"operation": "link"}),
    "mirror-permissions": (MirrorPermissionsAction, {}),
    "view": (ViewAction, {}),
}


@functools.cache
def _converter() -> cattrs.Converter:
    """Built on first use: a plan that is neither saved nor printed as JSON never needs it."""
    return make_converter()


# Per class: how a field differs from its name and type in ``details`` (both directions).
_FIELDS: dict[type[Action], dict[str, Any]] = {
    InstallAction: {
        "tarball_bytes": override(rename="bytes"),
        "alternates": override(
            unstruct_hook=lambda pairs: [{"mirror": m, "tarball_url": u} for m, u in pairs],
            struct_hook=lambda items, _: tuple((a["mirror"], a["tarball_url"]) for a in items),
        ),
        # left out when unknown: plans read and print as before
        "built_prefix": override(omit_if_default=True),
        # left out unless a sigstore signature vouched for it
        "logged_at": override(omit_if_default=True),
    },
    RepairAction: {
        # the install it re-stages from, with its reason (which the top level holds apart)
        "restage": override(
            unstruct_hook=lambda install: (
                None
                if install is None
                else {**_converter().unstructure(install, InstallAction), "reason": install.reason}
            ),
            struct_hook=lambda data, _: (
                None if data is None else _converter().structure(data, InstallAction)
            ),
        ),
    },
    # left out when empty: a plan without ed25519 signing reads as before
    PublishAction: {"statement_keys": override(omit_if_default=True)},
    SyncAction: {"statement_keys": override(omit_if_default=True)},
    # left out unless a gpg key re-signs Spack's metadata: sidecar-only plans read as before
    ResignAction: {
        "key": override(omit_if_default=True),
        "fingerprint": override(omit_if_default=True),
    },
    SourceAction: {
        # a saved plan never holds credentials (apply plans afresh and compares)
        "url": override(unstruct_hook=mask_credentials),
        # left out unless the [[source]] gives a size: plans read and print as before
        "size": override(omit_if_default=True),
    },
}
# Fields that ``details`` does not hold: ``reason`` sits beside it; the rest are derived
# (from the tag, or from other fields) or only matter to the run that planned them.
_NOT_IN_DETAILS = {"reason"}
_NOT_SAVED: dict[type[Action], set[str]] = {
    SourceAction: {"operation", "link_target", "observed_size", "observed_mtime_ns"},
}


def _details_of(kind: type[Action]) -> dict[str, Any]:
    return {
        **_FIELDS.get(kind, {}),
        **{name: override(omit=True) for name in _NOT_IN_DETAILS | _NOT_SAVED.get(kind, set())},
    }


def _source_link_target(fields: dict[str, Any]) -> dict[str, Any]:
    """A saved source action's paths are checked again, as if planned from a manifest."""
    paths = source_paths(
        Source(
            name=fields["name"],
            version=fields["version"],
            url=fields["url"],
            sha256=fields["sha256"],
            mirror=fields["mirror"],
        )
    )
    return {**fields, "link_target": paths.link_target}


def make_converter() -> cattrs.Converter:
    converter = cattrs.Converter()
    for kind, _ in ACTION_CLASSES.values():
        converter.register_unstructure_hook(
            kind, make_dict_unstructure_fn(kind, converter, **_details_of(kind))
        )
        converter.register_structure_hook(
            kind, make_dict_structure_fn(kind, converter, **_FIELDS.get(kind, {}))
        )
    # a no-op that matches says nothing more (the form plans have always had)
    converter.register_unstructure_hook(
        NoOp, make_dict_unstructure_fn(NoOp, converter, differs=override(omit_if_default=True))
    )
    return converter


def action_to_dict(action: Action) -> dict[str, Any]:
    return {
        "id": action.id,
        "action": action.kind,
        "resource": action.resource,
        "reason": action.reason,
        "details": _converter().unstructure(action, type(action)),
    }


def action_from_dict(item: Any) -> Action:
    """One saved action; ``ValueError`` (or a cattrs validation error) when it is not one."""
    tag = item["action"]
    if tag not in ACTION_CLASSES:
        raise ValueError(f"unknown action {tag!r}")
    kind, tagged = ACTION_CLASSES[tag]
    fields = {**item["details"], **tagged, "reason": item["reason"]}
    if kind is SourceAction:
        fields = _source_link_target(fields)
    action: Action = _converter().structure(fields, kind)
    return action


def noop_to_dict(noop: NoOp) -> dict[str, Any]:
    result: dict[str, Any] = _converter().unstructure(noop)
    return result


def noop_from_dict(item: Any) -> NoOp:
    return _converter().structure(item, NoOp)


def describe_error(exc: Exception) -> str:
    """A codec failure in one line: cattrs' paths (``$.details.bytes``) where it has them."""
    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc, path="$.details"))
    return f"{type(exc).__name__}: {exc}"
