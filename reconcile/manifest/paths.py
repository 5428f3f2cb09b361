"""Checks of the folders and files a manifest names, against the machine it is loaded on:
no system folder as a root, no root inside another that reconcile also writes, no key "file"
that is not a regular file, and paths the filesystem can hold.

Paths are resolved against the manifest's folder as ``ManifestFile.resolve`` does (``~`` and
``~user`` expanded, symlinks followed), so a link to ``/etc`` is caught as ``/etc``. Only
``stat`` is used: nothing named here is opened (a FIFO would hang, ``/dev/zero`` never ends).
Like the cross-checks, these read the plain TOML data, so they run even when other parts of
the manifest are malformed.
"""

from __future__ import annotations

import os
import re
import stat
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reconcile.manifest.finding import Finding, KeyPath, at_value

PATH_MAX = 4096  # Linux: bytes in a path, its terminating NUL included
NAME_MAX = 255  # Linux: bytes in one path component
# Room a prefix needs below the (padded) install root: its own name and the files inside.
PREFIX_ROOM = NAME_MAX + 1

# Never a root: the folder itself (the system's own trees, or a parent of everything).
_SYSTEM_FOLDERS = frozenset(
    ("/", "/bin", "/boot", "/dev", "/etc", "/proc", "/run", "/sbin", "/sys", "/usr", "/var")
)
_SYSTEM_PATTERN = re.compile(r"/lib[^/]*")  # /lib, /lib32, /lib64, /libx32
# Never a root: anything inside these either (kernel and device trees, configuration, boot).
_SYSTEM_TREES = ("/proc", "/sys", "/dev", "/etc", "/boot")

_SYSTEM_HINT = (
    "expected a folder of reconcile's own, such as /opt/spack; docs/security.md lists the "
    "system folders"
)


def is_system_folder(path: str) -> bool:
    """True for a folder no root may be (see the module docstring); ``path`` is absolute
    and normalised."""
    if path in _SYSTEM_FOLDERS or _SYSTEM_PATTERN.fullmatch(path):
        return True
    return any(path.startswith(tree + "/") for tree in _SYSTEM_TREES)


