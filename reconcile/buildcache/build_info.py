"""``.spack/binary_distribution``: what the builder recorded for relocation."""

from __future__ import annotations

from collections.abc import Mapping

import attrs


@attrs.frozen(kw_only=True)
class BuildInfo:
    buildpath: str  # the old install-tree root
    old_prefix: str  # the package's own old prefix (from hash_to_prefix, else buildpath/relative_prefix)
    relative_prefix: str | None
    relocate_textfiles: tuple[str, ...]  # relative to the prefix
    relocate_binaries: tuple[str, ...]
    relocate_links: tuple[str, ...]
    hash_to_prefix: Mapping[str, str]  # DAG hash -> old prefix, the package's own included
    hardlinks_deduped: bool = True


def parse_build_info(text: str, *, dag_hash: str | None = None) -> BuildInfo:
    """Parse the YAML of ``binary_distribution`` (also the old ``prefix_to_hash`` form).

    ``ValueError`` explains what is missing or malformed.
    """
    raise NotImplementedError
