"""A copy of the shared fixtures with their links in the other form, to run tests against.

``../shared`` reaches a machine either as a git checkout, where the source mirror's
``<name>/<name>-<version>.<ext>`` links are real symlinks, or as a copy where each link was
flattened into a small file holding the link's text. Tests must pass with both: build the
other form and point the tests at it with ``RECONCILE_SHARED``::

    python3 tests/shared_with_symlinks.py /tmp/shared-symlinks            # real symlinks
    python3 tests/shared_with_symlinks.py /tmp/shared-flat --flattened    # flattened files
    RECONCILE_SHARED=/tmp/shared-symlinks python3 -m pytest -q tests/sources
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Literal

LinkForm = Literal["symlinks", "flattened"]
# A flattened link is a small file whose whole text is a relative path to another file.
_MAX_LINK_TEXT = 512


def flattened_link_target(path: Path) -> str | None:
    """The link text a flattened link file holds, or None when ``path`` is a real file."""
    if path.is_symlink() or not path.is_file() or path.stat().st_size > _MAX_LINK_TEXT:
        return None
    try:
        text = path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        return None
    if not text.startswith("../") or "\n" in text:
        return None
    return text if (path.parent / text).is_file() else None


def link_text(path: Path) -> str | None:
    """The text of a link of the fixtures: a real symlink (a git checkout of ../shared) or
    flattened into a file holding that text (some copies); None for anything else."""
    return os.readlink(path) if path.is_symlink() else flattened_link_target(path)


def build_shared_copy(source: Path, dest: Path, *, links: LinkForm) -> Path:
    """Copy ``source`` (a shared/ folder) to ``dest`` with every link in the form ``links``;
    the copy is writable. Returns ``dest``."""
    shutil.copytree(source, dest, symlinks=True)
    for folder, _dirs, files in os.walk(dest):
        for name in files:
            path = Path(folder) / name
            if links == "symlinks":
                target = flattened_link_target(path)
                if target is not None:
                    path.unlink()
                    path.symlink_to(target)
            elif path.is_symlink():
                target = os.readlink(path)
                path.unlink()
                path.write_text(target, encoding="utf-8")  # no newline, as the copies have
    for path in [dest, *dest.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    return dest


def links_in(folder: Path) -> dict[str, str]:
    """relative path -> link text, for real symlinks and flattened links alike."""
    found = {}
    for path in sorted(folder.rglob("*")):
        text = link_text(path)
        if text is not None:
            found[path.relative_to(folder).as_posix()] = text
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path)
    parser.add_argument("--flattened", action="store_true", help="flatten links into files")
    parser.add_argument("--source", type=Path, default=Path(__file__).parents[2] / "shared")
    args = parser.parse_args(argv)
    form: LinkForm = "flattened" if args.flattened else "symlinks"
    build_shared_copy(args.source.resolve(), args.dest, links=form)
    print(f"RECONCILE_SHARED={args.dest.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
