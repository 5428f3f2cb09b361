"""Spec selectors, with Spack's meaning.

``name``; ``name@3.0`` (3.0 and any 3.0.x); ``name@=3.0`` (exactly 3.0); ``name@3.0:3.2``
(a closed range, each bound with the same prefix meaning; either side may be left open);
``/hashprefix``; ``name@3.0/hashprefix``.
"""

from __future__ import annotations

import re

import attrs

from reconcile.spack.spec import SpecNode

_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.+-]*"
_VERSION = r"[A-Za-z0-9_.+-]*"
_SELECTOR = re.compile(
    rf"^(?P<name>{_NAME})?"
    rf"(?:@(?P<exact>=)?(?P<version>{_VERSION}(?::{_VERSION})?))?"
    r"(?:\s*/(?P<hash>[a-z0-9]+))?$"
)
_BASE32 = re.compile(r"^[a-z2-7]+$")


def _version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Order versions component-wise; numbers sort numerically and after words."""
    parts = re.split(r"[.\-_]", version)
    return tuple((1, int(p)) if p.isdigit() else (0, p) for p in parts)


def _has_prefix(version: str, prefix: str) -> bool:
    return version == prefix or version.startswith(prefix + ".")


@attrs.frozen(kw_only=True)
class SpecSelector:
    text: str
    name: str | None = None
    version: str | None = None  # "3.0", "3.0:3.2", ":3", "2:"
    exact: bool = False
    hash_prefix: str | None = None

    def matches(self, node: SpecNode) -> bool:
        if self.name is not None and node.name != self.name:
            return False
        if self.hash_prefix is not None and not node.hash.startswith(self.hash_prefix):
            return False
        return self.version is None or self._version_matches(node.version)

    def _version_matches(self, version: str) -> bool:
        assert self.version is not None
        if self.exact:
            return version == self.version
        if ":" not in self.version:
            return _has_prefix(version, self.version)
        low, high = self.version.split(":", 1)
        key = _version_key(version)
        if low and key < _version_key(low):
            return False
        return not high or key <= _version_key(high) or _has_prefix(version, high)


def parse_selector(text: str) -> SpecSelector:
    """Parse a selector; ``ValueError`` says what is wrong with it."""
    stripped = text.strip()
    match = _SELECTOR.match(stripped)
    if not stripped or match is None:
        raise ValueError(
            f"not a spec selector: {text!r} (expected name, name@version, name@=version, "
            "/hashprefix or name@version/hashprefix)"
        )
    name, version, hash_prefix = match["name"], match["version"], match["hash"]
    if name is None and hash_prefix is None:
        raise ValueError(f"not a spec selector: {text!r} (name a package or a /hash prefix)")
    if version == "" or (match["exact"] and version is not None and ":" in version):
        raise ValueError(f"not a spec selector: {text!r} (the version after '@' is missing)")
    if hash_prefix is not None and not _BASE32.match(hash_prefix):
        raise ValueError(f"not a spec selector: {text!r} (a DAG hash uses only a-z and 2-7)")
    return SpecSelector(
        text=stripped,
        name=name,
        version=version,
        exact=bool(match["exact"]),
        hash_prefix=hash_prefix,
    )
