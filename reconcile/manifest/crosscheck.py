"""Checks that span several tables: unique names and cache roots, keys taken from declared
mirrors.

They read the plain TOML data rather than the model, so that they still run when some other
part of the manifest is malformed; entries of the wrong type are left to the field checks.
"""

from __future__ import annotations

import os.path
from collections.abc import Iterator
from typing import Any

from reconcile.manifest.checks import source_mirror
from reconcile.manifest.finding import Finding, at_value
from reconcile.manifest.locate import format_key_path


def _named_entries(data: dict[str, Any], table: str) -> Iterator[tuple[int, dict[str, Any]]]:
    entries = data.get(table)
    if isinstance(entries, list):
        for index, entry in enumerate(entries):
            if isinstance(entry, dict):
                yield index, entry


def _duplicate_names(data: dict[str, Any], table: str, what: str) -> Iterator[Finding]:
    first_use: dict[str, int] = {}
    for index, entry in _named_entries(data, table):
        name = entry.get("name")
        if not isinstance(name, str):
            continue
        if name in first_use:
            earlier = format_key_path((table, first_use[name]))
            yield at_value(
                (table, index, "name"),
                f"duplicate {what} name {name!r} (already used by {earlier}; names must be unique)",
            )
        else:
            first_use[name] = index


def _undeclared_sources(data: dict[str, Any]) -> Iterator[Finding]:
    declared = [
        entry["name"]
        for _, entry in _named_entries(data, "mirror")
        if isinstance(entry.get("name"), str)
    ]
    for index, entry in _named_entries(data, "key"):
        source = entry.get("source")
        mirror = source_mirror(source) if isinstance(source, str) else None
        if mirror is None or mirror in declared:
            continue
        known = (
            f"declared: {', '.join(dict.fromkeys(declared))}"
            if declared
            else "no [[mirror]] is declared"
        )
        yield at_value(
            ("key", index, "source"), f"names mirror {mirror!r}, which is not declared ({known})"
        )


def _duplicate_cache_roots(data: dict[str, Any]) -> Iterator[Finding]:
    """Two [[cache]] tables naming one folder would have its blobs listed, counted and
    collected twice. Roots are compared as written, after folding ``//``, ``/./`` and a
    trailing ``/`` (the manifest's folder is not known here)."""
    first_use: dict[str, int] = {}
    for index, entry in _named_entries(data, "cache"):
        root = entry.get("root")
        if not isinstance(root, str) or not root.strip():
            continue
        folded = os.path.normpath(root)
        if folded in first_use:
            earlier = format_key_path(("cache", first_use[folded]))
            yield at_value(
                ("cache", index, "root"),
                f"cache root {root!r} is already declared by {earlier} (expected each folder "
                "once: put all of its prefixes in one table)",
            )
        else:
            first_use[folded] = index


def cross_check(data: dict[str, Any]) -> list[Finding]:
    return [
        *_duplicate_names(data, "mirror", "mirror"),
        *_duplicate_names(data, "key", "key"),
        *_undeclared_sources(data),
        *_duplicate_cache_roots(data),
    ]
