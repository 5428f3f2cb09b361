"""Projections and padded roots, checked against what a real Spack wrote into the fixtures."""

from __future__ import annotations

import json
import re
import tarfile
from typing import Any

import pytest
import yaml
from conftest import GCC_RUNTIME_HASH, GREETLIB_HASH, HELLO_HASH, UNSIGNED_CACHE
from hypothesis import given
from hypothesis import strategies as st

from reconcile.spack.projection import (
    PADDING_COMPONENT,
    format_projection,
    pad_root,
    validate_projection,
)
from reconcile.spack.spec import SpecNode, parse_node, parse_spec_document

# The projection the fixtures were built with (Spack 0.23's default).
SPACK_DEFAULT = "{architecture}/{compiler.name}-{compiler.version}/{name}-{version}-{hash}"
BUILD_ROOT = "/tmp/research-spack/opt"


def _fixture_node(dag_hash: str) -> SpecNode:
    (spec_file,) = (UNSIGNED_CACHE / "build_cache").glob(f"*-{dag_hash}.spec.json")
    return parse_spec_document(json.loads(spec_file.read_text())).root


def _binary_distribution(dag_hash: str) -> dict[str, Any]:
    """The ``.spack/binary_distribution`` Spack stored in the tarball of ``dag_hash``."""
    (tarball,) = (UNSIGNED_CACHE / "build_cache").rglob(f"*-{dag_hash}.spack")
    with tarfile.open(tarball) as archive:
        for member in archive.getmembers():
            if member.name.endswith(".spack/binary_distribution"):
                stream = archive.extractfile(member)
                assert stream is not None
                loaded: dict[str, Any] = yaml.safe_load(stream.read())
                return loaded
    raise AssertionError(f"no binary_distribution in {tarball}")


@pytest.mark.parametrize("dag_hash", [HELLO_HASH, GREETLIB_HASH, GCC_RUNTIME_HASH])
def test_spack_default_projection_gives_the_prefixes_spack_made(dag_hash: str) -> None:
    info = _binary_distribution(dag_hash)
    relative = format_projection(SPACK_DEFAULT, _fixture_node(dag_hash))
    assert relative == info["relative_prefix"]
    assert f"{info['buildpath']}/{relative}" == info["hash_to_prefix"][dag_hash]


def test_pad_root_gives_the_buildpath_of_the_fixtures() -> None:
    buildpath = _binary_distribution(HELLO_HASH)["buildpath"]
    assert pad_root(BUILD_ROOT, 128) == buildpath
    assert buildpath == (
        "/tmp/research-spack/opt/__spack_path_placeholder__/__spack_path_placeholder__"
        "/__spack_path_placeholder__/__spack_path_placeholde"
    )


def test_format_projection_placeholders() -> None:
    node = _fixture_node(HELLO_HASH)
    assert format_projection("{name}-{version}-{hash}", node) == f"hello-app-3.0-{HELLO_HASH}"
    assert format_projection("{name}/{hash:7}", node) == "hello-app/d7r6xmz"
    assert format_projection("{hash:32}", node) == HELLO_HASH
    assert format_projection("{arch}/{platform}/{os}/{target}/{hash:1}", node) == (
        "linux-debian12-x86_64_v4/linux/debian12/x86_64_v4/d"
    )
    assert format_projection(
        "{architecture.platform}-{architecture.os}-{architecture.target}-{hash:3}", node
    ) == ("linux-debian12-x86_64_v4-d7r")
    assert format_projection("{namespace}.{compiler.name}@{compiler.version}-{hash:2}", node) == (
        "myns.gcc@12.2.0-d7"
    )


def test_a_node_without_compiler_renders_none() -> None:
    node = _fixture_node(GREETLIB_HASH)
    raw = dict(node.raw)
    raw.pop("compiler")
    raw.pop("namespace")
    bare = parse_node(raw)
    assert format_projection("{compiler.name}-{compiler.version}-{namespace}-{hash:4}", bare) == (
        "none-none-none-yrhi"
    )


