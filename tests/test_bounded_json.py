"""bounded_json.loads with repeated values shared reads every document as plain json.loads
does, and refuses what it refuses."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconcile import bounded_json

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(documents)
def test_a_document_reads_the_same_with_repeats_shared(document: object) -> None:
    text = json.dumps(document)
    plain = bounded_json.loads(text)
    shared = bounded_json.loads(text, share_repeats=True)
    # compared as JSON text: Python's == takes true for 1 and 1 for 1.0, JSON does not
    assert json.dumps(shared) == json.dumps(plain)
    assert bounded_json.loads(text.encode(), share_repeats=True) == shared


@pytest.mark.parametrize(
    "text",
    [
        '[{"a": 1}, {"a": true}, {"a": 1.0}, {"a": "1"}]',
        '[{"a": 0}, {"a": false}, {"a": null}, {"a": []}, {"a": ""}]',
        '[{"a": [], "b": 1}, {"b": 1, "a": []}]',
    ],
)
def test_equal_looking_values_of_different_json_types_stay_apart(text: str) -> None:
    assert json.dumps(bounded_json.loads(text, share_repeats=True)) == json.dumps(json.loads(text))


def test_repeated_objects_and_short_strings_are_one_object() -> None:
    entries = [
        {"arch": {"platform": "linux", "target": "x86_64"}, "name": f"p{n}"} for n in range(3)
    ]
    shared = bounded_json.loads(json.dumps(entries), share_repeats=True)
    assert isinstance(shared, list)
    assert len({id(entry["arch"]) for entry in shared}) == 1
    assert len({id(entry) for entry in shared}) == 3


@pytest.mark.parametrize("share_repeats", [False, True])
def test_deep_nesting_is_refused_either_way(share_repeats: bool) -> None:
    with pytest.raises(bounded_json.TooDeepError):
        bounded_json.loads("[" * 100 + "]" * 100, share_repeats=share_repeats)
    with pytest.raises(bounded_json.TooDeepError):
        bounded_json.loads("[" * 100_000 + "]" * 100_000, share_repeats=share_repeats)
