"""Spec nodes in the form Spack 1.x keeps in a version-8 database (a layout-3 cache index).

Spack 1.x reads a database node with its spec format 5 reader, which refuses a ``compiler``
field. When its own ``buildcache update-index`` indexes a spec written in an older format, it
reads the node with that format's reader and writes it back in format 5: the compiler moves
into ``annotations`` (``{"original_specfile_version": 4, "compiler": "gcc@=12.2.0"}``) and
every dependency edge is marked ``direct``, because format 4 edges are all direct. Nodes that
already carry ``annotations`` are format 5 and are kept as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Spack's compiler flags: in ``parameters`` after the variants, in this (sorted) order.
_COMPILER_FLAGS = ("cflags", "cppflags", "cxxflags", "fflags", "ldflags", "ldlibs")
# Spack 0.21 to 0.23 write spec format 4; a node without annotations comes from one of them.
LEGACY_FORMAT = 4


def database_node(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``raw`` (a node of a spec file, with its ``hash``) as a version-8 database holds it."""
    if "annotations" in raw:
        return dict(raw)
    node: dict[str, Any] = {"name": raw["name"], "version": raw["version"]}
    for key in ("arch", "namespace"):
        if key in raw:
            node[key] = raw[key]
    parameters = raw.get("parameters")
    if isinstance(parameters, Mapping) and parameters:
        node["parameters"] = _ordered_parameters(parameters)
    external = raw.get("external")
    if isinstance(external, Mapping) and external:
        node["external"] = {
            "path": external.get("path"),
            "module": external.get("module") or None,
            "extra_attributes": dict(sorted((external.get("extra_attributes") or {}).items())),
        }
    for key in ("patches", "package_hash"):
        if raw.get(key):
            node[key] = raw[key]
    dependencies = raw.get("dependencies")
    if dependencies:
        node["dependencies"] = [_direct_edge(edge) for edge in _by_name(dependencies)]
    if "build_spec" in raw:
        node["build_spec"] = raw["build_spec"]
    annotations: dict[str, Any] = {"original_specfile_version": LEGACY_FORMAT}
    compiler = raw.get("compiler")
    annotations["compiler"] = _compiler_text(compiler)
    node["annotations"] = annotations
    node["hash"] = raw["hash"]
    return node


def compiler_from_annotations(raw: Mapping[str, Any]) -> tuple[str, str] | None:
    """``("gcc", "12.2.0")`` from ``annotations.compiler = "gcc@=12.2.0"``, else None."""
    annotations = raw.get("annotations")
    text = annotations.get("compiler") if isinstance(annotations, Mapping) else None
    if not isinstance(text, str) or "@" not in text:
        return None
    name, _, version = text.partition("@")
    version = version.removeprefix("=")
    return (name, version) if name and version else None


def _compiler_text(compiler: object) -> str:
    # Spack prints the legacy compiler as a spec with an exact version; with none it prints
    # the string "None" (what str() of a missing spec gives), which its reader also accepts.
    if isinstance(compiler, Mapping) and compiler.get("name") and compiler.get("version"):
        return f"{compiler['name']}@={compiler['version']}"
    return "None"


def _ordered_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    variants = sorted((k, v) for k, v in parameters.items() if k not in _COMPILER_FLAGS)
    flags = [(k, parameters[k]) for k in _COMPILER_FLAGS if k in parameters]
    return dict([*variants, *flags])


def _by_name(edges: object) -> list[Mapping[str, Any]]:
    listed = (
        [edge for edge in edges if isinstance(edge, Mapping)] if isinstance(edges, list) else []
    )
    return sorted(listed, key=lambda edge: str(edge.get("name", "")))


def _direct_edge(edge: Mapping[str, Any]) -> dict[str, Any]:
    parameters = dict(edge.get("parameters") or {})
    parameters.setdefault("deptypes", [])
    parameters.setdefault("virtuals", [])
    parameters["direct"] = True
    return {"name": edge.get("name"), "hash": edge.get("hash"), "parameters": parameters}
