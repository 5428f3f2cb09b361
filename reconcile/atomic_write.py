"""Writing mirror files so that readers see the old file or the new one, never half of one.

With ``root`` (the mirror being written), no folder between it and the file is followed
if it is a symlink (``safe_fs``): a link planted in a shared mirror is refused, naming it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from reconcile.safe_fs import folder_at

# Mirror files are meant to be served to everyone; mkstemp's 0o600 would hide them.
MIRROR_FILE_MODE = 0o644


@contextlib.contextmanager
def atomic_output(path: Path, *, root: Path | None = None) -> Iterator[BinaryIO]:
    """A binary file that replaces ``path`` only when the block ends without an exception.

    The temporary file lives in the same folder, so the final ``os.replace`` is a rename on
    one filesystem; it is fsynced first so that a crash never leaves an empty file behind.
    """
    if root is not None:
        with (
            folder_at(root, path.parent) as folder,
            folder.atomic_output(path.name, MIRROR_FILE_MODE) as stream,
        ):
            yield stream
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        temp.chmod(MIRROR_FILE_MODE)
        temp.replace(path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes, *, root: Path | None = None) -> None:
    with atomic_output(path, root=root) as stream:
        stream.write(data)