def is_inside(path: str, folder: str) -> bool:
    """``path`` is ``folder`` or below it (both absolute and normalised)."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _resolve(text: str, folder: Path) -> tuple[str | None, str | None]:
    """(the absolute path, None) or (None, what is wrong with ``text``)."""
    if "\0" in text:
        return None, "contains a NUL byte (expected a path)"
    expanded = text
    if text.startswith("~"):
        # not Path.expanduser: it raises for an unknown user, this leaves the text as it is
        expanded = os.path.expanduser(text)  # noqa: PTH111
        if expanded.startswith("~"):
            user = text[1:].split("/", 1)[0] or "the current user"
            return None, (
                f"{text.split('/', 1)[0]!r}: {user} has no home folder here (expected "
                "~/..., ~user/... for a user of this machine, or a plain path)"
            )
    joined = str(folder / expanded)
    too_long = _length_problem(os.path.normpath(joined))
    if too_long is not None:
        return None, too_long
    return os.path.realpath(joined), None


def _length_problem(path: str) -> str | None:
    encoded = path.encode("utf-8", "surrogateescape")
    if len(encoded) >= PATH_MAX:
        return f"is {len(encoded)} bytes long once resolved (expected fewer than {PATH_MAX})"
    longest = max(encoded.split(b"/"), key=len)
    if len(longest) > NAME_MAX:
        return (
            f"has a component of {len(longest)} bytes ({longest[:16].decode(errors='replace')}"
            f"...; expected at most {NAME_MAX} per folder or file name)"
        )
    return None


def _system(where: str, text: str, path: str) -> str:
    shown = f"{text!r}" if text == path else f"{text!r} ({path})"
    return f"{where} {shown} is a system folder ({_SYSTEM_HINT})"


class _Roots:
    """The resolved roots of one manifest, and the findings made while resolving them."""

    def __init__(self, data: dict[str, Any], folder: Path) -> None:
        self.folder = folder
        self.findings: list[Finding] = []
        self.install: str | None = None
        self.caches: list[tuple[int, str]] = []
        self.mirrors: list[tuple[int, str, str]] = []  # (index, name, path): local mirrors
        self.views: list[tuple[int, str]] = []
        install = data.get("install")
        if isinstance(install, dict) and isinstance(install.get("root"), str):
            self.install = self._root(("install", "root"), install["root"], "install root")
        for index, entry in _entries(data, "cache"):
            if isinstance(entry.get("root"), str):
                path = self._root(("cache", index, "root"), entry["root"], "cache root")
                if path is not None:
                    self.caches.append((index, path))
        for index, entry in _entries(data, "mirror"):
            text = _local_path(entry.get("url"))
            if text is not None:
                path = self._root(
                    ("mirror", index, "url"), text, "mirror folder", folder_only=False
                )
                if path is not None:
                    self.mirrors.append((index, str(entry.get("name", index)), path))

        for index, entry in _entries(data, "view"):
            if isinstance(entry.get("path"), str) and entry["path"].strip():
                path = self._view(("view", index, "path"), entry["path"])
                if path is not None:
                    self.views.append((index, path))

    def _view(self, key: KeyPath, text: str) -> str | None:
        """A view's path is a symlink reconcile replaces: its folder is resolved, not it."""
        written = Path(os.path.normpath(text))
        name = written.name
        if name in ("", ".", "..") or text.rstrip().endswith("/"):
            self.findings.append(
                at_value(key, f"view path {text!r} names no link (expected a path such as 'view')")
            )
            return None
        folder = self._root(key, str(written.parent), "view folder")
        return None if folder is None else str(Path(folder) / name)

    def _root(self, key: KeyPath, text: str, what: str, *, folder_only: bool = True) -> str | None:
        path, problem = _resolve(text, self.folder)
        if problem is not None:
            self.findings.append(at_value(key, f"{what} {problem}"))
            return None
        assert path is not None
        if is_system_folder(path) or is_system_folder(os.path.normpath(text)):
            self.findings.append(at_value(key, _system(what, text, path)))
            return None
        if folder_only and os.path.lexists(path) and not Path(path).is_dir():
            self.findings.append(
                at_value(
                    key,
                    f"{what} {path} exists and is not a folder (expected a folder, or a path "
                    "that does not exist yet)",
                )
            )
            return None
        return path


def _entries(data: dict[str, Any], table: str) -> Iterator[tuple[int, dict[str, Any]]]:
    entries = data.get(table)
    if isinstance(entries, list):
        for index, entry in enumerate(entries):
            if isinstance(entry, dict):
                yield index, entry


def _local_path(url: object) -> str | None:
    """The path of a plain-path or ``file://`` URL (a mirror, a source); None for others."""
    if not isinstance(url, str) or not url.strip():
        return None
    if "://" not in url:
        return url
    if url.split("://", 1)[0].lower() != "file":
        return None
    try:
        return urllib.parse.unquote(urllib.parse.urlsplit(url).path) or None
    except ValueError:
        return None


def _overlaps(roots: _Roots) -> Iterator[Finding]:
    """A root inside another that reconcile also writes (or removes from) would let one job
    rewrite or collect the other's files."""
    install = roots.install
    if install is not None:
        for _, name, mirror in roots.mirrors:
            if is_inside(install, mirror):
                yield at_value(
                    ("install", "root"),
                    f"install root {install} is inside mirror {name!r} ({mirror}) (expected "
                    "an install root apart from every mirror)",
                )
        for index, cache in roots.caches:
            if is_inside(install, cache):
                yield at_value(
                    ("install", "root"),
                    f"install root {install} is inside cache[{index}] ({cache}) (expected an "
                    "install root apart from every cache root)",
                )
    for index, cache in roots.caches:
        if install is not None and is_inside(cache, install):
            where = (
                "the install root's state folder .reconcile/"
                if is_inside(cache, str(Path(install) / ".reconcile"))
                else "the install root"
            )
            yield at_value(
                ("cache", index, "root"),
                f"cache root {cache} is inside {where} ({install}) (expected a cache root "
                "apart from the install root)",
            )
        for _, name, mirror in roots.mirrors:
            if is_inside(cache, mirror):
                yield at_value(
                    ("cache", index, "root"),
                    f"cache root {cache} is inside mirror {name!r} ({mirror}) (expected a "
                    "cache root apart from every mirror)",
                )


