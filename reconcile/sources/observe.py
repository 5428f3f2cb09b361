"""Read-only facts about a source mirror: for each source, is its archive there and good, and
does its link point at it.

An archive whose size and mtime match its verification record is taken as good without being
read; otherwise (no record, a change, or ``check_contents``) it is hashed.
"""

from __future__ import annotations

import posixpath
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import attrs

from reconcile.errors import ReconcileError
from reconcile.manifest.model import Source
from reconcile.reprs import fields_repr
from reconcile.sources import digest
from reconcile.sources.folders import folder_problem
from reconcile.sources.layout import SourcePaths, source_paths
from reconcile.state.sources import VerificationRecord, VerificationState, load_state

EntryKind = Literal["missing", "file", "symlink", "other"]


@attrs.frozen(kw_only=True)
class ArchiveFacts:
    __repr__ = fields_repr

    path: str  # relative to the mirror root
    expected_sha256: str
    kind: Literal["missing", "file", "other"]
    found: str | None = None  # for "other": what is there instead ("a symlink", ...)
    size: int | None = None
    mtime_ns: int | None = None
    record: VerificationRecord | None = None  # the state's record for this path
    unchanged: bool = False  # size, mtime and expected sha256 match the record
    actual_sha256: str | None = None  # set when the file was hashed

    @property
    def hashed(self) -> bool:
        return self.actual_sha256 is not None


@attrs.frozen(kw_only=True)
class LinkFacts:
    __repr__ = fields_repr

    path: str  # relative to the mirror root
    kind: EntryKind
    target: str | None = None  # for a symlink: what it points to, as written
    found: str | None = None  # for "other": what is there instead


@attrs.frozen(kw_only=True)
class SourceMirrorFacts:
    __repr__ = fields_repr

    root: Path
    checked_contents: bool
    archives: Mapping[str, ArchiveFacts]  # by relative path
    links: Mapping[str, LinkFacts]  # by relative path


def _describe(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "a special file"


def _unreadable(path: Path, exc: OSError) -> ReconcileError:
    return ReconcileError(
        f"cannot read {path} in the source mirror: {exc.strerror or exc}",
        hint="check that the mirror is readable by the user running reconcile",
        reference="source-mirror-unreadable",
    )


def _observe_archive(
    root: Path, path: str, sha256: str, state: VerificationState, check_contents: bool
) -> ArchiveFacts:
    facts = ArchiveFacts(path=path, expected_sha256=sha256, kind="missing")
    problem = folder_problem(root, posixpath.dirname(path))
    if problem is not None:
        return attrs.evolve(facts, kind="other", found=problem)
    full = root / path
    try:
        info = full.lstat()
    except FileNotFoundError:
        return facts
    except OSError as exc:
        raise _unreadable(full, exc) from None
    if not stat.S_ISREG(info.st_mode):
        return attrs.evolve(facts, kind="other", found=_describe(info.st_mode))
    record = state.get(path)
    unchanged = record is not None and record.matches(
        size=info.st_size, mtime_ns=info.st_mtime_ns, sha256=sha256
    )
    facts = attrs.evolve(
        facts,
        kind="file",
        size=info.st_size,
        mtime_ns=info.st_mtime_ns,
        record=record,
        unchanged=unchanged,
    )
    if unchanged and not check_contents:
        return facts
    try:
        actual = digest.sha256_file(full)
    except OSError as exc:
        raise _unreadable(full, exc) from None
    return attrs.evolve(facts, actual_sha256=actual)


def _observe_link(root: Path, path: str) -> LinkFacts:
    problem = folder_problem(root, posixpath.dirname(path))
    if problem is not None:
        return LinkFacts(path=path, kind="other", found=problem)
    full = root / path
    try:
        info = full.lstat()
    except FileNotFoundError:
        return LinkFacts(path=path, kind="missing")
    except OSError as exc:
        raise _unreadable(full, exc) from None
    if stat.S_ISLNK(info.st_mode):
        return LinkFacts(path=path, kind="symlink", target=str(full.readlink()))
    if stat.S_ISREG(info.st_mode):
        return LinkFacts(path=path, kind="file", found="a regular file")
    return LinkFacts(path=path, kind="other", found=_describe(info.st_mode))


def observe_source_mirror(
    mirror_root: Path,
    sources: Sequence[Source],
    *,
    check_contents: bool = False,
    state: VerificationState | None = None,
) -> SourceMirrorFacts:
    """Facts about ``sources`` in the file mirror at ``mirror_root`` (nothing is written).

    ``state`` defaults to the verification records kept in the mirror. An archive shared by
    several sources (same sha256) is looked at once.
    """
    records = load_state(mirror_root) if state is None else state
    archives: dict[str, ArchiveFacts] = {}
    links: dict[str, LinkFacts] = {}
    for source in sources:
        paths: SourcePaths = source_paths(source)
        if paths.archive not in archives:
            archives[paths.archive] = _observe_archive(
                mirror_root, paths.archive, source.sha256, records, check_contents
            )
        if paths.link not in links:
            links[paths.link] = _observe_link(mirror_root, paths.link)
    return SourceMirrorFacts(
        root=mirror_root, checked_contents=check_contents, archives=archives, links=links
    )
