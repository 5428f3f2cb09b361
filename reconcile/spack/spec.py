"""Concrete Spack specs as found in ``spec.json`` files and database indexes.

Only what reconcile needs is modelled; the original JSON of every node is kept in ``raw``
so that nothing is lost when a spec is written back (publishing, install records).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from reconcile.reprs import fields_repr
from reconcile.spack.database_node import compiler_from_annotations

# Dependency types whose targets must be present at run time (and so are installed).
RUNTIME_DEPTYPES = frozenset({"link", "run"})


@attrs.frozen(kw_only=True)
class Dependency:
    __repr__ = fields_repr

    name: str
    hash: str
    deptypes: tuple[str, ...]


@attrs.frozen(kw_only=True)
class SpecNode:
    """One concrete spec (one node of a spec DAG)."""

    __repr__ = fields_repr

    name: str
    version: str
    hash: str  # the DAG hash, 32 base32 characters
    platform: str
    platform_os: str
    target: str
    compiler_name: str | None
    compiler_version: str | None
    namespace: str | None
    dependencies: tuple[Dependency, ...]
    external_path: str | None  # set for externals such as glibc at /usr
    raw: Mapping[str, Any] = attrs.field(eq=False, repr=False)

    @property
    def arch(self) -> str:
        return f"{self.platform}-{self.platform_os}-{self.target}"

    @property
    def is_external(self) -> bool:
        return self.external_path is not None

    @property
    def compiler(self) -> str:
        """``gcc-12.2.0``, or ``none-none`` for specs concretized by Spack 1.x."""
        return f"{self.compiler_name or 'none'}-{self.compiler_version or 'none'}"

    def short(self, length: int = 7) -> str:
        """``hello-app@3.0/d7r6xmz``, the form used in plans and messages."""
        return f"{self.name}@{self.version}/{self.hash[:length]}"

    def runtime_dependencies(self) -> tuple[Dependency, ...]:
        """Dependencies needed at run time: those with a link or run type."""
        return tuple(d for d in self.dependencies if RUNTIME_DEPTYPES.intersection(d.deptypes))


def parse_node(raw: Mapping[str, Any]) -> SpecNode:
    """Build a ``SpecNode`` from one node of a Spack spec (``spec.json`` or index entry).

    Raises ``ValueError`` with a short reason when a required field is missing; callers turn
    that into a located error naming the file it came from.
    """
    try:
        name = str(raw["name"])
        version = str(raw["version"])
        dag_hash = str(raw["hash"])
        arch = raw["arch"]
        platform = str(arch["platform"])
        platform_os = str(arch["platform_os"])
        target = arch["target"]
        target_name = str(target["name"] if isinstance(target, Mapping) else target)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"spec node lacks field {exc}") from exc
    compiler = raw.get("compiler")
    compiler_name = compiler_version = None
    if isinstance(compiler, Mapping):
        compiler_name = str(compiler.get("name")) if compiler.get("name") else None
        compiler_version = str(compiler.get("version")) if compiler.get("version") else None
    elif (annotated := compiler_from_annotations(raw)) is not None:
        compiler_name, compiler_version = annotated  # converted by Spack 1.x from format 4
    external = raw.get("external")
    external_path = None
    if isinstance(external, Mapping) and external.get("path"):
        external_path = str(external["path"])
    dependencies = []
    for dep in raw.get("dependencies", ()) or ():
        params = dep.get("parameters") or {}
        deptypes = params.get("deptypes", dep.get("type", ()))
        if isinstance(deptypes, str):
            deptypes = (deptypes,)
        dependencies.append(
            Dependency(name=str(dep["name"]), hash=str(dep["hash"]), deptypes=tuple(deptypes))
        )
    return SpecNode(
        name=name,
        version=version,
        hash=dag_hash,
        platform=platform,
        platform_os=platform_os,
        target=target_name,
        compiler_name=compiler_name,
        compiler_version=compiler_version,
        namespace=str(raw["namespace"]) if raw.get("namespace") else None,
        dependencies=tuple(dependencies),
        external_path=external_path,
        raw=raw,
    )


@attrs.frozen(kw_only=True)
class SpecDocument:
    """A whole ``spec.json``: the package node first, then every node of its DAG."""

    __repr__ = fields_repr

    nodes: tuple[SpecNode, ...]
    tarball_sha256: str | None  # layout v2 ``binary_cache_checksum``; None in layout v3 specs
    raw: Mapping[str, Any] = attrs.field(eq=False, repr=False)

    @property
    def root(self) -> SpecNode:
        return self.nodes[0]

    def node(self, dag_hash: str) -> SpecNode:
        for node in self.nodes:
            if node.hash == dag_hash:
                return node
        raise KeyError(dag_hash)


def parse_spec_document(raw: Mapping[str, Any]) -> SpecDocument:
    """Parse the JSON object of a ``spec.json`` (already verified, if it was signed)."""
    try:
        nodes_raw: Sequence[Mapping[str, Any]] = raw["spec"]["nodes"]
    except (KeyError, TypeError) as exc:
        raise ValueError("not a Spack spec: no spec.nodes list") from exc
    if not nodes_raw:
        raise ValueError("not a Spack spec: spec.nodes is empty")
    checksum = raw.get("binary_cache_checksum")
    tarball_sha256 = None
    if isinstance(checksum, Mapping):
        if checksum.get("hash_algorithm", "sha256") != "sha256":
            raise ValueError(f"unsupported tarball hash algorithm {checksum['hash_algorithm']!r}")
        tarball_sha256 = str(checksum["hash"]).lower()
    return SpecDocument(
        nodes=tuple(parse_node(n) for n in nodes_raw), tarball_sha256=tarball_sha256, raw=raw
    )


def runtime_closure(root: str, nodes: Mapping[str, SpecNode]) -> list[SpecNode]:
    """The run-time closure of ``root`` (itself included), dependencies before dependents.

    ``nodes`` maps DAG hashes to nodes; a dependency missing from it raises ``KeyError``, a
    cycle ``ValueError``. The order is deterministic: a depth-first post-order following
    dependency order, walked with an explicit stack (chains of any length).
    """
    ordered: list[SpecNode] = []
    seen: set[str] = set()
    # Each entry: a node being visited and the dependencies it has yet to visit.
    stack = [(nodes[root], iter(nodes[root].runtime_dependencies()))]
    on_path = {root}
    while stack:
        node, pending = stack[-1]
        dep = next(pending, None)
        if dep is None:
            stack.pop()
            on_path.discard(node.hash)
            seen.add(node.hash)
            ordered.append(node)
        elif dep.hash in on_path:
            raise ValueError(f"dependency cycle through {dep.hash}")
        elif dep.hash not in seen:
            child = nodes[dep.hash]
            stack.append((child, iter(child.runtime_dependencies())))
            on_path.add(dep.hash)
    return ordered


def merge_orders(orders: Iterable[Sequence[SpecNode]]) -> list[SpecNode]:
    """Concatenate several closures, keeping the first occurrence of each hash."""
    merged: list[SpecNode] = []
    seen: set[str] = set()
    for order in orders:
        for node in order:
            if node.hash not in seen:
                seen.add(node.hash)
                merged.append(node)
    return merged
