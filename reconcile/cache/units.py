"""Sizes and ages as people write them on a command line: ``10GiB``, ``500M``, ``7d``."""

from __future__ import annotations

import re
from datetime import timedelta

from reconcile.errors import ReconcileError

# Binary unless the unit says decimal: K, KiB = 1024 and KB = 1000, as GNU tools read them.
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    **{f"{p}": 1024**n for n, p in enumerate("kmgt", start=1)},
    **{f"{p}ib": 1024**n for n, p in enumerate("kmgt", start=1)},
    **{f"{p}b": 1000**n for n, p in enumerate("kmgt", start=1)},
}
_SIZE = re.compile(r"\s*(?P<number>[0-9]+(\.[0-9]*)?|\.[0-9]+)\s*(?P<unit>[A-Za-z]*)\s*")
_AGE_UNITS = {
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
_AGE_PART = re.compile(r"(?P<number>[0-9]+(\.[0-9]*)?|\.[0-9]+)(?P<unit>[A-Za-z]*)")

SIZE_HINT = "write a size such as 1234 (bytes), 500M or 500MiB (binary), 2GB (decimal), 10GiB"
AGE_HINT = "write an age such as 30m (minutes), 12h, 7d, 2w or 1d12h"


def _size_problem(text: str, match: re.Match[str] | None) -> str | None:
    if not text.strip():
        return "it is empty"
    if match is None:
        return "expected a number of bytes, optionally followed by a unit"
    if match["unit"].lower() not in _SIZE_UNITS:
        return f"unknown unit {match['unit']!r}"
    return None


def parse_size(text: str) -> int:
    """A size in bytes; ``ReconcileError`` (``invalid-size``) for anything else."""
    match = _SIZE.fullmatch(text)
    problem = _size_problem(text, match)
    if problem is not None or match is None:
        raise ReconcileError(
            f"not a size: {text!r} ({problem}; the units are B, K, KiB, KB, M, MiB, MB, "
            "G, GiB, GB, T, TiB and TB)",
            hint=SIZE_HINT,
            reference="invalid-size",
        )
    return int(float(match["number"]) * _SIZE_UNITS[match["unit"].lower()])


def _age_problem(text: str, parts: list[re.Match[str]]) -> str | None:
    if not text:
        return "it is empty"
    if "".join(part[0] for part in parts) != text:
        return "expected numbers, each followed by a unit"
    for part in parts:
        if not part["unit"]:
            return f"{part['number']!r} has no unit"
        if part["unit"] not in _AGE_UNITS:
            return f"unknown unit {part['unit']!r}"
    return None


def parse_age(text: str) -> timedelta:
    """An age such as ``7d`` or ``1d12h``; ``ReconcileError`` (``invalid-age``) otherwise."""
    compact = text.strip()
    parts = list(_AGE_PART.finditer(compact))
    problem = _age_problem(compact, parts)
    if problem is not None:
        raise ReconcileError(
            f"not an age: {text!r} ({problem}; the units are s, m, h, d and w)",
            hint=AGE_HINT,
            reference="invalid-age",
        )
    return sum((float(p["number"]) * _AGE_UNITS[p["unit"]] for p in parts), timedelta())
