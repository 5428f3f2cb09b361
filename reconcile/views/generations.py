"""A view's generations on disk, and the atomic switch between them.

Layout, beside the view's symlink ``<folder>/<name>``::

    <name> -> <name>.generations/<N>     the symlink users put on PATH (relative target)
    <name>.generations/<N>/              the tree of generation N
    <name>.generations/<N>.json          what it holds: number, date, contents, tree digest
    <name>.generations/log.jsonl         every switch: when, from, to and why (rollbacks too)

A generation is complete once its tree and its metadata are both in place; the symlink is
only ever pointed at a complete one, by making a new link under a temporary name and
renaming it over the old (rename is atomic: a reader sees the old tree or the new one,
never no tree). The view's folder is the user's choice (like an install root); nothing
below it is followed if it is a link (``reconcile.safe_fs``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
from pathlib import Path
from typing import Any, get_args

import attrs

from reconcile import bounded_json, safe_fs
from reconcile.errors import ReconcileError
from reconcile.manifest.model import ConflictPolicy, LinkKind
from reconcile.reprs import fields_repr
from reconcile.views.contents import ViewContents, contents_to_dict, spec_from_dict

GENERATIONS_SUFFIX = ".generations"
METADATA_FORMAT = 1
LOG_NAME = "log.jsonl"
BUILDING_PREFIX = ".building-"
MAX_METADATA_BYTES = 64 * 1024 * 1024
_NUMBER = re.compile(r"[1-9][0-9]{0,8}")


class ViewStateError(ReconcileError):
    """A view's path or generations folder is not what reconcile left there."""

    reference = "view-not-reconcile"


@attrs.frozen(kw_only=True)
class Generation:
    __repr__ = fields_repr

    number: int
    created: str  # UTC, 2026-01-31T12:00:00Z
    fingerprint: str  # of the contents it was built from
    contents: ViewContents
    tree: str  # digest of the tree as built (tree_digest)
    files: int  # paths in the tree


@attrs.frozen(kw_only=True)
class ViewState:
    """What is on disk for one view."""

    __repr__ = fields_repr

    path: str
    current: int | None  # the generation the symlink points at; None: no symlink
    generations: tuple[Generation, ...]  # complete ones, oldest first

    def generation(self, number: int | None) -> Generation | None:
        return next((g for g in self.generations if g.number == number), None)

    @property
    def current_generation(self) -> Generation | None:
        return self.generation(self.current)

    def kept(self, keep: int) -> tuple[Generation, ...]:
        """The generations that stay: the ``keep`` newest, and the current one."""
        newest = {g.number for g in self.generations[-keep:]}
        return tuple(g for g in self.generations if g.number in newest or g.number == self.current)


def generations_dir(view_path: Path) -> Path:
    return view_path.with_name(view_path.name + GENERATIONS_SUFFIX)


def link_target(view_path: Path, number: int) -> str:
    """What the view's symlink holds for generation ``number``: relative, so the view and
    its generations can move together."""
    return f"{view_path.name}{GENERATIONS_SUFFIX}/{number}"


def read_pointer(view_path: Path) -> int | None:
    """The generation the view's symlink points at; None when there is no symlink.
    ``ViewStateError`` when something else is at the view's path."""
    try:
        status = view_path.lstat()
    except FileNotFoundError:
        return None
    if not stat.S_ISLNK(status.st_mode):
        raise ViewStateError(
            f"{view_path} is not a symlink reconcile made: a view's path is a symlink to its "
            "current generation, and reconcile never replaces anything else",
            hint="move it away (or choose another path for the view), then run again",
        )
    target = str(view_path.readlink())
    prefix = f"{view_path.name}{GENERATIONS_SUFFIX}/"
    number = target.removeprefix(prefix)
    if not target.startswith(prefix) or _NUMBER.fullmatch(number) is None:
        raise ViewStateError(
            f"{view_path} points at {target!r}, not at one of its generations "
            f"({prefix}<N>): reconcile did not make it",
            hint="remove the symlink (check what it pointed at), then run again",
        )
    return int(number)


