"""What the executor tells the outside while it works (progress displays, CI logs).

The executor calls these from worker threads; implementations must be thread-safe.
"""

from __future__ import annotations

from typing import Literal, Protocol

Source = Literal["cache", "mirror"]


class Reporter(Protocol):
    def download_started(self, label: str, total: int, *, source: str) -> None:
        """A tarball is being fetched (``source`` is a mirror name, or "cache")."""

    def download_progress(self, label: str, received: int) -> None:
        """``received`` more bytes of ``label``'s tarball arrived."""

    def download_finished(self, label: str, *, source: Source, mirror: str) -> None: ...

    def event(self, text: str) -> None:
        """One line worth logging: staged, installed, a mirror skipped, a blob evicted."""


class SilentReporter:
    """Reports nothing (``--json`` output, library use)."""

    def download_started(self, label: str, total: int, *, source: str) -> None:
        return None

    def download_progress(self, label: str, received: int) -> None:
        return None

    def download_finished(self, label: str, *, source: Source, mirror: str) -> None:
        return None

    def event(self, text: str) -> None:
        return None
