"""After relocation: every symlink of a prefix leads into it, or into a prefix it may use."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from reconcile.archive.names import Parts
from reconcile.archive.symlinks import ReadLink, absolute_parts, escape_reason, is_within
from reconcile.archive.violation import UNTRUSTED_HINT
from reconcile.errors import ArchiveError


def check_symlinks(
    prefix_dir: Path, *, final_prefix: str, allowed_prefixes: tuple[str, ...]
) -> None:
    """After relocation: every symlink stays inside the prefix (relative ones) or points into
    ``final_prefix`` or one of ``allowed_prefixes`` (absolute ones). ``ArchiveError`` otherwise.

    ``prefix_dir`` is where the prefix is now (staging); ``final_prefix`` is where it will be
    once committed, so an absolute link into ``final_prefix`` is resolved inside
    ``prefix_dir``. ``allowed_prefixes`` are the closure's final prefixes and the paths of
    the externals the spec names.
    """
    prefix_dir = Path(prefix_dir)
    if not final_prefix.startswith("/"):
        raise ValueError(f"final_prefix must be absolute, got {final_prefix!r}")
    own = absolute_parts(final_prefix)
    others = tuple(absolute_parts(path) for path in allowed_prefixes)

    def read_link(parts: Parts) -> str | None:
        path = prefix_dir.joinpath(*parts)
        return str(path.readlink()) if path.is_symlink() else None

    for link_parts, target in _symlinks_below(prefix_dir, ()):
        reason = _unsafe_reason(link_parts, target, own, others, read_link)
        if reason is not None:
            raise ArchiveError(
                f"symlink {prefix_dir.joinpath(*link_parts)} points to {target!r}: {reason}; "
                f"expected a target inside {final_prefix!r}"
                + (f" or one of {list(allowed_prefixes)}" if allowed_prefixes else ""),
                hint=UNTRUSTED_HINT,
            )


def _unsafe_reason(
    link_parts: Parts, target: str, own: Parts, others: tuple[Parts, ...], read_link: ReadLink
) -> str | None:
    if not target.startswith("/"):
        return escape_reason(link_parts[:-1], target, read_link)
    if ".." in target.split("/"):
        # Where '..' leads depends on symlinks in folders this check cannot see.
        return "an absolute target must not contain '..'"
    parts = absolute_parts(target)
    if is_within(parts, own):
        return escape_reason((), "/".join(parts[len(own) :]), read_link)
    if any(is_within(parts, other) for other in others):
        return None
    return "it leads outside this prefix and every prefix it may use"


def _symlinks_below(folder: Path, parts: Parts) -> Iterator[tuple[Parts, str]]:
    try:
        with os.scandir(folder) as entries:
            listed = sorted(entries, key=lambda entry: entry.name)
    except OSError as exc:
        raise ArchiveError(
            f"cannot list {folder} to check its symlinks: {exc.strerror}",
            hint="the folder must be readable by the user running reconcile",
        ) from None
    for entry in listed:
        if entry.is_symlink():
            yield (*parts, entry.name), str(Path(entry.path).readlink())
        elif entry.is_dir(follow_symlinks=False):
            yield from _symlinks_below(Path(entry.path), (*parts, entry.name))
