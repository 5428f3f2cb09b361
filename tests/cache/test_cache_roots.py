"""Choosing the cache root for a URL: first match wins, a root without prefixes matches
every URL, a URL no root matches is not cached; and roots resolved from a manifest."""

from __future__ import annotations

from pathlib import Path

import pytest
from cache_support import root

from reconcile.cache.roots import (
    cache_roots_of,
    prefix_matches,
    select_root,
    strip_credentials,
)
from reconcile.manifest.load import loads_manifest

PR = "https://mirror.example.org/pr-1234/"
TARBALL = "build_cache/linux/hello-app-3.0.spack"


def test_first_matching_root_wins_over_later_ones(tmp_path: Path) -> None:
    roots = [
        root(tmp_path / "pr", PR),
        root(tmp_path / "also-pr", "https://mirror.example.org/"),
        root(tmp_path / "shared"),
    ]
    assert select_root(roots, PR + TARBALL) == roots[0]
    assert select_root(roots, "https://mirror.example.org/develop/" + TARBALL) == roots[1]
    assert select_root(roots, "s3://bucket/x.spack") == roots[2]


def test_a_root_without_prefixes_matches_every_url(tmp_path: Path) -> None:
    shared = root(tmp_path / "shared")
    assert shared.matches_every_url
    for url in (PR + TARBALL, "file:///srv/mirror/x.spack", "s3://b/k", "http://h:8080/x"):
        assert select_root([shared], url) == shared


def test_a_url_that_matches_no_root_is_not_cached(tmp_path: Path) -> None:
    roots = [root(tmp_path / "pr", PR), root(tmp_path / "s3", "s3://bucket/team/")]
    assert select_root(roots, "https://other.example.org/pr-1234/" + TARBALL) is None
    assert select_root(roots, "s3://bucket/other/x.spack") is None
    assert select_root([], PR + TARBALL) is None


def test_layered_per_pr_and_shared_roots(tmp_path: Path) -> None:
    """The CI layout of the seed discussion: each pull request's mirror has its own root,
    everything else (the public develop cache) lands in the shared one."""
    pr_root = root(tmp_path / "pr-1234", PR)
    other_pr = root(tmp_path / "pr-5678", "https://mirror.example.org/pr-5678/")
    shared = root(tmp_path / "shared")
    roots = [pr_root, other_pr, shared]
    assert select_root(roots, PR + TARBALL) == pr_root
    assert select_root(roots, "https://mirror.example.org/pr-5678/" + TARBALL) == other_pr
    assert select_root(roots, "https://mirror.example.org/develop/" + TARBALL) == shared


@pytest.mark.parametrize(
    ("prefix", "url", "matches"),
    [
        # whole path segments only
        ("https://h/pr-12", "https://h/pr-1234/x", False),
        ("https://h/pr-12", "https://h/pr-12/x", True),
        ("https://h/pr-12", "https://h/pr-12", True),
        ("https://h/pr-12/", "https://h/pr-12/x", True),
        ("https://h/pr-12/", "https://h/pr-12", False),
        ("s3://bucket", "s3://bucket/key", True),
        ("s3://bucket", "s3://bucket2/key", False),
        # scheme and host case, credentials and percent-encoding are not compared
        ("HTTPS://Mirror.Example.ORG/pr/", "https://mirror.example.org/pr/x", True),
        ("https://h/pr/", "https://ci:token@h/pr/x", True),
        ("https://h/Pr/", "https://h/pr/x", False),  # paths are case-sensitive
        ("file:///srv/my mirror/", "file:///srv/my%20mirror/x", True),
        ("file:///srv/m/", "file://localhost/srv/m/x", True),
        # ports are part of the host
        ("http://h/", "http://h:8080/x", False),
        ("http://h:8080/", "http://h:8080/x", True),
        ("http://[::1]:9000/b/", "http://[::1]:9000/b/k", True),
        # a mirror URL's query rides on every URL below it: queries are not compared
        ("https://h/m?token=a", "https://h/m/build_cache/x.spack?token=a", True),
        ("https://h/m", "https://h/m/build_cache/x.spack?token=a", True),
        ("https://h/m?token=a", "https://h/m2/x.spack?token=a", False),
        ("https://h/m?token=a", "https://h/other/x?token=a", False),
    ],
)
def test_prefix_matching(prefix: str, url: str, matches: bool) -> None:
    assert prefix_matches(prefix, url) is matches


def test_credentials_are_stripped_before_anything_is_written_down() -> None:
    # query-string values are masked too: signed URLs carry their token there
    assert strip_credentials("https://ci:s3cret@h:8443/x?y") == "https://h:8443/x?***"
    assert strip_credentials("https://h/x?sig=abc&e=1") == "https://h/x?sig=***&e=***"
    assert strip_credentials("https://h/x") == "https://h/x"


def test_roots_and_path_prefixes_resolve_against_the_manifest_folder(tmp_path: Path) -> None:
    folder = tmp_path / "repo"
    folder.mkdir()
    text = (
        "version = 1\n"
        "[[cache]]\n"
        'root = "ci-cache/pr"\n'
        'prefixes = ["./mirrors/local/", "/srv/mirror", "https://h/pr/"]\n'
        "[[cache]]\n"
        'root = "/var/cache/reconcile"\n'
        "[[mirror]]\n"
        'name = "local"\n'
        'url = "mirrors/local"\n'
    )
    loaded = loads_manifest(text, path=folder / "reconcile.toml")
    pr, shared = cache_roots_of(loaded)
    assert pr.path == folder / "ci-cache" / "pr"
    assert pr.prefixes == (
        (folder / "mirrors" / "local").as_uri() + "/",
        "file:///srv/mirror",
        "https://h/pr/",
    )
    assert shared.path == Path("/var/cache/reconcile")
    assert shared.matches_every_url
    # A mirror declared by a relative path is matched by the prefix written as a path.
    mirror_url = loaded.mirror_url(loaded.manifest.mirror("local"))
    assert select_root([pr, shared], mirror_url + "/build_cache/x.spack") == pr
    assert select_root([pr, shared], "file:///srv/mirror-2/x.spack") == shared


def test_a_manifest_without_cache_tables_has_no_roots(tmp_path: Path) -> None:
    loaded = loads_manifest("version = 1\n", path=tmp_path / "reconcile.toml")
    assert cache_roots_of(loaded) == ()
