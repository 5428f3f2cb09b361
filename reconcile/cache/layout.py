"""Where things live in a cache root.

``<root>/blobs/sha256/<first two hex digits>/<sha256>`` is a blob (a tarball, named by the
sha256 of its bytes) and ``<sha256>.json`` beside it its record. Blobs being written are
hidden temporary files in the same folder (``.<sha256>.<host>-<boot>-<pid>-<random>.tmp``,
see ``state/leftovers.py``), so that committing
one is a rename. ``<root>/indexes/<digest of the URL>/index.json`` keeps a mirror's index
between runs, for conditional requests.
"""

from __future__ import annotations

import hashlib
import re
import stat
from collections.abc import Iterator
from pathlib import Path

from reconcile.safe_fs import Folder, folder_at, link_error

BLOBS = Path("blobs", "sha256")
INDEXES = "indexes"
INDEX_FILE = "index.json"
RECORD_SUFFIX = ".json"
TEMP_SUFFIX = ".tmp"
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
_FOLDER_PATTERN = re.compile(r"[0-9a-f]{2}")


def check_sha256(sha256: str) -> str:
    """``sha256`` if it is 64 lower-case hex digits. It becomes a file name, so anything else
    (``../x``) is refused before a path is built from it."""
    if SHA256_PATTERN.fullmatch(sha256) is None:
        raise ValueError(f"not a sha256 hex digest: {sha256[:80]!r}")
    return sha256


def blob_path(root: Path, sha256: str) -> Path:
    check_sha256(sha256)
    return root / BLOBS / sha256[:2] / sha256


def root_of_blob(path: Path) -> Path:
    """The cache root of a path in a blob folder (a blob, its record, a temporary file)."""
    return path.parents[len(BLOBS.parts) + 1]


def record_path(blob: Path) -> Path:
    return blob.with_name(blob.name + RECORD_SUFFIX)


def is_temp_name(name: str) -> bool:
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def blob_folders(root: Path) -> Iterator[Path]:
    """The two-hex-digit folders of a root, in order; nothing when the root does not exist.
    A folder on the way, or one of these, that is a symlink is refused (``LinkInRootError``),
    never followed."""
    try:
        with folder_at(root, root / BLOBS, create=False) as blobs:
            names = [
                name
                for name in blobs.listdir()
                if _FOLDER_PATTERN.fullmatch(name) and _is_folder(blobs, name)
            ]
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in names:
        yield root / BLOBS / name


def _is_folder(parent: Folder, name: str) -> bool:
    mode = parent.lstat(name).st_mode
    if stat.S_ISLNK(mode):
        raise link_error(parent.root, parent.path / name, "a symlink")
    return stat.S_ISDIR(mode)


def sha256_of_name(path: Path) -> str | None:
    """The sha256 a blob's file name claims, when the name is one."""
    return path.name if SHA256_PATTERN.fullmatch(path.name) else None


def index_copy_path(root: Path, url_key: str) -> Path:
    digest = hashlib.sha256(url_key.encode("utf-8")).hexdigest()[:32]
    return root / INDEXES / digest / INDEX_FILE
