"""``MirrorStore`` for ``s3://bucket/prefix`` mirrors, on the S3 transport's boto3 client.

A PUT replaces an object as a whole, so readers see the old object or the new one; files are
uploaded with boto3's managed transfer (multipart for large tarballs, completed only when every
part arrived). S3 has no symbolic links: a link is a server-side copy of the object it names.
S3 has no locks either: two runs publishing into one bucket prefix at the same time can lose
index entries, so serialize them (docs/mirrors.md).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from reconcile.errors import NotFoundError
from reconcile.redact import mask_credentials
from reconcile.transport.bounds import index_cap
from reconcile.transport.s3 import S3Location, S3Transport, parse_s3_url
from reconcile.transport.store import MirrorStore, check_key, copy_hashed, link_source


class S3MirrorStore(MirrorStore):
    def __init__(self, url: str, transport: S3Transport) -> None:
        base = parse_s3_url(url.rstrip("/") + "/x")  # checks the bucket; the key is ours
        self.bucket = base.bucket
        self.prefix = base.key[: -len("x")]  # "" or "some/prefix/"
        self.transport = transport
        self.url = mask_credentials(url)

    def _where(self, key: str) -> S3Location:
        check_key(key)
        full = self.prefix + key
        return S3Location(bucket=self.bucket, key=full, url=f"s3://{self.bucket}/{full}")

    def object_url(self, key: str) -> str:
        """``s3://bucket/prefix/key``: what the transport reads ``key`` at."""
        return self._where(key).url

    def put_bytes(self, key: str, data: bytes) -> None:
        where = self._where(key)
        with self.transport.translated(where):
            self.transport.client(where).put_object(Bucket=where.bucket, Key=where.key, Body=data)

    def put_file(self, key: str, source: Path) -> str:
        """Uploads a private snapshot of ``source``: the bytes hashed are the bytes sent."""
        where = self._where(key)
        with tempfile.TemporaryDirectory(prefix="reconcile-put-") as private:
            snapshot = Path(private) / "object"
            with source.open("rb") as reader, snapshot.open("wb") as writer:
                checksum = copy_hashed(reader, writer)
            with self.transport.translated(where):
                self.transport.client(where).upload_file(str(snapshot), where.bucket, where.key)
        return checksum

    def read_bytes(self, key: str) -> bytes | None:
        try:
            # the mirror reconcile writes: its own index is read back, so the index's cap
            return self.transport.read_bytes(
                self._where(key).url, cap=index_cap(self.transport.limits)
            )
        except NotFoundError:
            return None

    def exists(self, key: str) -> bool:
        try:
            self.transport.size(self._where(key).url)
        except NotFoundError:
            return False
        return True

    def delete(self, key: str) -> None:
        where = self._where(key)
        with self.transport.translated(where):
            self.transport.client(where).delete_object(Bucket=where.bucket, Key=where.key)

    def list(self, prefix: str) -> list[str]:
        folder = self.prefix + (prefix.rstrip("/") + "/" if prefix else "")
        where = S3Location(bucket=self.bucket, key=folder, url=f"s3://{self.bucket}/{folder}")
        keys: list[str] = []
        with self.transport.translated(where):
            pages = self.transport.client(where).get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=self.bucket, Prefix=folder):
                keys += [item["Key"][len(self.prefix) :] for item in page.get("Contents", [])]
        return sorted(keys)

    def sizes(self, prefix: str = "") -> dict[str, int]:
        """Every key under the folder ``prefix`` with its size in bytes, from the listing
        alone (ListObjectsV2): nothing is downloaded (drift compares these with the index)."""
        folder = self.prefix + (prefix.rstrip("/") + "/" if prefix else "")
        where = S3Location(bucket=self.bucket, key=folder, url=f"s3://{self.bucket}/{folder}")
        sizes: dict[str, int] = {}
        with self.transport.translated(where):
            pages = self.transport.client(where).get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=self.bucket, Prefix=folder):
                for item in page.get("Contents", []):
                    sizes[item["Key"][len(self.prefix) :]] = int(item["Size"])
        return sizes

    def read_head(self, key: str, length: int) -> bytes:
        """The first ``length`` bytes of ``key`` (one ranged GET), to tell what a blob is
        without downloading it."""
        where = self._where(key)
        with self.transport.translated(where):
            response = self.transport.client(where).get_object(
                Bucket=where.bucket, Key=where.key, Range=f"bytes=0-{length - 1}"
            )
            try:
                data: bytes = response["Body"].read(length)
            finally:
                response["Body"].close()
        return data

    def link(self, key: str, target: str) -> None:
        source = self._where(link_source(key, target))
        where = self._where(key)
        with self.transport.translated(where):
            self.transport.client(where).copy_object(
                Bucket=where.bucket,
                Key=where.key,
                CopySource={"Bucket": source.bucket, "Key": source.key},
            )
