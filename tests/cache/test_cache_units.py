"""Sizes and ages for ``cache gc``, and the errors for what they cannot mean."""

from __future__ import annotations

from datetime import timedelta

import pytest

from reconcile.cache.units import parse_age, parse_size
from reconcile.errors import ReconcileError


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1234", 1234),
        ("0", 0),
        ("1234B", 1234),
        ("10GiB", 10 * 1024**3),
        ("10gib", 10 * 1024**3),
        ("500M", 500 * 1024**2),
        ("500MiB", 500 * 1024**2),
        ("500MB", 500 * 1000**2),
        ("2K", 2048),
        ("1.5KiB", 1536),
        (" 3 TB ", 3 * 1000**4),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "it is empty"),
        ("-1", "expected a number of bytes"),
        ("ten", "expected a number of bytes"),
        ("1e9", "expected a number of bytes"),
        ("10XB", "unknown unit 'XB'"),
        ("5 M B", "expected a number of bytes"),
    ],
)
def test_parse_size_errors(text: str, problem: str) -> None:
    with pytest.raises(ReconcileError) as caught:
        parse_size(text)
    assert caught.value.reference == "invalid-size"
    assert caught.value.message.startswith(f"not a size: {text!r} ({problem}")
    assert caught.value.hint is not None
    assert "10GiB" in caught.value.hint


@pytest.mark.parametrize(
    ("text", "age"),
    [
        ("7d", timedelta(days=7)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("45s", timedelta(seconds=45)),
        ("2w", timedelta(weeks=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("1.5h", timedelta(minutes=90)),
        (" 0s ", timedelta(0)),
    ],
)
def test_parse_age(text: str, age: timedelta) -> None:
    assert parse_age(text) == age


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "it is empty"),
        ("7", "'7' has no unit"),
        ("7y", "unknown unit 'y'"),
        ("7D", "unknown unit 'D'"),
        ("7 d", "expected numbers, each followed by a unit"),
        ("d", "expected numbers, each followed by a unit"),
        ("-7d", "expected numbers, each followed by a unit"),
    ],
)
def test_parse_age_errors(text: str, problem: str) -> None:
    with pytest.raises(ReconcileError) as caught:
        parse_age(text)
    assert caught.value.reference == "invalid-age"
    assert (
        caught.value.message == f"not an age: {text!r} ({problem}; the units are s, m, h, d and w)"
    )
    assert caught.value.diagnostics().count("hint: ") == 1
