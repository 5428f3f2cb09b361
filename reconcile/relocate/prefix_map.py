"""The ordered map of old prefixes to new ones (FORMATS.md, "Relocation")."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from reconcile.buildcache.build_info import BuildInfo


@attrs.frozen(kw_only=True)
class PrefixMap:
    pairs: tuple[tuple[str, str], ...]  # (old, new), most specific first; equal pairs dropped


def build_prefix_map(
    build_info: BuildInfo, *, own_hash: str, new_prefixes: Mapping[str, str], new_root: str
) -> PrefixMap:
    """Dependencies' old prefixes to their new ones, then the package's own, then the old
    install-tree root (``buildpath``) to ``new_root``. ``new_prefixes`` maps DAG hashes of the
    whole closure (externals excluded) to their final prefixes."""
    raise NotImplementedError
