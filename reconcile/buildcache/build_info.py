"""``.spack/binary_distribution``: what the builder recorded for relocation."""

from __future__ import annotations

import reprlib
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

import attrs
import yaml

from reconcile.reprs import fields_repr

RELOCATE_LISTS = ("relocate_textfiles", "relocate_binaries", "relocate_links")

# libyaml's safe loader when PyYAML was built with it (several times faster), else the pure
# Python one; both build plain Python data only.
SAFE_LOADER: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = getattr(
    yaml, "CSafeLoader", yaml.SafeLoader
)


# Spack's binary_distribution nests three levels; anything near this is hostile.
MAX_DEPTH = 32
# Untrusted values quoted in messages: a few elements and characters, never the whole thing.
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 2, 40, 40


@attrs.frozen(kw_only=True)
class BuildInfo:
    __repr__ = fields_repr

    buildpath: str  # the old install-tree root
    # The package's own old prefix: from hash_to_prefix, else buildpath/relative_prefix.
    old_prefix: str
    relative_prefix: str | None
    relocate_textfiles: tuple[str, ...]  # relative to the prefix
    relocate_binaries: tuple[str, ...]
    relocate_links: tuple[str, ...]
    hash_to_prefix: Mapping[str, str]  # DAG hash -> old prefix, the package's own included
    hardlinks_deduped: bool = True


def built_prefixes_of(info: BuildInfo, dag_hash: str) -> dict[str, str]:
    """Every old prefix ``info`` records, by DAG hash: the package's own (``dag_hash``) and
    its dependencies' (``hash_to_prefix``: where they were when it was built)."""
    return {**info.hash_to_prefix, dag_hash: info.old_prefix}


def parse_build_info(text: str, *, dag_hash: str | None = None) -> BuildInfo:
    """Parse the YAML of ``binary_distribution`` (also the old ``prefix_to_hash`` form).

    ``ValueError`` explains what is missing or malformed.
    """
    try:
        _refuse_unbounded(text)
        document = yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {exc}") from exc
    if not isinstance(document, Mapping):
        raise ValueError(f"expected a mapping at the top level, found {_kind(document)}")
    buildpath = document.get("buildpath")
    if not isinstance(buildpath, str) or not buildpath:
        raise ValueError("no 'buildpath' (the install-tree root the package was built in)")
    relative_prefix = document.get("relative_prefix")
    if relative_prefix is not None and not isinstance(relative_prefix, str):
        raise ValueError(f"'relative_prefix' must be a string, found {_kind(relative_prefix)}")
    hash_to_prefix = _hash_to_prefix(document)
    if dag_hash is not None and dag_hash in hash_to_prefix:
        old_prefix = hash_to_prefix[dag_hash]
    elif relative_prefix:
        old_prefix = buildpath.rstrip("/") + "/" + relative_prefix.strip("/")
    else:
        raise ValueError(
            "cannot tell the package's old prefix: neither hash_to_prefix names "
            f"{dag_hash or 'its hash'} nor is 'relative_prefix' set"
        )
    textfiles, binaries, links = (_relative_paths(document, key) for key in RELOCATE_LISTS)
    deduped = document.get("hardlinks_deduped", False)
    if not isinstance(deduped, bool):
        raise ValueError(f"'hardlinks_deduped' must be true or false, found {_kind(deduped)}")
    return BuildInfo(
        buildpath=buildpath,
        old_prefix=old_prefix,
        relative_prefix=relative_prefix,
        relocate_textfiles=textfiles,
        relocate_binaries=binaries,
        relocate_links=links,
        hash_to_prefix=hash_to_prefix,
        hardlinks_deduped=deduped,
    )


def _refuse_unbounded(text: str) -> None:
    """Checked on the parser's events, before anything is built: anchors and aliases (a few
    hundred bytes can expand to gigabytes, a "billion laughs") and deep nesting (libyaml's
    composer recurses, and crashes the process far below the input size limit). Spack
    writes neither."""
    depth = 0
    for event in yaml.parse(text, Loader=SAFE_LOADER):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise ValueError(
                "it uses YAML anchors or aliases (&name / *name), which Spack never writes "
                "and which can expand a small file to gigabytes"
            )
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise ValueError(f"it nests lists and mappings more than {MAX_DEPTH} deep")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _hash_to_prefix(document: Mapping[str, Any]) -> dict[str, str]:
    """``hash_to_prefix`` as written by Spack 0.20+, or the inverted 0.19 ``prefix_to_hash``."""
    if "hash_to_prefix" in document:
        mapping = _string_mapping(document["hash_to_prefix"], "hash_to_prefix")
    elif "prefix_to_hash" in document:
        inverted = _string_mapping(document["prefix_to_hash"], "prefix_to_hash")
        mapping = {dag_hash: prefix for prefix, dag_hash in inverted.items()}
    else:
        return {}
    for dag_hash, prefix in mapping.items():
        if not prefix.startswith("/"):
            raise ValueError(f"old prefix of {dag_hash} is not absolute: {prefix!r}")
    return mapping


def _string_mapping(value: object, key: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"'{key}' must be a mapping, found {_kind(value)}")
    # YAML may read an all-digit key as a number; hashes and prefixes are always strings.
    return {str(k): str(v) for k, v in value.items()}


def _relative_paths(document: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """A relocate list: paths relative to the prefix that must stay inside it."""
    value = document.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError(f"'{key}' must be a list of paths, found {_kind(value)}")
    paths = []
    for entry in value:
        if not isinstance(entry, str) or not entry:
            raise ValueError(f"'{key}' holds {_kind(entry)} where a path was expected")
        path = PurePosixPath(entry)
        if path.is_absolute() or ".." in path.parts:
            raise ValueError(f"'{key}' entry {entry!r} points outside the prefix")
        paths.append(entry)
    return tuple(paths)


def _kind(value: object) -> str:
    return "nothing" if value is None else f"a {type(value).__name__} ({_SHORT.repr(value)})"
