"""PrefixFinder finds exactly what one regex alternation of all the old prefixes finds."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from reconcile.relocate.prefix_scan import MIN_SHARED_START, PrefixFinder
from reconcile.relocate.text import STARTS_A_PATH

ROOT = b"/build/__spack_path_placeholder__/__sp"


# Old prefixes under one root (the usual case: a shared start is searched for) or not.
pieces = st.sampled_from([b"/a", b"/ab", b"/pkg-1", b"/pkg-1/lib", b"-x", b"/", b"b"])
shared_root_olds = st.lists(
    st.lists(pieces, min_size=0, max_size=3).map(lambda parts: ROOT + b"".join(parts)),
    min_size=1,
    max_size=4,
)
unrelated_olds = st.lists(
    st.lists(pieces, min_size=1, max_size=3).map(b"".join), min_size=1, max_size=4
)
fillers = st.sampled_from(
    [b" ", b"/", b"x", b"-L", b":", b"\0", b"../", b"/x", ROOT[:10], ROOT[:-2], ROOT + b"/zz"]
)


def alternation_matches(olds: list[bytes], guard: bytes, data: bytes) -> list[tuple[int, bytes]]:
    """The plain way: one alternation of the olds, longest first, as the relocators did."""
    ordered = sorted(set(olds), key=len, reverse=True)
    pattern = re.compile(guard + b"(?:" + b"|".join(re.escape(old) for old in ordered) + b")")
    return [(match.start(), match.group()) for match in pattern.finditer(data)]


@settings(max_examples=300, deadline=None)
@given(
    olds=st.one_of(shared_root_olds, unrelated_olds),
    layout=st.lists(st.tuples(fillers, st.integers(min_value=0, max_value=9)), max_size=12),
    guarded=st.booleans(),
)
def test_same_matches_as_the_alternation(
    olds: list[bytes], layout: list[tuple[bytes, int]], guarded: bool
) -> None:
    data = b"".join(filler + olds[index % len(olds)] for filler, index in layout)
    guard = STARTS_A_PATH if guarded else b""
    expected = alternation_matches(olds, guard, data)
    assert list(PrefixFinder.build(olds, guard=guard).find(data)) == expected


def test_a_match_can_start_inside_a_shared_start_that_led_nowhere() -> None:
    olds = [b"/aa/aa/aa/x", b"/aa/aa/aa/y"]  # shared start "/aa/aa/aa/" overlaps itself
    data = b"/aa/aa/aa/aa/x /aa/aa/aa/aa/aa/y"
    finder = PrefixFinder.build(olds)
    assert finder.compare
    assert list(finder.find(data)) == alternation_matches(olds, b"", data)
    assert list(finder.find(data)) == [(3, olds[0]), (21, olds[1])]


def test_a_long_shared_start_is_searched_and_the_olds_compared() -> None:
    olds = [ROOT + b"/pkg-1", ROOT + b"/pkg-2", ROOT]
    finder = PrefixFinder.build(olds)
    assert finder.compare and len(ROOT) >= MIN_SHARED_START
    # One compiled pattern for every package of the same build root.
    assert PrefixFinder.build([ROOT + b"/other", ROOT]).pattern is finder.pattern
    data = ROOT + b"/pkg-2/lib " + ROOT + b"/pkg-3 " + ROOT[:-1]
    assert list(finder.find(data)) == [(0, ROOT + b"/pkg-2"), (len(ROOT) + 11, ROOT)]


def test_unrelated_olds_are_compiled_as_an_alternation() -> None:
    finder = PrefixFinder.build([b"/opt/a", b"/usr/b"])
    assert not finder.compare
    assert list(finder.find(b"/usr/b/opt/a")) == [(0, b"/usr/b"), (6, b"/opt/a")]


def test_no_olds_match_nothing() -> None:
    assert list(PrefixFinder.build([]).find(b"anything /at/all")) == []
