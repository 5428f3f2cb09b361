"""Why each installed spec is there, from the install records alone: a selector of the
manifest names it, it is in the run-time closure of one that is, or nothing asks for it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from reconcile.errors import ReconcileError
from reconcile.spack.selector import parse_selector
from reconcile.spack.spec import SpecNode, parse_node
from reconcile.state.records import InstallRecord

Status = Literal["declared", "dependency", "undeclared"]
DECLARED: Status = "declared"
DEPENDENCY: Status = "dependency"
UNDECLARED: Status = "undeclared"


def record_nodes(records: Mapping[str, InstallRecord]) -> dict[str, SpecNode]:
    nodes = {}
    for dag_hash, record in records.items():
        try:
            nodes[dag_hash] = parse_node({**record.spec, "hash": dag_hash})
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ReconcileError(
                f"install record of {record.name}/{dag_hash[:7]} holds a spec that cannot be "
                f"read: {exc}",
                hint=f"move .reconcile/records/{dag_hash}.json aside; reconcile then leaves "
                "that prefix alone",
                reference="corrupt-record",
            ) from None
    return nodes


def declared_status(
    records: Mapping[str, InstallRecord], specs: tuple[str, ...]
) -> dict[str, Status]:
    nodes = record_nodes(records)
    selectors = [parse_selector(text) for text in specs]
    status: dict[str, Status] = dict.fromkeys(records, UNDECLARED)
    pending = [h for h, n in nodes.items() if any(s.matches(n, nodes.get) for s in selectors)]
    for dag_hash in pending:
        status[dag_hash] = DECLARED
    seen: set[str] = set()
    while pending:
        dag_hash = pending.pop()
        if dag_hash in seen:
            continue
        seen.add(dag_hash)
        for dependency in nodes[dag_hash].runtime_dependencies():
            if dependency.hash in records:
                if status[dependency.hash] == UNDECLARED:
                    status[dependency.hash] = DEPENDENCY
                pending.append(dependency.hash)
    return status


def unmatched_selectors(records: Mapping[str, InstallRecord], specs: tuple[str, ...]) -> list[str]:
    """The manifest's selectors that no installed spec satisfies."""
    nodes = record_nodes(records)
    return [
        text
        for text in specs
        if not any(parse_selector(text).matches(n, nodes.get) for n in nodes.values())
    ]


def missing_dependencies(
    records: Mapping[str, InstallRecord], status: Mapping[str, Status]
) -> dict[str, list[str]]:
    """For each declared or needed spec, the run-time dependencies with neither a record nor
    an external path (its closure is incomplete on disk)."""
    nodes = record_nodes(records)
    missing: dict[str, list[str]] = {}
    for dag_hash, node in nodes.items():
        if status[dag_hash] == UNDECLARED:
            continue
        externals = records[dag_hash].externals
        for dependency in node.runtime_dependencies():
            if dependency.hash not in records and dependency.hash not in externals:
                missing.setdefault(dag_hash, []).append(f"{dependency.name}/{dependency.hash[:7]}")
    return missing
