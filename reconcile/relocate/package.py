"""Relocating one unpacked prefix: text files, ELF binaries, C strings, symlinks."""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterable
from pathlib import Path

import attrs

from reconcile.buildcache.build_info import BuildInfo
from reconcile.errors import RelocationError
from reconcile.relocate.cstrings import CStringPlan, CStringRelocator
from reconcile.relocate.elf import ElfPlan, check_elf, plan_elf
from reconcile.relocate.files import listed_file, write_edits
from reconcile.relocate.links import relocate_symlinks
from reconcile.relocate.patchelf import apply_with_patchelf, find_patchelf
from reconcile.relocate.prefix_map import PrefixMap
from reconcile.relocate.text import TextRelocator
from reconcile.reprs import fields_repr


@attrs.frozen(kw_only=True)
class BinaryPlan:
    __repr__ = fields_repr

    path: Path
    relative: str  # as listed in ``relocate_binaries``
    elf: ElfPlan
    cstrings: CStringPlan


def relocate_package(
    prefix_dir: Path, build_info: BuildInfo, prefix_map: PrefixMap
) -> frozenset[tuple[int, int]]:
    """Rewrite the files ``build_info`` lists, in ``prefix_dir`` (staging), so they refer to the
    new prefixes. Raises ``RelocationError`` (naming the file and both lengths when a C string
    would have to grow) before leaving anything half-done that could be committed.

    Returns the files it may have changed, as (device, inode) before and after: every other
    regular file holds the bytes it was unpacked with."""
    if not prefix_map:
        return frozenset()
    seen: set[tuple[int, int]] = set()
    binaries = _listed(prefix_dir, build_info.relocate_binaries, "relocate_binaries", seen=seen)
    text_files = _listed(prefix_dir, build_info.relocate_textfiles, "relocate_textfiles", seen=seen)

    # Decide everything first: a string that cannot grow, a damaged or non-ELF binary, or a
    # missing patchelf is reported before any file of the prefix changes.
    cstrings = CStringRelocator.for_map(prefix_map)
    plans = [_plan_binary(path, relative, prefix_map, cstrings) for path, relative in binaries]
    _refuse_growing_strings(prefix_dir, build_info, prefix_map, plans)
    patchelf = find_patchelf() if any(plan.elf.needs_patchelf for plan in plans) else None

    text = TextRelocator.for_map(prefix_map)
    for path, _ in text_files:
        text.relocate_file(path)
    for plan in plans:
        edits = plan.cstrings.edits + plan.elf.edits
        if edits:
            write_edits(plan.path, edits)
        # After the in-place edits, whose offsets are those of the original layout.
        if plan.elf.needs_patchelf:
            assert patchelf is not None
            apply_with_patchelf(plan.path, plan.elf, patchelf=patchelf)
    relocate_symlinks(prefix_dir, prefix_map)
    # A rewrite may have replaced a file (a new inode at its path): count both.
    for path, _ in (*binaries, *text_files):
        info = path.lstat()
        seen.add((info.st_dev, info.st_ino))
    return frozenset(seen)


def _listed(
    prefix_dir: Path, relatives: Iterable[str], listing: str, *, seen: set[tuple[int, int]]
) -> list[tuple[Path, str]]:
    """The listed regular files in listed order, each file once even under several names
    (hard links): a second pass would apply edits planned for the original bytes again.
    Symlinks are left to the link relocation."""
    found = []
    for relative in relatives:
        path = listed_file(prefix_dir, relative, listing=listing)
        if path is None:
            continue
        info = path.stat()
        if (info.st_dev, info.st_ino) not in seen:
            seen.add((info.st_dev, info.st_ino))
            found.append((path, relative))
    return found


def _plan_binary(
    path: Path, relative: str, prefix_map: PrefixMap, cstrings: CStringRelocator
) -> BinaryPlan:
    # One read-only mapping per binary: the ELF parser, the C-string scan and the NUL search
    # all work on it without copying the file.
    with path.open("rb") as stream:
        if os.fstat(stream.fileno()).st_size < 4:
            check_elf(path, stream.read())
        with mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as data:
            check_elf(path, data)
            elf = plan_elf(path, data, prefix_map)
            strings = cstrings.plan(data, skip=elf.skip)
    return BinaryPlan(path=path, relative=relative, elf=elf, cstrings=strings)


def _refuse_growing_strings(
    prefix_dir: Path, build_info: BuildInfo, prefix_map: PrefixMap, plans: Iterable[BinaryPlan]
) -> None:
    problems: dict[tuple[str, str, str], int] = {}
    for plan in plans:
        for string in plan.cstrings.growing:
            key = (plan.relative, string.old, string.new)
            problems[key] = problems.get(key, 0) + 1
    if not problems:
        return
    lines = [
        f"  {relative}: {old!r} ({len(old)} characters) -> {new!r} ({len(new)} characters)"
        + (f", {count} times" if count > 1 else "")
        for (relative, old, new), count in problems.items()
    ]
    count = len(problems)
    # Name the prefix the user asked for; the staging folder is only where it is prepared.
    destination = prefix_map.relocate_path(build_info.old_prefix) or str(prefix_dir)
    excess = max(len(new) - len(old) for _, old, new in problems)
    new_root = prefix_map.relocate_path(build_info.buildpath)
    if new_root is not None:
        # Every new path is the new root plus what the projection adds: shortening the root
        # by the largest excess makes every string fit.
        hint = (
            f"use an install root of at most {len(new_root) - excess} characters (it is "
            f"{len(new_root)} with its padding, {excess} too many for these binaries with this "
            "projection): shorten the root or lower padded_length, or choose a shorter "
            "projection; or rebuild the packages with a longer Spack padded_length"
        )
    else:
        hint = (
            f"use an install root of at most {len(build_info.buildpath)} characters (the "
            "length of the root these binaries were built in), or rebuild them with Spack's "
            "padded_length (config:install_tree:padded_length) at least as long as your root"
        )
    raise RelocationError(
        f"{count} hard-coded string{'s' if count != 1 else ''} of the package going to "
        f"{destination} would have to grow, but a string inside a binary can only keep or "
        "shrink its length:\n" + "\n".join(lines),
        hint=hint,
        reference="cannot-grow-string",
    )
