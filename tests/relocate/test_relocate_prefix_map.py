"""The ordered old -> new prefix map built from binary_distribution."""

from __future__ import annotations

import pytest

from reconcile.buildcache.build_info import BuildInfo
from reconcile.relocate.prefix_map import PrefixMap, build_prefix_map

ROOT = "/build/root"


def info(hash_to_prefix: dict[str, str], own: str = "own") -> BuildInfo:
    return BuildInfo(
        buildpath=ROOT,
        old_prefix=hash_to_prefix[own],
        relative_prefix=None,
        relocate_textfiles=(),
        relocate_binaries=(),
        relocate_links=(),
        hash_to_prefix=hash_to_prefix,
    )


def test_dependencies_then_own_prefix_then_root() -> None:
    build_info = info(
        {"own": f"{ROOT}/app", "dep1": f"{ROOT}/lib1", "dep2": f"{ROOT}/lib2", "ext": "/usr"}
    )
    new = {"own": "/n/app", "dep1": "/n/lib1", "dep2": "/n/lib2"}

    prefix_map = build_prefix_map(build_info, own_hash="own", new_prefixes=new, new_root="/n")

    assert prefix_map.pairs == (
        (f"{ROOT}/lib1", "/n/lib1"),
        (f"{ROOT}/lib2", "/n/lib2"),
        (f"{ROOT}/app", "/n/app"),
        (ROOT, "/n"),
    )


def test_equal_pairs_are_dropped_and_an_unchanged_install_needs_nothing() -> None:
    build_info = info({"own": f"{ROOT}/app", "dep": f"{ROOT}/dep"})
    new = {"own": f"{ROOT}/app", "dep": "/elsewhere/dep"}

    assert build_prefix_map(build_info, own_hash="own", new_prefixes=new, new_root=ROOT).pairs == (
        (f"{ROOT}/dep", "/elsewhere/dep"),
    )
    same = {"own": f"{ROOT}/app", "dep": f"{ROOT}/dep"}
    assert not build_prefix_map(build_info, own_hash="own", new_prefixes=same, new_root=ROOT + "/")


def test_a_more_specific_old_prefix_comes_before_the_one_it_extends() -> None:
    # A dependency installed inside another prefix's tree (odd, but possible with projections).
    build_info = info({"own": f"{ROOT}/app", "dep": f"{ROOT}/app/vendored/dep"})
    new = {"own": "/n/app", "dep": "/n/dep"}

    prefix_map = build_prefix_map(build_info, own_hash="own", new_prefixes=new, new_root="/n")

    olds = [old for old, _ in prefix_map.pairs]
    assert olds == [f"{ROOT}/app/vendored/dep", f"{ROOT}/app", ROOT]
    for i, old in enumerate(olds):
        assert not any(old.startswith(earlier) for earlier in olds[:i])


def test_a_dependency_at_the_old_root_keeps_the_first_mapping() -> None:
    build_info = BuildInfo(
        buildpath="/b",
        old_prefix="/b/x/app",
        relative_prefix=None,
        relocate_textfiles=(),
        relocate_binaries=(),
        relocate_links=(),
        hash_to_prefix={"own": "/b/x/app", "dep": "/b"},  # a dependency at the root itself
    )
    prefix_map = build_prefix_map(
        build_info, own_hash="own", new_prefixes={"own": "/n/x/app", "dep": "/d"}, new_root="/n"
    )
    # The first mapping of an old prefix wins; the more specific one comes first.
    assert prefix_map.pairs == (("/b/x/app", "/n/x/app"), ("/b", "/d"))


def test_the_own_hash_must_have_a_new_prefix() -> None:
    with pytest.raises(ValueError, match="own"):
        build_prefix_map(info({"own": "/b/app"}), own_hash="own", new_prefixes={}, new_root="/n")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/old/app", "/new/app"),
        ("/old/app/lib", "/new/app/lib"),
        ("/old/application", "/N/application"),
        ("/old", "/N"),
        ("/older/app", None),
        ("relative/old/app", None),
        ("/usr/lib", None),
    ],
)
def test_relocate_path_matches_whole_components(path: str, expected: str | None) -> None:
    prefix_map = PrefixMap(pairs=(("/old/app", "/new/app"), ("/old", "/N")))
    assert prefix_map.relocate_path(path) == expected
