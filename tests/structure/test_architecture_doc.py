"""docs/architecture.md's module map names every package and module under reconcile/, each
with a description, and names nothing that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE_ROOT = REPO / "reconcile"
ARCHITECTURE = REPO / "docs" / "architecture.md"

# One entry of the map: indentation, a name (``plan/`` or ``model.py``), then a description
# after at least two spaces. Deeper-indented lines without a name continue a description.
_ENTRY = re.compile(r"^(?P<indent> *)(?P<name>[\w.]+/|[\w.]+\.py)(?: {2,}(?P<text>\S.*))?$")


def module_map(text: str) -> dict[str, str]:
    """path under reconcile/ (``plan/model.py``, ``plan/``) -> its description."""
    block = text.split("## Module map", 1)[1].split("```", 2)[1]
    entries: dict[str, str] = {}
    parents: list[tuple[int, str]] = []
    for line in block.splitlines()[1:]:
        match = _ENTRY.match(line)
        if match is None:
            continue  # a continued description
        indent = len(match["indent"])
        while parents and parents[-1][0] >= indent:
            parents.pop()
        name = match["name"]
        path = "".join(parent for _, parent in parents) + name
        if path == "reconcile/":
            parents.append((indent, ""))
            continue
        entries[path] = (match["text"] or "").strip()
        if name.endswith("/"):
            parents.append((indent, name))
    return entries


def modules_on_disk() -> set[str]:
    found: set[str] = set()
    for path in PACKAGE_ROOT.rglob("*.py"):
        relative = path.relative_to(PACKAGE_ROOT)
        if relative.name == "__init__.py":  # described by its package's entry
            if relative.parent != Path("."):
                found.add(f"{relative.parent.as_posix()}/")
        else:
            found.add(relative.as_posix())
    return found


def documented() -> dict[str, str]:
    return module_map(ARCHITECTURE.read_text(encoding="utf-8"))


def test_every_module_and_package_is_in_the_module_map() -> None:
    missing = sorted(modules_on_disk() - set(documented()))
    assert missing == [], "describe these in docs/architecture.md's module map"


def test_the_module_map_names_only_what_exists() -> None:
    assert sorted(set(documented()) - modules_on_disk()) == []


def test_every_entry_has_a_description() -> None:
    assert sorted(path for path, text in documented().items() if not text) == []


def test_the_map_parser_reads_nesting_and_continuations() -> None:
    text = (
        "## Module map\n\n```\nreconcile/\n  errors.py   the errors\n  plan/       planning\n"
        "    model.py  the plan\n              continued\n  engine.py   the loop\n```\n"
    )
    assert module_map(text) == {
        "errors.py": "the errors",
        "plan/": "planning",
        "plan/model.py": "the plan",
        "engine.py": "the loop",
    }
