"""HTTP(S) mirrors, with requests: pooled sessions, timeouts, retries, resumed downloads."""

from __future__ import annotations

from pathlib import Path

from reconcile.transport.base import ProgressCallback, Transport


class HttpTransport(Transport):
    def __init__(self, *, base_url: str, mirror_name: str | None = None) -> None:
        raise NotImplementedError

    def read_bytes(self, url: str) -> bytes:
        raise NotImplementedError

    def download(self, url: str, dest: Path, *, progress: ProgressCallback | None = None) -> int:
        raise NotImplementedError

    def size(self, url: str) -> int:
        raise NotImplementedError
