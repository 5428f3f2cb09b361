"""Progress output: a live display on a terminal, one plain line per event otherwise."""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TransferSpeedColumn,
)
from rich.table import Column

from reconcile.apply.events import Reporter, Source


def fetched_from(source: Source, mirror: str) -> str:
    """Where fetched bytes came from: a cache root, a mirror by name, or (for a source
    archive) its own upstream URL, which is not a mirror."""
    if source == "cache":
        return "from a cache root"
    if "://" in mirror:
        return f"from {mirror}"
    return f"from mirror '{mirror}'"


class PlainReporter:
    """One line per event, for CI logs: no carriage returns, no colours."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout
        self._lock = threading.Lock()

    def _line(self, text: str) -> None:
        with self._lock:
            print(text, file=self._stream, flush=True)

    def download_started(self, label: str, total: int, *, source: str) -> None:
        if source == "cache":
            where = "the cache"
        elif "://" in source:  # a source archive's own (masked) URL
            where = source
        else:
            where = f"mirror '{source}'"
        self._line(f"fetching {label} ({total} bytes) from {where}")

    def download_progress(self, label: str, received: int) -> None:
        return None

    def download_finished(self, label: str, *, source: Source, mirror: str) -> None:
        self._line(f"fetched {label} {fetched_from(source, mirror)} (sha256 verified)")

    def event(self, text: str) -> None:
        self._line(text)


class LiveReporter:
    """A rich progress display: a bar per download, bytes and rate, and an overall bar."""

    def __init__(self, total_bytes: int, console: Console | None = None) -> None:
        self._console = console or Console(stderr=False)
        self._progress = Progress(
            # Long labels are cut with an ellipsis rather than wrapped onto a second line.
            TextColumn(
                "{task.description}",
                table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1),
            ),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            console=self._console,
            transient=False,
        )
        self._overall = self._progress.add_task("total", total=total_bytes or None)
        self._tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> LiveReporter:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    def download_started(self, label: str, total: int, *, source: str) -> None:
        with self._lock:
            self._tasks[label] = self._progress.add_task(f"{label} ({source})", total=total)

    def download_progress(self, label: str, received: int) -> None:
        task = self._tasks.get(label)
        if task is not None:
            self._progress.advance(task, received)
        self._progress.advance(self._overall, received)

    def download_finished(self, label: str, *, source: Source, mirror: str) -> None:
        task = self._tasks.get(label)
        if task is not None:
            self._progress.update(task, completed=self._progress.tasks[task].total, visible=False)
        self._say(f"fetched {label} {fetched_from(source, mirror)}")

    def event(self, text: str) -> None:
        self._say(text)

    def _say(self, text: str) -> None:
        # print, not log: no timestamp or source location, and one line each, cut to the width.
        self._progress.console.print(
            text, no_wrap=True, overflow="ellipsis", crop=True, markup=False, highlight=False
        )


def reporter_for(*, interactive: bool, total_bytes: int) -> Reporter:
    return LiveReporter(total_bytes) if interactive else PlainReporter()
