"""The Spack database that binary cache indexes hold (``{"database": {"installs": ...}}``),
shared by layouts 2 and 3."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

import attrs

from reconcile.bounded_json import shown
from reconcile.errors import VerificationError
from reconcile.reprs import fields_repr
from reconcile.spack.database_node import database_node
from reconcile.spack.spec import RUNTIME_DEPTYPES, SpecNode, parse_node


@attrs.frozen(kw_only=True)
class IndexEntry:
    __repr__ = fields_repr

    node: SpecNode
    in_buildcache: bool


def malformed_index(source: str, reason: str) -> VerificationError:
    # Nothing from a file that is not what it claims to be is used: observers treat this
    # like a bad signature.
    return VerificationError(
        f"{source}: {reason}",
        hint="the mirror serves a damaged index; check the URL, or regenerate the index with "
        "Spack (spack buildcache update-index)",
        reference="malformed-metadata",
    )


def database_entries(document: object, *, source: str) -> dict[str, IndexEntry]:
    """The ``installs`` of a Spack database by DAG hash, externals included."""
    database = document.get("database") if isinstance(document, Mapping) else None
    installs = database.get("installs") if isinstance(database, Mapping) else None
    if not isinstance(installs, Mapping):
        raise malformed_index(
            source, "expected a Spack database: {'database': {'installs': {...}}}"
        )
    entries: dict[str, IndexEntry] = {}
    for dag_hash, record in installs.items():
        if not isinstance(record, Mapping) or not isinstance(record.get("spec"), Mapping):
            raise malformed_index(source, f"installs entry {dag_hash!r} has no 'spec' object")
        raw_spec: Mapping[str, Any] = record["spec"]
        if raw_spec.get("hash", dag_hash) != dag_hash:
            raise malformed_index(
                source,
                f"installs entry {dag_hash!r} holds a spec with hash {shown(raw_spec['hash'])}",
            )
        try:
            # not copied when it names its hash (it does in every index Spack writes): a large
            # index held twice is what made it cost a gigabyte
            spec = raw_spec if raw_spec.get("hash") == dag_hash else {**raw_spec, "hash": dag_hash}
            node = parse_node(spec)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise malformed_index(source, f"installs entry {dag_hash!r}: {exc}") from exc
        entries[dag_hash] = IndexEntry(node=node, in_buildcache=record.get("in_buildcache") is True)
    return entries


def dependency_order(nodes: Iterable[SpecNode]) -> list[SpecNode]:
    """Dependencies before dependents (among the given nodes), else in the given order.

    Walked with an explicit stack, so a chain of any length is fine; a cycle is broken
    where it closes."""
    by_hash = {node.hash: node for node in nodes}
    ordered: list[SpecNode] = []
    seen: set[str] = set()
    for start in by_hash.values():
        if start.hash in seen:
            continue
        seen.add(start.hash)
        stack = [(start, iter(start.dependencies))]
        while stack:
            node, pending = stack[-1]
            dependency = next(pending, None)
            if dependency is None:
                stack.pop()
                ordered.append(node)
            elif dependency.hash in by_hash and dependency.hash not in seen:
                seen.add(dependency.hash)
                child = by_hash[dependency.hash]
                stack.append((child, iter(child.dependencies)))
    return ordered


def ref_counts(installs: Mapping[str, Any], *, all_edges: bool = False) -> dict[str, int]:
    """How many listed specs depend on each spec, as Spack's database counts: over link and
    run edges in Spack 0.23's databases, over every edge (build included) in Spack 1.x's."""
    counts = dict.fromkeys(installs, 0)
    for record in installs.values():
        for dependency in record.get("spec", {}).get("dependencies", ()) or ():
            deptypes = (dependency.get("parameters") or {}).get("deptypes", ())
            counted = all_edges or RUNTIME_DEPTYPES.intersection(deptypes)
            if dependency.get("hash") in counts and counted:
                counts[dependency["hash"]] += 1
    return counts


def add_entries(
    installs: dict[str, Any],
    nodes: Iterable[SpecNode],
    *,
    in_buildcache: Collection[str] | None = None,
    spack_1x: bool = False,
) -> None:
    """Add or replace ``nodes`` in a database's ``installs`` (what a writer publishes).

    A node is ``in_buildcache`` when its tarball is in this mirror: the hashes in
    ``in_buildcache`` (every non-external node when None); other nodes, externals and
    build-only dependencies, are listed without it. An entry already ``in_buildcache`` is
    never demoted. ``ref_count`` is recomputed over the whole database. With ``spack_1x``
    (a version-8 database), nodes are written in the form Spack 1.x reads (spec format 5,
    see ``spack.database_node``) and every edge type counts.
    """
    for node in dependency_order(nodes):
        known = installs.get(node.hash)
        here = not node.is_external and (in_buildcache is None or node.hash in in_buildcache)
        if not here and isinstance(known, dict) and known.get("in_buildcache"):
            continue  # never demote a spec whose tarball is here
        spec = {**node.raw, "hash": node.hash}
        installs[node.hash] = {
            "spec": database_node(spec) if spack_1x else spec,
            "ref_count": 0,
            "in_buildcache": here,
        }
    for dag_hash, count in ref_counts(installs, all_edges=spack_1x).items():
        if isinstance(installs[dag_hash], dict):
            installs[dag_hash]["ref_count"] = count
