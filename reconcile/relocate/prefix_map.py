"""The ordered map of old prefixes to new ones (FORMATS.md, "Relocation")."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs

from reconcile.buildcache.build_info import BuildInfo
from reconcile.reprs import fields_repr


@attrs.frozen(kw_only=True)
class PrefixMap:
    __repr__ = fields_repr

    pairs: tuple[tuple[str, str], ...]  # (old, new), most specific first; equal pairs dropped

    def __bool__(self) -> bool:
        return bool(self.pairs)

    def as_dict(self) -> dict[str, str]:
        return dict(self.pairs)

    def relocate_path(self, path: str) -> str | None:
        """The new form of ``path`` when it is an old prefix or lies under one, else ``None``.

        Component-aware: ``/opt/a`` relocates ``/opt/a`` and ``/opt/a/lib`` but not ``/opt/ab``.
        """
        for old, new in self.pairs:
            if path == old:
                return new
            if path.startswith(old) and (old.endswith("/") or path[len(old)] == "/"):
                return new + path[len(old) :]
        return None


def build_prefix_map(
    build_info: BuildInfo, *, own_hash: str, new_prefixes: Mapping[str, str], new_root: str
) -> PrefixMap:
    """Dependencies' old prefixes to their new ones, then the package's own, then the old
    install-tree root (``buildpath``) to ``new_root``. ``new_prefixes`` maps DAG hashes of the
    whole closure (externals excluded) to their final prefixes."""
    if own_hash not in new_prefixes:
        # A caller bug, not a user error: the closure always includes the package itself.
        raise ValueError(f"no new prefix given for the package's own hash {own_hash}")
    dependencies = [
        (old, new_prefixes[dag_hash])
        for dag_hash, old in build_info.hash_to_prefix.items()
        if dag_hash != own_hash and dag_hash in new_prefixes
    ]
    ordered = [
        *dependencies,
        (build_info.old_prefix, new_prefixes[own_hash]),
        (build_info.buildpath, new_root),
    ]
    return PrefixMap(pairs=_most_specific_first(_normalized(ordered)))


def ordered_prefix_map(pairs: Iterable[tuple[str, str]]) -> PrefixMap:
    """A map of the given (old, new) pairs, the most specific old prefix first."""
    return PrefixMap(pairs=_most_specific_first(_normalized(pairs)))


def _normalized(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Trailing slashes removed, equal pairs dropped, the first mapping of an old prefix kept."""
    seen: set[str] = set()
    kept = []
    for old, new in pairs:
        old, new = _strip_slash(old), _strip_slash(new)
        if old == new or old in seen:
            continue
        seen.add(old)
        kept.append((old, new))
    return kept


def _strip_slash(path: str) -> str:
    return path.rstrip("/") or "/"


def _most_specific_first(pairs: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Keep the given order, except that an old prefix comes before any old prefix that is a
    prefix of it (so the longest match wins wherever several olds match at one place)."""
    ordered: list[tuple[str, str]] = []
    for pair in pairs:
        # Insert before the first entry that is a prefix of this one; by induction every
        # entry that this one is a prefix of already sits before that entry.
        position = next(
            (i for i, (old, _) in enumerate(ordered) if pair[0].startswith(old)), len(ordered)
        )
        ordered.insert(position, pair)
    return tuple(ordered)
