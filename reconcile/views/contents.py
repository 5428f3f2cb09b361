"""What a view holds, as data: the specs it links, where each lands, and how. The
fingerprint of this is what a generation records and what the planner compares."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import attrs

from reconcile.manifest.model import ConflictPolicy, LinkKind
from reconcile.reprs import fields_repr


@attrs.frozen(kw_only=True)
class ViewSpec:
    """One installed prefix in a view, and the folder of the view it is merged into."""

    __repr__ = fields_repr

    hash: str
    name: str
    version: str
    prefix: str
    projection: str = ""  # relative to the view; "" merges into its root

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}/{self.hash[:7]}"


@attrs.frozen(kw_only=True)
class ViewContents:
    """Everything that decides a view's files: two equal contents build equal trees from
    the same prefixes."""

    __repr__ = fields_repr

    link: LinkKind
    conflicts: ConflictPolicy
    exclude: tuple[str, ...]
    specs: tuple[ViewSpec, ...]  # in the order they are merged (the first wins a conflict)

    def fingerprint(self) -> str:
        canonical = json.dumps(contents_to_dict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def spec_to_dict(spec: ViewSpec) -> dict[str, str]:
    return attrs.asdict(spec)


def spec_from_dict(data: Any) -> ViewSpec:
    """``ValueError`` when ``data`` is not a view spec as ``spec_to_dict`` writes it."""
    if not isinstance(data, dict) or set(data) != {f.name for f in attrs.fields(ViewSpec)}:
        raise ValueError("expected a spec with hash, name, version, prefix and projection")
    if not all(isinstance(value, str) for value in data.values()):
        raise ValueError("every field of a view spec is a string")
    return ViewSpec(**data)


def contents_to_dict(contents: ViewContents) -> dict[str, Any]:
    return {
        "link": contents.link,
        "conflicts": contents.conflicts,
        "exclude": list(contents.exclude),
        "specs": [spec_to_dict(spec) for spec in contents.specs],
    }
