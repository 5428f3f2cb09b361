"""Symlinks: absolute targets under an old prefix are re-pointed; relative ones stay."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from reconcile.relocate.files import writable
from reconcile.relocate.prefix_map import PrefixMap


def symlinks_under(prefix_dir: Path) -> Iterator[Path]:
    """Every symlink inside ``prefix_dir``, without following any of them."""
    pending = [prefix_dir]
    while pending:
        folder = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_symlink():
                    yield Path(entry.path)
                elif entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))


def relocate_symlink(link: Path, prefix_map: PrefixMap) -> bool:
    """Re-point ``link`` when its target is absolute and under an old prefix; ``True`` when
    it changed. The new link replaces the old one by a rename, so it is never missing."""
    target = os.readlink(link)  # noqa: PTH115 (Path.readlink would normalize the target)
    if not target.startswith("/"):
        return False
    new_target = prefix_map.relocate_path(target)
    if new_target is None:
        return False
    temporary = link.with_name(f".{link.name}.relocating")
    with writable(link.parent):
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(new_target)
        temporary.replace(link)
    return True


def relocate_symlinks(prefix_dir: Path, prefix_map: PrefixMap) -> int:
    """Relocate every absolute symlink of the prefix (not only those that
    ``relocate_links`` lists: a stale absolute link would point into the build tree).
    Returns how many changed."""
    if not prefix_map:
        return 0
    return sum(relocate_symlink(link, prefix_map) for link in list(symlinks_under(prefix_dir)))