def _string(data: dict[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise ValueError(f"{key} is not a string")
    return value


def _projection(value: str) -> str:
    """A projection stays inside the view: relative, without '..' (a tampered metadata file
    must not make ``reconcile env`` name folders elsewhere)."""
    if value and (value.startswith("/") or ".." in value.split("/")):
        raise ValueError(f"projection {value!r} leaves the view")
    return value


def _metadata_from(data: Any, number: int) -> Generation:
    """``ValueError`` for anything ``metadata_to_dict`` does not write: the file is on disk
    where others may edit it, so every field's type is checked (a 1e309 or a list where a
    string belongs is refused here, not met later)."""
    if not isinstance(data, dict) or data.get("format") != METADATA_FORMAT:
        raise ValueError(f"expected format {METADATA_FORMAT}")
    if data.get("number") != number or type(data.get("number")) is not int:
        raise ValueError(f"it names generation {data.get('number')!r}")
    contents = data["contents"]
    files = data["files"]
    if not isinstance(contents, dict) or type(files) is not int or files < 0:
        raise ValueError("contents is not an object or files is not a count")
    link, conflicts = contents["link"], contents["conflicts"]
    exclude, specs = contents["exclude"], contents["specs"]
    if link not in get_args(LinkKind) or conflicts not in get_args(ConflictPolicy):
        raise ValueError("unknown link or conflicts")
    if not isinstance(exclude, list) or not all(isinstance(glob, str) for glob in exclude):
        raise ValueError("exclude is not a list of strings")
    if not isinstance(specs, list):
        raise ValueError("specs is not a list")
    view_specs = tuple(spec_from_dict(spec) for spec in specs)
    for spec in view_specs:
        _projection(spec.projection)
    return Generation(
        number=number,
        created=_string(data, "created"),
        fingerprint=_string(data, "fingerprint"),
        contents=ViewContents(
            link=link,
            conflicts=conflicts,
            exclude=tuple(exclude),
            specs=view_specs,
        ),
        tree=_string(data, "tree"),
        files=files,
    )


def metadata_to_dict(generation: Generation) -> dict[str, Any]:
    return {
        "format": METADATA_FORMAT,
        "number": generation.number,
        "created": generation.created,
        "fingerprint": generation.fingerprint,
        "contents": contents_to_dict(generation.contents),
        "tree": generation.tree,
        "files": generation.files,
    }


def _read_metadata(folder: safe_fs.Folder, number: int) -> Generation | None:
    """Generation ``number``'s metadata; None when missing or unreadable (an interrupted
    build, or someone's edit: such a generation is never switched to)."""
    try:
        with folder.open_read(f"{number}.json") as stream:
            data = stream.read(MAX_METADATA_BYTES + 1)
        if len(data) > MAX_METADATA_BYTES:
            return None
        return _metadata_from(bounded_json.loads(data), number)
    except (OSError, ValueError, KeyError, TypeError, OverflowError):
        return None


def read_view_state(view_path: Path) -> ViewState:
    """The view's symlink and its complete generations (read-only)."""
    current = read_pointer(view_path)
    generations = []
    try:
        with safe_fs.folder_at(
            view_path.parent, generations_dir(view_path), create=False
        ) as folder:
            for name in folder.listdir():
                if _NUMBER.fullmatch(name) is None:
                    continue
                if not stat.S_ISDIR(folder.lstat(name).st_mode):
                    continue
                generation = _read_metadata(folder, int(name))
                if generation is not None:
                    generations.append(generation)
    except FileNotFoundError:
        pass
    generations.sort(key=lambda g: g.number)
    return ViewState(path=str(view_path), current=current, generations=tuple(generations))


def next_number(view_path: Path) -> int:
    """One more than any generation number used so far (complete or not)."""
    used = [0]
    with (
        contextlib.suppress(FileNotFoundError),
        safe_fs.folder_at(view_path.parent, generations_dir(view_path), create=False) as folder,
    ):
        for name in folder.listdir():
            stem = name.removesuffix(".json")
            if _NUMBER.fullmatch(stem) is not None:
                used.append(int(stem))
    return max(used) + 1


def open_generations(view_path: Path) -> contextlib.AbstractContextManager[safe_fs.Folder]:
    """The generations folder, made when missing, never through a link."""
    return safe_fs.folder_at(view_path.parent, generations_dir(view_path), create=True)


def write_metadata(folder: safe_fs.Folder, generation: Generation) -> None:
    text = json.dumps(metadata_to_dict(generation), indent=1, sort_keys=True) + "\n"
    folder.write_atomic(f"{generation.number}.json", text.encode())


def switch(view_path: Path, number: int) -> None:
    """Point the view's symlink at generation ``number`` in one rename."""
    read_pointer(view_path)  # refuses to replace anything reconcile did not make
    import secrets  # only to switch: reading a view's state need not import it

    with safe_fs.folder_at(view_path.parent, view_path.parent, create=False) as folder:
        temporary = f".{view_path.name}.{secrets.token_hex(8)}.tmp"
        folder.symlink(link_target(view_path, number), temporary)
        try:
            folder.replace(temporary, view_path.name)
        except BaseException:
            folder.unlink(temporary)
            raise
        folder.fsync()


def log_switch(view_path: Path, *, when: str, before: int | None, after: int, reason: str) -> None:
    """Append one line to the generations' log (O_APPEND: lines are never interleaved)."""
    line = json.dumps({"at": when, "from": before, "to": after, "reason": reason}, sort_keys=True)
    with open_generations(view_path) as folder:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(LOG_NAME, flags, 0o644, dir_fd=folder.fd)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)


def read_log(view_path: Path, *, last: int = 1000) -> list[dict[str, Any]]:
    """The last switches logged (unreadable lines are left out)."""
    entries: list[dict[str, Any]] = []
    try:
        with safe_fs.open_file_below(
            view_path.parent, generations_dir(view_path) / LOG_NAME
        ) as stream:
            lines = stream.read(MAX_METADATA_BYTES).decode(errors="replace").splitlines()
    except (OSError, ReconcileError):
        return entries
    for line in lines[-last:]:
        with contextlib.suppress(ValueError):
            entry = bounded_json.loads(line)
            if isinstance(entry, dict):
                entries.append(entry)
    return entries


def remove_generation(folder: safe_fs.Folder, number: int) -> None:
    """Metadata first: a half-removed generation is never taken for a complete one."""
    folder.unlink(f"{number}.json")
    folder.remove_tree(str(number))


def trim(view_path: Path, keep: int) -> list[int]:
    """Remove generations beyond the ``keep`` newest (never the current one), and what
    interrupted builds left; the numbers removed."""
    state = read_view_state(view_path)
    kept = {g.number for g in state.kept(keep)}
    removed = []
    with open_generations(view_path) as folder:
        for name in folder.listdir():
            stem = name.removesuffix(".json")
            if name.startswith(BUILDING_PREFIX):
                folder.remove_tree(name)
            elif _NUMBER.fullmatch(stem) is not None and int(stem) not in kept:
                if int(stem) == state.current:
                    continue
                remove_generation(folder, int(stem))
                if int(stem) not in removed:
                    removed.append(int(stem))
    return sorted(removed)


def tree_digest(tree: Path) -> tuple[str, int]:
    """A digest of a generation's tree: every path with its type, and a symlink's target or
    a file's size (a copy's bytes are not hashed: drift of a view is about what it links)."""
    digest = hashlib.sha256()
    count = 0
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted(dirnames + filenames):
            path = base / name
            relative = path.relative_to(tree).as_posix()
            status = path.lstat()
            if stat.S_ISLNK(status.st_mode):
                entry = f"l\0{relative}\0{path.readlink()}"
            elif stat.S_ISDIR(status.st_mode):
                entry = f"d\0{relative}"
            else:
                entry = f"f\0{relative}\0{status.st_size}"
            digest.update(entry.encode("utf-8", "surrogateescape") + b"\n")
            count += 1
    return digest.hexdigest(), count


def rollback_target(state: ViewState, to: int | None) -> Generation:
    """The generation to switch back to: ``to``, or the newest one before the current."""
    if to is not None:
        chosen = state.generation(to)
        if chosen is None:
            kept = ", ".join(str(g.number) for g in state.generations) or "none"
            raise ViewStateError(
                f"view {state.path} has no generation {to} (kept: {kept})",
                hint="'reconcile generations' lists them",
                reference="no-such-generation",
            )
        return chosen
    if state.current is None:
        raise ViewStateError(
            f"view {state.path} has no generation yet, so there is nothing to roll back to",
            hint="run 'reconcile apply' to build one",
            reference="no-such-generation",
        )
    earlier = [g for g in state.generations if g.number < state.current]
    if not earlier:
        raise ViewStateError(
            f"view {state.path} is at its oldest kept generation ({state.current}): there is "
            "no earlier one to roll back to",
            hint="name a newer one with --to N ('reconcile generations' lists them)",
            reference="no-such-generation",
        )
    return earlier[-1]


def missing_prefixes(generation: Generation) -> list[str]:
    """The prefixes a generation links that are gone (it would be a view of broken links)."""
    return [
        f"{spec.label} ({spec.prefix})"
        for spec in generation.contents.specs
        if not Path(spec.prefix).is_dir()
    ]