def test_format_projection_refuses_values_that_would_change_the_path() -> None:
    raw = dict(_fixture_node(HELLO_HASH).raw)
    for version in ("1/../../etc", "..", ""):
        node = parse_node({**raw, "version": version})
        with pytest.raises(ValueError, match="cannot be part of a path"):
            format_projection("{name}-{version}-{hash}", node)


@pytest.mark.parametrize(
    "projection",
    [
        "{name}-{version}-{hash}",
        SPACK_DEFAULT,
        "{arch}/{name}-{hash:7}",
        "team/{name}/{version}/{hash:12}",
        "{hash}",
        "{namespace}.{name}-{hash:32}",
    ],
)
def test_valid_projections(projection: str) -> None:
    assert validate_projection(projection) is None
    format_projection(projection, _fixture_node(HELLO_HASH))


@pytest.mark.parametrize(
    ("projection", "complaint"),
    [
        ("", "is empty"),
        ("{name}-{version}", "has no {hash} or {hash:N}"),
        ("/opt/{name}-{hash}", "is absolute"),
        ("../{name}-{hash}", "'..' path component"),
        ("{name}/../{hash}", "'..' path component"),
        ("{name}//{hash}", "empty, '.' or '..' path component"),
        ("./{hash}", "empty, '.' or '..' path component"),
        ("{hash}/", "empty, '.' or '..' path component"),
        ("{name-{hash}", "inside a placeholder"),
        ("{name}}-{hash}", "unmatched '}'"),
        ("{name}-{hash", "unmatched '{'"),
        ("{variants}-{hash}", "unknown placeholder {variants}"),
        ("{hash:0}", "expected 1 to 32"),
        ("{hash:33}", "expected 1 to 32"),
        ("{hash:x}", "unknown placeholder {hash:x}"),
        ("a\\b-{hash}", "backslash"),
    ],
)
def test_invalid_projections(projection: str, complaint: str) -> None:
    problem = validate_projection(projection)
    assert problem is not None
    assert complaint in problem
    with pytest.raises(ValueError, match=re.escape(problem)):
        format_projection(projection, _fixture_node(HELLO_HASH))


@pytest.mark.parametrize(
    ("root", "length", "expected"),
    [
        ("/opt", 4, "/opt"),  # already that long
        ("/opt/spack", 5, "/opt/spack"),  # longer: unchanged, never cut
        ("/opt", 5, "/opt"),  # one short: a lone '/' would be normalised away, as in Spack
        ("/opt", 6, "/opt/_"),
        ("/opt", 31, "/opt/" + PADDING_COMPONENT),
        ("/opt", 32, "/opt/" + PADDING_COMPONENT + "/"),
        ("/opt", 33, "/opt/" + PADDING_COMPONENT + "/_"),
        ("/opt/", 31, "/opt/" + PADDING_COMPONENT),  # a trailing slash is not counted
        ("/", 10, "/__spack_p"),
    ],
)
def test_pad_root_edges(root: str, length: int, expected: str) -> None:
    assert pad_root(root, length) == expected


def _spack_add_padding(path: str, length: int) -> str:
    """Spack's algorithm as its documentation describes it, written independently: whole
    padding components joined by '/', the last one cut, joined to the path."""
    missing = length - len(path)
    if missing <= 1:
        return path
    body = missing - 1  # one character goes to the separator after the path
    size = len(PADDING_COMPONENT) + 1
    parts = [PADDING_COMPONENT] * (body // size) + [PADDING_COMPONENT[: body % size]]
    return path + "/" + "/".join(parts)


@given(
    root=st.from_regex(r"\A(/[a-z0-9._-]{1,12}){1,6}\Z"),
    length=st.integers(min_value=1, max_value=600),
)
def test_pad_root_matches_spack(root: str, length: int) -> None:
    padded = pad_root(root, length)
    assert padded == _spack_add_padding(root, length)
    assert padded.startswith(root)
    if length - len(root) > 1:
        assert len(padded) == length
        assert set(padded[len(root) :].split("/")[1:-1]) <= {PADDING_COMPONENT}
    else:
        assert padded == root
