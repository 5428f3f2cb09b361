"""Partial downloads kept in a cache root (``<root>/partial/``, ``cache/partial.py``): listing
them, and removing the abandoned ones for ``cache gc``.

A partial download is abandoned when the run that wrote it has ended and nothing has written
to it for longer than a bound. Whether a run has ended is read from the owner tag in the
name (``state/leftovers.py``), exactly as a resuming run reads it: a run resumes only a
partial whose writer has ended, and first renames it to its own tag, so the name of a partial
that a running apply holds always carries a live owner, and such a partial is never removed.
The owner of a partial written on another host (a shared cache root) cannot be checked from
here: it is listed, and kept (``cache gc`` on that host removes it).

A rename by a resuming run between the listing and the removal makes the removal find
nothing (the removal is by the old name), and a removal first makes the run's rename fail,
after which it starts a new partial: neither loses a download that is in progress.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import attrs

from reconcile.cache.partial import PARTIAL_FOLDER
from reconcile.reprs import fields_repr
from reconcile.safe_fs import folder_at
from reconcile.state.leftovers import owner_is_gone, owner_of, resumable_key, this_host

Writer = Literal["running", "ended", "other-host"]


@attrs.frozen(kw_only=True)
class PartialDownload:
    __repr__ = fields_repr

    path: Path
    sha256: str  # of the file it is a part of
    size: int
    modified: datetime  # the last write
    writer: Writer


def _modified(status: os.stat_result) -> datetime:
    return datetime.fromtimestamp(status.st_mtime, UTC)


def _writer(name: str) -> Writer:
    owner = owner_of(name)
    assert owner is not None  # a resumable name always carries its tag
    if owner.host != this_host():
        return "other-host"
    return "ended" if owner_is_gone(owner) else "running"


def scan_partials(root: Path) -> tuple[PartialDownload, ...]:
    """The partial downloads in the cache root ``root`` (regular files only; nothing below
    ``root`` is followed through a link)."""
    found = []
    with (
        contextlib.suppress(OSError),
        folder_at(root, root / PARTIAL_FOLDER, create=False) as folder,
    ):
        for name in sorted(folder.listdir()):
            sha256 = resumable_key(name)
            if sha256 is None:
                continue
            with contextlib.suppress(FileNotFoundError):  # used or claimed meanwhile
                status = folder.lstat(name)
                if stat.S_ISREG(status.st_mode):
                    found.append(
                        PartialDownload(
                            path=folder.path / name,
                            sha256=sha256,
                            size=status.st_size,
                            modified=_modified(status),
                            writer=_writer(name),
                        )
                    )
    return tuple(found)


def abandoned(partial: PartialDownload, *, now: datetime, max_age: timedelta) -> bool:
    """Its run has ended (on this host) and nothing wrote to it for longer than ``max_age``."""
    return partial.writer == "ended" and now - partial.modified > max_age


def remove_partials(
    root: Path, partials: Iterable[PartialDownload], failures: list[str]
) -> list[PartialDownload]:
    """Remove ``partials`` (of the cache root ``root``), except one that was claimed, used
    or written to since it was listed; the ones removed. What cannot be removed is added
    to ``failures``."""
    removed = []
    pending = list(partials)
    try:
        with folder_at(root, root / PARTIAL_FOLDER, create=False) as folder:
            for partial in pending:
                name = partial.path.name
                try:
                    if _modified(folder.lstat(name)) != partial.modified:
                        continue  # written since the listing: a run holds it after all
                    os.unlink(name, dir_fd=folder.fd)
                except FileNotFoundError:
                    continue  # claimed by a resuming run, or used
                except OSError as exc:
                    failures.append(f"cannot remove {partial.path}: {exc.strerror or exc}")
                else:
                    removed.append(partial)
    except OSError as exc:
        failures.extend(f"cannot remove {p.path}: {exc.strerror or exc}" for p in pending)
    return removed
