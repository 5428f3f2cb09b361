"""A source archive's download that an earlier run left unfinished is resumed with a Range
request to a real nginx, never truncated; a partial file that is not a part of the archive is
caught by the whole-file sha256 and the archive fetched again."""

from __future__ import annotations

import subprocess
from pathlib import Path

from nginx_harness import nginx_server
from source_mirror_support import (
    GREETLIB_ARCHIVE,
    GREETLIB_SHA256,
    converge,
    fixture_sources,
    served_copy,
    sha256_of,
)

from reconcile.state.leftovers import this_boot, this_host
from reconcile.state.sources import PARTIAL_FOLDER


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _left_by_a_dead_run(root: Path, data: bytes) -> Path:
    """A partial download of greetlib's archive as an interrupted run leaves it."""
    folder = root / PARTIAL_FOLDER
    folder.mkdir(parents=True)
    name = f"{GREETLIB_SHA256}.{this_host()}-{this_boot()}-{_dead_pid()}-0badc0de.partial"
    partial = folder / name
    partial.write_bytes(data)
    return partial


def _greetlib_gets(server_entries: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [
        (e["status"], e["range"])
        for e in server_entries
        if e["method"] == "GET" and e["uri"] == f"/{GREETLIB_ARCHIVE}"
    ]


def test_an_interrupted_source_download_is_resumed(tmp_path: Path) -> None:
    served = served_copy(tmp_path / "served")
    archive = (served / GREETLIB_ARCHIVE).read_bytes()
    root = tmp_path / "mirror"
    kept = len(archive) // 3
    partial = _left_by_a_dead_run(root, archive[:kept])
    with nginx_server(served, tmp=tmp_path / "nginx") as server:
        done = converge(root, fixture_sources(server.url))
        gets = _greetlib_gets(server.access_log_entries())
        sent = [
            e
            for e in server.access_log_entries()
            if e["uri"] == f"/{GREETLIB_ARCHIVE}" and e["method"] == "GET"
        ]
    assert gets == [(206, f"bytes={kept}-")]
    assert sent[0]["body_bytes_sent"] == len(archive) - kept
    assert sha256_of(root / GREETLIB_ARCHIVE) == GREETLIB_SHA256
    assert done.fetched == 2
    assert not partial.exists()
    assert not (root / PARTIAL_FOLDER).exists()  # removed once empty


def test_a_partial_source_download_that_was_rewritten_is_fetched_again(tmp_path: Path) -> None:
    served = served_copy(tmp_path / "served")
    archive = (served / GREETLIB_ARCHIVE).read_bytes()
    root = tmp_path / "mirror"
    kept = len(archive) // 2
    _left_by_a_dead_run(root, b"\0" * 64 + archive[64:kept])  # a co-tenant's rewrite
    with nginx_server(served, tmp=tmp_path / "nginx") as server:
        converge(root, fixture_sources(server.url))
        gets = _greetlib_gets(server.access_log_entries())
    assert gets == [(206, f"bytes={kept}-"), (200, None)]
    assert sha256_of(root / GREETLIB_ARCHIVE) == GREETLIB_SHA256
    assert not (root / PARTIAL_FOLDER).exists()  # removed once empty
