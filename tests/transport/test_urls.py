"""URLs below a mirror's URL keep the mirror's query string after their path."""

from __future__ import annotations

import pytest

from reconcile.transport.base import join_url as join_url_from_base
from reconcile.transport.urls import append_to_name, join_url, relative_to, split_query


@pytest.mark.parametrize(
    ("base", "parts", "joined"),
    [
        ("https://h/m", ("build_cache", "index.json"), "https://h/m/build_cache/index.json"),
        ("https://h/m/", ("/a/", "b"), "https://h/m/a/b"),
        (
            "https://h/m?token=t",
            ("build_cache", "x.spack"),
            "https://h/m/build_cache/x.spack?token=t",
        ),
        ("https://h/m/?a=1&b=2", ("v3", "layout.json"), "https://h/m/v3/layout.json?a=1&b=2"),
        ("https://h?t=1", ("x",), "https://h/x?t=1"),
        ("file:///srv/odd%3Fname", ("x",), "file:///srv/odd%3Fname/x"),
    ],
)
def test_join_url_puts_the_path_before_the_query(
    base: str, parts: tuple[str, ...], joined: str
) -> None:
    assert join_url(base, *parts) == joined
    assert join_url_from_base(base, *parts) == joined


def test_a_suffix_goes_on_the_name_not_on_the_query() -> None:
    url = "https://h/m/build_cache/index.json?token=t"
    assert append_to_name(url, ".hash") == "https://h/m/build_cache/index.json.hash?token=t"
    assert append_to_name("https://h/i.json", ".hash") == "https://h/i.json.hash"
    assert split_query("https://h/m?") == ("https://h/m", "?")


@pytest.mark.parametrize(
    ("url", "base", "below"),
    [
        ("https://h/m/build_cache/x?token=t", "https://h/m?token=t", "build_cache/x"),
        ("https://h/m?token=t", "https://h/m?token=t", ""),
        ("https://h/m/x", "https://h/m/", "x"),
        # another query is another mirror's URL (or a forged one): not below it
        ("https://h/m/x?token=u", "https://h/m?token=t", None),
        ("https://h/m/x", "https://h/m?token=t", None),
        # whole path segments only
        ("https://h/m2/x?token=t", "https://h/m?token=t", None),
        ("https://h/other?token=t", "https://h/m?token=t", None),
    ],
)
def test_relative_to(url: str, base: str, below: str | None) -> None:
    assert relative_to(url, base) == below
