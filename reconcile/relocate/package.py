"""Relocating one unpacked prefix: text files, ELF binaries, C strings, symlinks."""

from __future__ import annotations

from pathlib import Path

from reconcile.buildcache.build_info import BuildInfo
from reconcile.relocate.prefix_map import PrefixMap


def relocate_package(prefix_dir: Path, build_info: BuildInfo, prefix_map: PrefixMap) -> None:
    """Rewrite the files ``build_info`` lists, in ``prefix_dir`` (staging), so they refer to the
    new prefixes. Raises ``RelocationError`` (naming the file and both lengths when a C string
    would have to grow) before leaving anything half-done that could be committed."""
    raise NotImplementedError
