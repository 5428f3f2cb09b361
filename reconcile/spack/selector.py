"""Spec selectors in Spack's spec syntax, matched against verified spec metadata.

``name``; ``@3.0`` (3.0 and any 3.0.x), ``@=3.0`` (exactly 3.0), ``@3.0:3.2`` (a range, each
bound with the same prefix meaning; either side may be left open); ``%gcc`` or ``%gcc@12``
(the compiler: Spack 0.23's ``compiler`` field, Spack 1.x's compiler build dependency
providing ``c``, ``cxx`` or ``fortran``, or the ``annotations.compiler`` Spack 1.x writes for
converted specs); ``+variant``, ``~variant``, ``variant=value`` (a multi-valued variant
matches when it holds every listed value); ``arch=platform-os-target``, ``platform=``,
``os=``, ``target=``; ``^dependency`` followed by its own constraints (any node of the
spec's DAG); ``/hashprefix``. Parts may be separated by spaces, as in Spack.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs

from reconcile.reprs import fields_repr
from reconcile.spack.spec import SpecNode

# No '+' or '~' in names and versions: those start variants ("hello-app@3.0+shared").
_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
_VERSION = r"[A-Za-z0-9_.-]*"
_VERSION_PART = rf"@(?P<exact>=)?(?P<version>{_VERSION}(?::{_VERSION})?)"
_TOKEN = re.compile(
    r"\s*(?:"
    rf"(?P<dep>\^)"
    rf"|/(?P<hash>[A-Za-z0-9]*)"
    rf"|%(?P<compiler>{_NAME})(?:@(?P<cexact>=)?(?P<cversion>{_VERSION}(?::{_VERSION})?))?"
    rf"|{_VERSION_PART}"
    rf"|(?P<plus>[+~])(?P<flag>[A-Za-z0-9_][A-Za-z0-9_.-]*)"
    rf"|(?P<key>[A-Za-z0-9_][A-Za-z0-9_.-]*)=(?P<value>[A-Za-z0-9_.,:+-]*)"
    rf"|(?P<name>{_NAME})"
    r")"
)
_BASE32 = re.compile(r"^[a-z2-7]+$")
_ARCH_KEYS = frozenset({"arch", "architecture", "platform", "os", "target"})
_COMPILER_VIRTUALS = frozenset({"c", "cxx", "fortran"})
_SYNTAX = (
    "expected Spack's spec syntax: name, @version, %compiler@version, +variant, ~variant, "
    "variant=value, arch=, platform=, os=, target=, ^dependency, /hashprefix"
)

# DAG hash -> node, for the constraints that look at other nodes (``%`` and ``^``).
NodeLookup = Callable[[str], SpecNode | None]


def _no_lookup(_hash: str) -> SpecNode | None:
    return None


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Order versions component-wise; numbers sort numerically and after words."""
    parts = re.split(r"[.\-_]", version)
    return tuple((1, int(p)) if p.isdigit() else (0, p) for p in parts)


def _has_prefix(version: str, prefix: str) -> bool:
    return version == prefix or version.startswith(prefix + ".")


def version_matches(version: str, wanted: str, *, exact: bool) -> bool:
    if exact:
        return version == wanted
    if ":" not in wanted:
        return _has_prefix(version, wanted)
    low, high = wanted.split(":", 1)
    key = version_key(version)
    if low and key < version_key(low):
        return False
    return not high or key <= version_key(high) or _has_prefix(version, high)


@attrs.frozen(kw_only=True)
class CompilerConstraint:
    __repr__ = fields_repr

    name: str | None
    version: str | None = None
    exact: bool = False

    def __str__(self) -> str:
        version = f"@{'=' if self.exact else ''}{self.version}" if self.version else ""
        return f"%{self.name or ''}{version}"


@attrs.frozen(kw_only=True)
class SpecSelector:
    __repr__ = fields_repr

    text: str
    name: str | None = None
    version: str | None = None  # "3.0", "3.0:3.2", ":3", "2:"
    exact: bool = False
    hash_prefix: str | None = None
    compiler: CompilerConstraint | None = None
    variants: tuple[tuple[str, str | bool], ...] = ()  # +x -> ("x", True), x=v -> ("x", "v")
    arch: tuple[tuple[str, str], ...] = ()  # ("platform", "linux"), ("target", "icelake")
    dependencies: tuple[SpecSelector, ...] = ()  # the ^ constraints

    def matches(self, node: SpecNode, lookup: NodeLookup = _no_lookup) -> bool:
        """Whether ``node`` satisfies every constraint; ``lookup`` finds its dependencies
        (without it, ``^`` constraints and a Spack 1.x compiler's version cannot match)."""
        if self.name is not None and node.name != self.name:
            return False
        if self.hash_prefix is not None and not node.hash.startswith(self.hash_prefix):
            return False
        if self.version is not None and not version_matches(
            node.version, self.version, exact=self.exact
        ):
            return False
        if not all(_arch_matches(node, key, value) for key, value in self.arch):
            return False
        if not all(_variant_matches(node, key, value) for key, value in self.variants):
            return False
        if self.compiler is not None and not _compiler_matches(node, self.compiler, lookup):
            return False
        return all(
            any(dep.matches(other, lookup) for other in _closure(node, lookup))
            for dep in self.dependencies
        )


def _parameters(node: SpecNode) -> Mapping[str, Any]:
    parameters = node.raw.get("parameters")
    return parameters if isinstance(parameters, Mapping) else {}


