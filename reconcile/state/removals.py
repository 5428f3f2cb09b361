"""The log of removed prefixes: ``<root>/.reconcile/removed/<when>-<dag hash>.json``, one
file per removal, holding the install record of what was removed, when and why. Nothing
reads it back: it is there for people (and audits) who ask what a prune deleted."""

from __future__ import annotations

import json
import os
from pathlib import Path

from reconcile.state.leftovers import temp_name
from reconcile.state.records import InstallRecord, record_to_dict, utc_timestamp

REMOVED_FOLDER = (".reconcile", "removed")


def removed_dir(root: Path) -> Path:
    return root.joinpath(*REMOVED_FOLDER)


def log_removal(root: Path, record: InstallRecord, *, reason: str) -> Path:
    """Write (durably, before the record goes) what is being removed, when and why."""
    folder = removed_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    when = utc_timestamp()
    destination = folder / f"{when.replace(':', '')}-{record.hash}.json"
    temporary = folder / temp_name(record.hash)
    entry = {"removed_at": when, "reason": reason, "record": record_to_dict(record)}
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as stream:
            json.dump(entry, stream, sort_keys=True, indent=1)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        temporary.replace(destination)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return destination
