"""The glob language of ``[drift] ignore``."""

from __future__ import annotations

import pytest

from reconcile.observe.ignore import IgnoreRules


@pytest.mark.parametrize(
    ("pattern", "path", "ignored"),
    [
        ("**/__pycache__/**", "__pycache__/a.pyc", True),
        ("**/__pycache__/**", "lib/python/__pycache__/a.pyc", True),
        ("**/__pycache__/**", "lib/python/__pycache__", True),
        ("**/__pycache__/**", "lib/pycache/a.pyc", False),
        ("*.log", "run.log", True),
        ("*.log", "bin/run.log", False),
        ("bin/*", "bin/x", True),
        ("bin/*", "bin/x/y", False),
        ("share/**", "share/a/b/c", True),
        ("share/**", "shared/a", False),
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        ("a.c", "abc", False),  # '.' is literal
    ],
)
def test_globs(pattern: str, path: str, ignored: bool) -> None:
    assert IgnoreRules([pattern]).ignores(path) is ignored


def test_no_patterns_ignore_nothing() -> None:
    assert not IgnoreRules().ignores("anything")