def _view_overlaps(roots: _Roots) -> Iterator[Finding]:
    """A view (and its generations beside it) inside a folder reconcile manages would be
    collected, published or pruned with it; two views at one path would take turns."""
    places = [("the install root", roots.install)] if roots.install is not None else []
    places += [(f"mirror {name!r}", path) for _, name, path in roots.mirrors]
    places += [(f"cache[{index}]", path) for index, path in roots.caches]
    seen: dict[str, int] = {}
    for index, view in roots.views:
        for what, folder in places:
            if is_inside(view, folder) or is_inside(folder, view):
                yield at_value(
                    ("view", index, "path"),
                    f"view {view} overlaps {what} ({folder}) (expected a view path apart from "
                    "the install root, mirrors and cache roots)",
                )
        if view in seen:
            yield at_value(
                ("view", index, "path"),
                f"view {view} is also the path of view[{seen[view]}] (expected one view per path)",
            )
        seen.setdefault(view, index)


def _room_for_prefixes(data: dict[str, Any], install_root: str | None) -> Iterator[Finding]:
    """The (padded) install root must leave room below it for a prefix's name and files."""
    longest = PATH_MAX - 1 - PREFIX_ROOM
    install = data.get("install")
    padded = install.get("padded_length") if isinstance(install, dict) else None
    if isinstance(padded, int) and not isinstance(padded, bool) and longest < padded <= PATH_MAX:
        # (above PATH_MAX the field check reports it)
        yield at_value(
            ("install", "padded_length"),
            f"padded_length = {padded} leaves no room for prefixes within the {PATH_MAX}-byte "
            f"path limit (expected at most {longest})",
        )
    elif install_root is not None and len(install_root.encode()) > longest:
        yield at_value(
            ("install", "root"),
            f"install root is {len(install_root.encode())} bytes long: prefixes below it "
            f"would pass the {PATH_MAX}-byte path limit (expected at most {longest})",
        )


def _named_files(data: dict[str, Any], folder: Path) -> Iterator[Finding]:
    """Key files and local source archives: each must be a regular file when it exists."""
    named: list[tuple[KeyPath, str, str, str]] = []  # (place, text, what, expected)
    for index, entry in _entries(data, "key"):
        if isinstance(entry.get("file"), str) and entry["file"].strip():
            named.append(
                (("key", index, "file"), entry["file"], "key file", "an armored public key file")
            )
    for index, entry in _entries(data, "source"):
        text = _local_path(entry.get("url"))
        if text is not None:
            named.append((("source", index, "url"), text, "source archive", "an archive file"))
    for key, text, what, expected in named:
        path, problem = _resolve(text, folder)
        if problem is not None:
            yield at_value(key, f"{what} {problem}")
            continue
        assert path is not None
        try:
            mode = Path(path).stat().st_mode
        except OSError:
            continue  # missing or unreadable: reported when it is read, with a hint
        if not stat.S_ISREG(mode):
            yield at_value(
                key, f"{what} {path} is {_kind(mode)}, not a regular file (expected {expected})"
            )


def _kind(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def path_findings(data: dict[str, Any], folder: Path) -> list[Finding]:
    """Every problem with the paths the manifest names, resolved against ``folder``."""
    roots = _Roots(data, folder)
    return [
        *roots.findings,
        *_overlaps(roots),
        *_view_overlaps(roots),
        *_room_for_prefixes(data, roots.install),
        *_named_files(data, folder),
    ]
