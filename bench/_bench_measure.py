"""Timing the floor and reconcile's commands, and reading what crossed the wire.

The floor is what any installer must do at least with the same tarballs: ``sha256sum`` of
each and ``tar -xzf`` of each. reconcile's commands are timed as whole processes
(``python -m reconcile``), interpreter start-up and imports included, as a user sees them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs


@attrs.frozen(kw_only=True)
class Run:
    seconds: float
    exit_code: int
    stdout: str
    stderr: str
    peak_rss: int = 0  # bytes: the process's largest resident set (wait4's ru_maxrss)


def settle() -> None:
    """Write out what earlier steps left dirty (and let the filesystem finish freeing what
    they deleted), so that no step pays for the one before it."""
    os.sync()


def run_timed(command: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None) -> Run:
    """Run ``command`` to its end; its output is kept in files (not pipes), so that the
    process can be reaped with ``wait4``, which also tells its peak memory."""
    settle()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(
            seconds=seconds,
            exit_code=process.returncode,
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
            peak_rss=usage.ru_maxrss * 1024,  # Linux reports KiB
        )


def reconcile_command(manifest: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "reconcile", "-m", str(manifest), *args]


def _checked(command: Sequence[str], cwd: Path) -> None:
    subprocess.run(command, cwd=cwd, check=True, capture_output=True)


def floor_sequential(tarballs: Sequence[Path], scratch: Path) -> float:
    """One ``sha256sum`` over all tarballs, then ``tar -xzf`` of each, one after the other."""
    scratch.mkdir(parents=True)
    try:
        settle()
        start = time.perf_counter()
        _checked(["sha256sum", *map(str, tarballs)], scratch)
        for tarball in tarballs:
            _checked(["tar", "-xzf", str(tarball)], scratch)
        return time.perf_counter() - start
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def floor_parallel(
    tarballs: Sequence[Path], scratch: Path, jobs: int, *, urls: Sequence[str] = ()
) -> float:
    """``sha256sum`` then ``tar -xzf`` of each tarball, ``jobs`` tarballs at a time; with
    ``urls`` (one per tarball), each is first downloaded with ``curl`` (the cold floor)."""
    scratch.mkdir(parents=True)
    sources = dict(zip(tarballs, urls, strict=True)) if urls else {}

    def one(tarball: Path) -> None:
        if sources:
            local = scratch / f"{tarball.name}.download"
            _checked(["curl", "-sSf", "-o", str(local), sources[tarball]], scratch)
            tarball = local
        _checked(["sha256sum", str(tarball)], scratch)
        _checked(["tar", "-xzf", str(tarball)], scratch)

    try:
        settle()
        start = time.perf_counter()
        with ThreadPoolExecutor(jobs) as pool:
            list(pool.map(one, tarballs))
        return time.perf_counter() - start
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@attrs.frozen(kw_only=True)
class Traffic:
    """What nginx logged for one step."""

    requests: int
    tarball_downloads: int  # GET requests for tarballs
    tarball_heads: int  # HEAD requests for tarballs (their size, no body)
    body_bytes: int  # what went over the wire, headers excluded
    statuses: dict[int, int]


def traffic(entries: Iterable[dict[str, Any]]) -> Traffic:
    requests = downloads = heads = body = 0
    statuses: dict[int, int] = {}
    for entry in entries:
        requests += 1
        sent = int(entry["body_bytes_sent"])
        body += sent
        statuses[entry["status"]] = statuses.get(entry["status"], 0) + 1
        if (entry["uri"] or "").endswith(".spack"):
            if entry["method"] == "HEAD":
                heads += 1
            else:
                downloads += 1
    return Traffic(
        requests=requests,
        tarball_downloads=downloads,
        tarball_heads=heads,
        body_bytes=body,
        statuses=dict(sorted(statuses.items())),
    )


def tree_size(root: Path) -> tuple[int, int]:
    """(files, bytes) of regular files under ``root``."""
    files = size = 0
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            files += 1
            size += path.stat().st_size
    return files, size
