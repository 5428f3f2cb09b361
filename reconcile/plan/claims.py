"""One prefix, one spec; one hash, one spec.

A spec's identity is the ``hash`` field inside its signed metadata (reconcile does not
recompute Spack's DAG hash). Two specs that a projection such as ``{name}-{hash:1}`` maps to
one path, or two install records naming one prefix, are refused: installing both would
overwrite one with the other and leave two records for one folder. Every other place that
names a spec by hash (the mirror's index, a dependent's signed metadata) must agree with
what the spec's own signed metadata says it is; a disagreement is refused too, since it
means a mirror (or whoever is on the path of a plain-http one) mixed specs up.
"""

from __future__ import annotations

from collections.abc import Iterable

from reconcile.spack.spec import SpecDocument, SpecNode


def _described(node: SpecNode) -> tuple[str, str]:
    """What two descriptions of one hash must agree on."""
    return (node.name, node.version)


class PrefixClaims:
    """Which spec each prefix of the plan belongs to, installed or to install."""

    def __init__(self, projection: str) -> None:
        self.projection = projection
        self._owners: dict[str, tuple[SpecNode, bool]] = {}  # prefix -> (spec, installed)

    def claim(self, prefix: str, node: SpecNode, *, installed: bool) -> str | None:
        """Record that ``node`` lives (or will live) at ``prefix``; the problem when another
        spec already has it."""
        owner = self._owners.get(prefix)
        if owner is None or owner[0].hash == node.hash:
            self._owners[prefix] = (node, installed)
            return None
        other, other_installed = owner
        if installed and other_installed:
            return (
                f"two install records name one prefix {prefix}: {other.short()} and "
                f"{node.short()} (one of them no longer describes what is there)"
            )
        first, second = (other, node) if other.hash < node.hash else (node, other)
        how = "is installed" if other_installed or installed else "would be installed"
        return (
            f"two specs claim one prefix {prefix}: {first.short()} (/{first.hash}) and "
            f"{second.short()} (/{second.hash}); install.projection = '{self.projection}' "
            f"places both there and one {how} over the other"
        )


def identity_problems(
    dag_hash: str,
    document: SpecDocument,
    *,
    named_as: Iterable[tuple[str, SpecNode]],
) -> list[str]:
    """What disagrees with the signed metadata ``document`` fetched for ``dag_hash``:
    its own root, duplicate nodes inside it, and each (where, node) that names the hash."""
    problems = []
    root = document.root
    if root.hash != dag_hash:
        problems.append(
            f"the signed metadata fetched for /{dag_hash} describes {root.short()} "
            f"(/{root.hash}): its file name and its content disagree"
        )
    seen: dict[str, SpecNode] = {}
    for node in document.nodes:
        earlier = seen.setdefault(node.hash, node)
        if _described(earlier) != _described(node):
            problems.append(
                f"the signed metadata of {root.short()} names /{node.hash} twice, as "
                f"{earlier.name}@{earlier.version} and as {node.name}@{node.version}"
            )
    for where, node in named_as:
        if node.hash == root.hash and _described(node) != _described(root):
            problems.append(
                f"{where} names /{root.hash} {node.name}@{node.version}, but its signed "
                f"metadata says it is {root.name}@{root.version}"
            )
    return problems


def naming_disagreement(dag_hash: str, named_as: Iterable[tuple[str, SpecNode]]) -> str | None:
    """Before its own metadata is fetched: do the places that name ``dag_hash`` (the index,
    a dependent's signed metadata) agree on what it is? Which one lies cannot be told."""
    first: tuple[str, SpecNode] | None = None
    for where, node in named_as:
        if first is None:
            first = (where, node)
        elif _described(node) != _described(first[1]):
            return (
                f"{first[0]} names /{dag_hash} {first[1].name}@{first[1].version}, but "
                f"{where} names it {node.name}@{node.version}"
            )
    return None
