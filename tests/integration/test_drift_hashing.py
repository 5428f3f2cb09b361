"""How drift hashes a file: only a regular file, never through a symlink, never blocking, with
the same digest whatever the file's size (chunked reads into a reused buffer)."""

from __future__ import annotations

import errno
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from reconcile.hashing import CHUNK
from reconcile.observe import prefix_drift


@pytest.mark.parametrize("size", [0, 1, 2047, 2048, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7])
def test_the_digest_is_sha256_of_the_whole_file(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "file"
    path.write_bytes(data)
    assert prefix_drift._sha256(str(path)) == hashlib.sha256(data).hexdigest()


def test_threads_hashing_at_once_each_get_their_own_file_s_digest(tmp_path: Path) -> None:
    files = {}
    for number in range(40):
        data = os.urandom(number * 50_000)
        path = tmp_path / f"f{number}"
        path.write_bytes(data)
        files[str(path)] = hashlib.sha256(data).hexdigest()
    with ThreadPoolExecutor(4) as workers:
        digests = dict(zip(files, workers.map(prefix_drift._sha256, files), strict=True))
    assert digests == files


def test_a_file_swapped_for_a_symlink_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    target.write_bytes(b"not yours")
    link = tmp_path / "file"
    link.symlink_to(target)
    with pytest.raises(OSError) as caught:
        prefix_drift._sha256(str(link))
    assert caught.value.errno == errno.ELOOP


def test_a_file_swapped_for_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "file"
    os.mkfifo(fifo)  # with no writer, a blocking open would wait for ever
    with pytest.raises(OSError) as caught:
        prefix_drift._sha256(str(fifo))
    assert caught.value.errno == errno.EINVAL


def test_a_file_swapped_for_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        prefix_drift._sha256(str(tmp_path))
