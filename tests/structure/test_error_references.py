"""Every error reference raised in reconcile/ is registered in ``errors.REFERENCES``, and the
error table in docs/cli.md is exactly the registry.

After changing the registry, regenerate the table with
``RECONCILE_UPDATE_DOCS=1 python3 -m pytest -q tests/structure/test_error_references.py``.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path

from reconcile.errors import REFERENCES

REPO = Path(__file__).resolve().parents[2]
PACKAGE_ROOT = REPO / "reconcile"
CLI_DOC = REPO / "docs" / "cli.md"
BEGIN = "<!-- error-references:begin (generated from reconcile.errors.REFERENCES) -->"
END = "<!-- error-references:end -->"


def _reference_values(tree: ast.AST) -> Iterator[ast.expr]:
    """The expressions given as a reference: ``reference=...`` arguments and class-level
    ``reference = ...`` assignments."""
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "reference":
            yield node.value
        elif isinstance(node, ast.Assign):
            if any(isinstance(t, ast.Name) and t.id == "reference" for t in node.targets):
                yield node.value
        elif (
            isinstance(node, ast.AnnAssign)
            and node.value is not None
            and isinstance(node.target, ast.Name)
            and node.target.id == "reference"
        ):
            yield node.value


def references_in(source: str, where: str) -> dict[str, str]:
    """reference -> first place it is raised. A reference must be a string literal (or a
    conditional choosing between literals): anything else could not be checked here."""
    found: dict[str, str] = {}
    for value in _reference_values(ast.parse(source)):
        literals = [
            node
            for node in ast.walk(value)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
        ]
        if isinstance(value, ast.Name) and value.id == "reference":
            continue  # ``self.reference = reference`` in ReconcileError itself
        if not literals:
            raise AssertionError(f"{where}:{value.lineno}: reference is not a string literal")
        for literal in literals:
            found.setdefault(str(literal.value), f"{where}:{literal.lineno}")
    return found


def references_in_code() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        where = str(path.relative_to(REPO))
        for reference, place in references_in(path.read_text(encoding="utf-8"), where).items():
            found.setdefault(reference, place)
    return found


def render_table() -> str:
    rows = [f"| `{reference}` | {REFERENCES[reference]} |" for reference in sorted(REFERENCES)]
    return "\n".join(["| reference | what happened |", "| --- | --- |", *rows])


def documented_table(text: str) -> str:
    assert text.count(BEGIN) == 1 and text.count(END) == 1, f"{CLI_DOC} needs one marker block"
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


def test_every_raised_reference_is_registered() -> None:
    unregistered = {r: place for r, place in references_in_code().items() if r not in REFERENCES}
    assert unregistered == {}, "add these to reconcile.errors.REFERENCES"


def test_every_registered_reference_is_raised_somewhere() -> None:
    assert sorted(set(REFERENCES) - set(references_in_code())) == []


def test_registered_meanings_are_one_line() -> None:
    bad = [r for r, meaning in REFERENCES.items() if not meaning.strip() or "\n" in meaning]
    assert bad == []
    assert all(r == r.lower() and " " not in r for r in REFERENCES)


def test_the_cli_doc_table_is_the_registry() -> None:
    if os.environ.get("RECONCILE_UPDATE_DOCS") == "1":
        _write_table()
    assert documented_table(CLI_DOC.read_text(encoding="utf-8")) == render_table(), (
        "regenerate with: RECONCILE_UPDATE_DOCS=1 python3 -m pytest tests/structure"
    )


def test_the_collector_finds_keyword_class_and_conditional_references() -> None:
    source = (
        "class E(ReconcileError):\n"
        "    reference = 'class-ref'\n"
        "raise E('m', reference='keyword-ref')\n"
        "raise E('m', reference='a-ref' if x else 'b-ref')\n"
    )
    assert set(references_in(source, "x.py")) == {"class-ref", "keyword-ref", "a-ref", "b-ref"}


def test_the_collector_refuses_a_computed_reference() -> None:
    try:
        references_in("raise E('m', reference=compute())\n", "x.py")
    except AssertionError as exc:
        assert "x.py:1" in str(exc)
    else:
        raise AssertionError("a computed reference was accepted")


def _write_table() -> None:
    text = CLI_DOC.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    CLI_DOC.write_text(f"{head}{BEGIN}\n{render_table()}\n{END}{tail}", encoding="utf-8")
