"""Symlinks: absolute targets under an old prefix are re-pointed, others stay."""

from __future__ import annotations

import os
from pathlib import Path

from reconcile.relocate.links import relocate_symlinks
from reconcile.relocate.prefix_map import PrefixMap

PREFIX_MAP = PrefixMap(pairs=(("/build/root/dep", "/new/dep"), ("/build/root", "/new")))


def test_absolute_links_under_old_prefixes_are_repointed(tmp_path: Path) -> None:
    (tmp_path / "share" / "deep").mkdir(parents=True)
    links = {
        "share/message": "/build/root/dep/share/message.txt",
        "share/deep/root-link": "/build/root/other",
        "share/folder-link": "/build/root/dep/share",
        "exact": "/build/root/dep",
    }
    for name, target in links.items():
        (tmp_path / name).symlink_to(target)

    assert relocate_symlinks(tmp_path, PREFIX_MAP) == 4

    assert os.readlink(tmp_path / "share/message") == "/new/dep/share/message.txt"
    assert os.readlink(tmp_path / "share/deep/root-link") == "/new/other"
    assert os.readlink(tmp_path / "share/folder-link") == "/new/dep/share"
    assert os.readlink(tmp_path / "exact") == "/new/dep"
    assert sorted(p.name for p in (tmp_path / "share").iterdir()) == [
        "deep",
        "folder-link",
        "message",
    ]


def test_relative_and_unrelated_links_stay(tmp_path: Path) -> None:
    unrelated = {
        "relative": "../build/root/dep",
        "system": "/usr/lib/libc.so.6",
        "lookalike": "/build/rootless/dep",
    }
    for name, target in unrelated.items():
        (tmp_path / name).symlink_to(target)

    assert relocate_symlinks(tmp_path, PREFIX_MAP) == 0
    assert {name: os.readlink(tmp_path / name) for name in unrelated} == unrelated


def test_links_are_not_followed_out_of_the_prefix(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").symlink_to("/build/root/dep/x")
    prefix = tmp_path / "prefix"
    prefix.mkdir()
    (prefix / "escape").symlink_to(outside)

    assert relocate_symlinks(prefix, PREFIX_MAP) == 0
    assert os.readlink(outside / "victim") == "/build/root/dep/x"
