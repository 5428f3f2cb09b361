"""Every attrs class shows itself with ``reprs.fields_repr``, and that shows exactly what the
``__repr__`` attrs generates would (whose code, compiled per class, cost start-up time)."""

from __future__ import annotations

import ast
from typing import Any

import attrs
import pytest
from conftest import REPO

from reconcile.reprs import fields_repr


def _attrs_classes_without_fields_repr() -> list[str]:
    missing = []
    for path in sorted((REPO / "reconcile").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            decorators = [ast.unparse(d) for d in node.decorator_list]
            if not any(d.startswith(("attrs.", "attr.")) for d in decorators):
                continue
            if any("repr=False" in d for d in decorators):
                continue
            shown = any(
                (isinstance(item, ast.FunctionDef) and item.name == "__repr__")
                or (isinstance(item, ast.Assign) and ast.unparse(item) == "__repr__ = fields_repr")
                for item in node.body
            )
            if not shown:
                missing.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}")
    return missing


def test_every_attrs_class_takes_fields_repr() -> None:
    missing = _attrs_classes_without_fields_repr()
    assert missing == [], "give these `__repr__ = fields_repr` (from reconcile.reprs)"


def _pair(**fields: Any) -> tuple[type, type]:
    """The same class twice: with attrs' generated __repr__, and with fields_repr."""
    generated = attrs.make_class("Thing", dict(fields), frozen=True, kw_only=True)
    shared = attrs.make_class(
        "Thing", dict(fields), frozen=True, kw_only=True, bases=(), repr=False
    )
    shared.__repr__ = fields_repr  # type: ignore[method-assign]
    return generated, shared


@pytest.mark.parametrize(
    "value",
    ["plain", 'it\'s "quoted"\n', 0, -7, None, 1.5, (), ("a", 1), {"k": ["v"]}, b"\x00\xff"],
)
def test_fields_repr_shows_what_attrs_shows(value: Any) -> None:
    generated, shared = _pair(
        name=attrs.field(),
        secret=attrs.field(repr=False),  # a URL that may carry credentials, say
        short=attrs.field(repr=lambda v: f"<{type(v).__name__}>"),
        later=attrs.field(init=False, default="set"),
        last=attrs.field(default=None),
    )
    for kwargs in (
        {"name": value, "secret": "pa:ss", "short": value},
        {
            "name": "x",
            "secret": value,
            "short": [value],
            "last": value,
        },
    ):
        shown = repr(shared(**kwargs))
        assert shown == repr(generated(**kwargs))
        assert "pa:ss" not in shown


def test_nested_and_self_containing_values_show_as_attrs_shows_them() -> None:
    generated, shared = _pair(items=attrs.field())
    inner_generated, inner_shared = generated(items=(1, "a")), shared(items=(1, "a"))
    assert repr(shared(items=[inner_shared])) == repr(generated(items=[inner_generated]))
    loop: list[Any] = []
    looped_generated, looped_shared = generated(items=loop), shared(items=loop)
    loop.append(looped_shared)
    shown = repr(looped_shared)
    loop[0] = looped_generated
    assert shown == repr(looped_generated) == "Thing(items=[...])"


def test_a_real_class_leaves_out_what_it_keeps_secret() -> None:
    from reconcile.plan.model import SourceAction

    fields = {field.name for field in attrs.fields(SourceAction) if field.repr is False}
    assert "url" in fields
    assert SourceAction.__repr__ is fields_repr
