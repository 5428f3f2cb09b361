"""Facts about the install tree: which specs reconcile recorded, and which prefixes exist."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from reconcile.state.records import InstallRecord, read_records


def observe_install_tree(root: Path) -> tuple[Mapping[str, InstallRecord], frozenset[str]]:
    """The records under ``root`` and the hashes whose recorded prefix is a folder on disk."""
    records = read_records(root)
    present = frozenset(h for h, r in records.items() if Path(r.prefix).is_dir())
    return records, present
