"""The package reads one way: cli -> engine -> apply -> plan -> observe -> domain -> services
-> foundation. A unit may import its own layer (without a cycle) or any layer below it."""

from __future__ import annotations

import pytest
from import_graph import PACKAGE_ROOT, cycles, unit_graph

# Lowest first. Every top-level module and subpackage of reconcile must be listed.
LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "errors",
        "userpath",
        "redact",
        "reprs",
        "atomic_write",
        "hashing",
        "pause",
        "faults",
        "safe_fs",
        "limits",
        "bounded_json",
        "folders",
        "path_globs",
        "spack",
        "manifest",
        "state",
    ),
    ("transport", "trust", "cache", "permissions"),
    ("buildcache", "archive", "relocate", "sources", "publish", "views"),
    ("observe",),
    ("plan",),
    ("apply",),
    ("engine", "bundle", "drift"),
    ("cli",),
    ("__main__", "__init__"),
)
RANK = {unit: level for level, units in enumerate(LAYERS) for unit in units}


def test_every_unit_has_a_layer() -> None:
    units = {p.stem for p in PACKAGE_ROOT.glob("*.py")} | {
        p.name for p in PACKAGE_ROOT.iterdir() if (p / "__init__.py").is_file()
    }
    assert units - set(RANK) == set(), "add new modules and packages to LAYERS"
    assert set(RANK) - units == set(), "LAYERS names a unit that no longer exists"


def test_no_import_cycle_between_units() -> None:
    assert cycles(unit_graph()) == []


def test_no_upward_import() -> None:
    upward = sorted(
        f"{unit} (layer {RANK[unit]}) imports {target} (layer {RANK[target]})"
        for unit, targets in unit_graph().items()
        for target in targets
        if RANK[target] > RANK[unit]
    )
    assert upward == []


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": set()}, []),
    ],
)
def test_cycle_finder_finds_cycles(graph: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert cycles(graph) == expected
