"""The Spack database that binary cache indexes hold (``{"database": {"installs": ...}}``),
shared by layouts 2 and 3."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from reconcile.errors import VerificationError
from reconcile.spack.spec import SpecNode, parse_node


@attrs.frozen(kw_only=True)
class IndexEntry:
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
                source, f"installs entry {dag_hash!r} holds a spec with hash {raw_spec['hash']!r}"
            )
        try:
            node = parse_node({**raw_spec, "hash": dag_hash})
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise malformed_index(source, f"installs entry {dag_hash!r}: {exc}") from exc
        entries[dag_hash] = IndexEntry(node=node, in_buildcache=record.get("in_buildcache") is True)
    return entries