def _variant_matches(node: SpecNode, key: str, wanted: str | bool) -> bool:
    value = _parameters(node).get(key)
    if isinstance(wanted, bool):
        return value is wanted
    if isinstance(value, list):
        return set(wanted.split(",")) <= {str(v) for v in value}
    if isinstance(value, bool):
        return wanted.lower() == str(value).lower()
    return value is not None and str(value) == wanted


def _arch_matches(node: SpecNode, key: str, value: str) -> bool:
    if key in ("arch", "architecture"):
        return node.arch == value
    actual = {"platform": node.platform, "os": node.platform_os, "target": node.target}[key]
    return actual == value


def compilers_of(node: SpecNode, lookup: NodeLookup = _no_lookup) -> list[tuple[str, str | None]]:
    """``[(name, version)]`` of the node's compiler, in the forms each Spack records it."""
    if node.compiler_name is not None:  # Spack 0.23's field, or Spack 1.x's annotation
        return [(node.compiler_name, node.compiler_version)]
    found: list[tuple[str, str | None]] = []
    for edge in node.raw.get("dependencies", ()) or ():
        parameters = edge.get("parameters") or {} if isinstance(edge, Mapping) else {}
        virtuals = set(parameters.get("virtuals", ()) or ())
        if virtuals & _COMPILER_VIRTUALS:
            other = lookup(str(edge.get("hash")))
            found.append((str(edge.get("name")), other.version if other else None))
    return found


def _compiler_matches(node: SpecNode, wanted: CompilerConstraint, lookup: NodeLookup) -> bool:
    for name, version in compilers_of(node, lookup):
        if wanted.name and name != wanted.name:
            continue
        if wanted.version is None:
            return True
        if version is not None and version_matches(version, wanted.version, exact=wanted.exact):
            return True
    return False


def _closure(node: SpecNode, lookup: NodeLookup) -> Iterator[SpecNode]:
    """Every node below ``node`` that ``lookup`` knows, each once (iterative)."""
    seen = {node.hash}
    pending = [d.hash for d in node.dependencies]
    while pending:
        dag_hash = pending.pop()
        if dag_hash in seen:
            continue
        seen.add(dag_hash)
        other = lookup(dag_hash)
        if other is not None:
            yield other
            pending.extend(d.hash for d in other.dependencies)


def _fail(text: str, why: str) -> ValueError:
    return ValueError(f"not a spec selector: {text!r} ({why})")


def parse_selector(text: str) -> SpecSelector:
    """Parse a selector; ``ValueError`` says what is wrong with it."""
    stripped = text.strip()
    if not stripped:
        raise _fail(text, _SYNTAX)
    parts: list[dict[str, Any]] = [{}]
    position = 0
    while position < len(stripped):
        match = _TOKEN.match(stripped, position)
        if match is None or match.end() == position:
            raise _fail(text, _SYNTAX)
        position = match.end()
        current = parts[-1]
        if match["dep"]:
            parts.append({})
        elif match["hash"] is not None:
            _set_once(current, "hash_prefix", _hash(text, match["hash"]), text)
        elif match["compiler"] is not None:
            if match["cversion"] == "":
                raise _fail(text, "the compiler version after '@' is missing")
            compiler = CompilerConstraint(
                name=match["compiler"],
                version=match["cversion"],
                exact=bool(match["cexact"]),
            )
            _set_once(current, "compiler", compiler, text)
        elif match["version"] is not None:
            _version(current, match, text)
        elif match["plus"]:
            current.setdefault("variants", []).append((match["flag"], match["plus"] == "+"))
        elif match["key"] is not None:
            _key_value(current, match["key"], match["value"], text)
        else:
            if "name" in current or len(current) > 0:
                raise _fail(text, f"unexpected {match['name']!r}: a name comes first")
            current["name"] = match["name"]
    root, *dependencies = (_build(text, part) for part in parts)
    if root.name is None and root.hash_prefix is None:
        raise _fail(text, "name a package or a /hash prefix")
    return attrs.evolve(root, text=stripped, dependencies=tuple(dependencies))


def _set_once(part: dict[str, Any], key: str, value: object, text: str) -> None:
    if key in part:
        raise _fail(text, f"{key.replace('_', ' ')} given twice")
    part[key] = value


def _hash(text: str, value: str) -> str:
    if not value or not _BASE32.match(value):
        raise _fail(text, "a DAG hash uses only a-z and 2-7")
    return value


def _version(part: dict[str, Any], match: re.Match[str], text: str) -> None:
    version = match["version"]
    if version == "" or (match["exact"] and ":" in version):
        raise _fail(text, "the version after '@' is missing")
    _set_once(part, "version", version, text)
    part["exact"] = bool(match["exact"])


def _key_value(part: dict[str, Any], key: str, value: str, text: str) -> None:
    if not value:
        raise _fail(text, f"'{key}=' needs a value")
    if key in _ARCH_KEYS:
        part.setdefault("arch", []).append(("arch" if key == "architecture" else key, value))
    else:
        part.setdefault("variants", []).append((key, value))


def _build(text: str, part: dict[str, Any]) -> SpecSelector:
    if not part:
        raise _fail(text, "'^' must be followed by a dependency")
    return SpecSelector(
        text=text,
        name=part.get("name"),
        version=part.get("version"),
        exact=part.get("exact", False),
        hash_prefix=part.get("hash_prefix"),
        compiler=part.get("compiler"),
        variants=tuple(part.get("variants", ())),
        arch=tuple(part.get("arch", ())),
    )
