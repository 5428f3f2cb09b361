"""Hashing archives (kept in one place so that a test can tell whether a file was read)."""

from __future__ import annotations

from pathlib import Path

from reconcile.hashing import sha256_of


def sha256_file(path: Path) -> str:
    return sha256_of(path)
