"""S3 mirrors, with boto3 (the optional extra ``reconcile[s3]``)."""

from __future__ import annotations

from pathlib import Path

from reconcile.transport.base import ProgressCallback, Transport


class S3Transport(Transport):
    def __init__(self, *, endpoint_url: str | None = None, profile: str | None = None) -> None:
        raise NotImplementedError

    def read_bytes(self, url: str) -> bytes:
        raise NotImplementedError

    def download(self, url: str, dest: Path, *, progress: ProgressCallback | None = None) -> int:
        raise NotImplementedError

    def size(self, url: str) -> int:
        raise NotImplementedError
