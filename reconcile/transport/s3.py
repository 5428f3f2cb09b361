"""S3 mirrors, with boto3 (the optional extra ``reconcile[s3]``).

One transport per mirror: one boto3 client (created on first use, so a missing profile is
reported with the URL being read), standard-mode retries for requests, and resumption of a
broken body stream with ``Range`` + ``If-Match`` so a resumed download cannot splice two
versions of an object together.
"""

from __future__ import annotations

import io
import ipaddress
import os
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import attrs

from reconcile.errors import ReconcileError, TransportError
from reconcile.redact import mask_credentials
from reconcile.reprs import fields_repr
from reconcile.transport.base import ProgressCallback, Transport
from reconcile.transport.bounds import ByteCap, Cap
from reconcile.transport.s3_errors import ENDPOINT_HINT, bucket_missing, translate
from reconcile.transport.validators import Validators, load_valid_copy, save_copy

CHUNK = 1 << 20
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
CONNECT_TIMEOUT_ENV = "RECONCILE_S3_CONNECT_TIMEOUT"
READ_TIMEOUT_ENV = "RECONCILE_S3_READ_TIMEOUT"


@attrs.frozen(kw_only=True)
class S3Location:
    __repr__ = fields_repr

    bucket: str
    key: str
    url: str  # as given, credentials masked: what messages show


def parse_s3_url(url: str) -> S3Location:
    """``s3://bucket/some/key`` -> bucket and key (the key kept verbatim, ``?`` and ``#`` too)."""
    shown = mask_credentials(url)
    scheme, sep, rest = url.partition("://")
    bucket, _, key = rest.partition("/")
    if scheme.lower() != "s3" or not sep or not bucket or not key:
        raise TransportError(
            f"not an S3 object URL: {shown}", hint="expected s3://bucket/path/to/object"
        )
    return S3Location(bucket=bucket, key=key, url=shown)


def timeout_setting(env_name: str, explicit: float | None, default: float) -> float:
    """Seconds: the keyword argument if given, else the environment variable, else default."""
    if explicit is not None:
        return explicit
    raw = os.environ.get(env_name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ReconcileError(
            f"{env_name}={raw!r} is not a positive number of seconds",
            hint=f"set {env_name} to a number such as 30, or unset it (default {default:g})",
        )
    return value


def _refuse_plain_http(endpoint_url: str | None) -> None:
    """Signed requests carry the access key id: over plain http only to this machine
    (a local MinIO or test server), never across a network."""
    if endpoint_url is None:
        return
    parts = urllib.parse.urlsplit(endpoint_url)
    if parts.scheme != "http":
        return
    host = parts.hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise TransportError(
            f"refusing to send signed S3 requests over plain http to {host} "
            f"(endpoint_url {mask_credentials(endpoint_url)})",
            hint="use an https:// endpoint_url; plain http is accepted only for a loopback "
            "address such as 127.0.0.1",
            reference="credentials-over-http",
        )


class S3Transport(Transport):
    def __init__(
        self,
        *,
        endpoint_url: str | None = None,
        profile: str | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        max_attempts: int = 3,
        resume_attempts: int = 3,
    ) -> None:
        try:
            import boto3  # noqa: F401 - only checks that the extra is installed
            from botocore.config import Config
        except ImportError as exc:
            raise ReconcileError(
                "s3:// mirrors need boto3, which is not installed",
                hint="pip install 'reconcile[s3]'",
            ) from exc
        _refuse_plain_http(endpoint_url)
        self.endpoint_url = endpoint_url
        self.profile = profile
        self.resume_attempts = resume_attempts
        self.bytes_received = 0
        self._config = Config(
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            connect_timeout=timeout_setting(
                CONNECT_TIMEOUT_ENV, connect_timeout, DEFAULT_CONNECT_TIMEOUT
            ),
            read_timeout=timeout_setting(READ_TIMEOUT_ENV, read_timeout, DEFAULT_READ_TIMEOUT),
        )
        self._client: Any = None
        self._lock = threading.Lock()

    # -- the Transport interface ------------------------------------------------------------

    def read_bytes(self, url: str, *, cap: Cap | None = None, expect_prefix: bytes = b"") -> bytes:
        # expect_prefix only saves bytes; the cap alone bounds an S3 read.
        where = parse_s3_url(url)
        buffer = io.BytesIO()
        with self._translated(where):
            response = self._get(where)
            bound = ByteCap(self._where(where), self.read_cap(cap))
            self._transfer(where, response, buffer.write, None, bound)
        return buffer.getvalue()

    def download(
        self,
        url: str,
        dest: Path,
        *,
        progress: ProgressCallback | None = None,
        cap: Cap | None = None,
    ) -> int:
        where = parse_s3_url(url)
        with self._translated(where):
            response = self._get(where)
            try:
                target = dest.open("wb")
            except OSError as exc:
                response["Body"].close()
                raise _cannot_write(dest, exc) from exc
            with target:
                bound = ByteCap(self._where(where), cap)
                return self._transfer(where, response, _writer_to(target, dest), progress, bound)

    def download_into(
        self,
        url: str,
        sink: BinaryIO,
        *,
        offset: int = 0,
        progress: ProgressCallback | None = None,
        cap: Cap | None = None,
    ) -> int:
        """Starts over: without the ETag of the interrupted run's object, a range could
        splice two versions (the whole-file hash would catch it, at the cost of a refetch)."""
        del offset
        where = parse_s3_url(url)
        sink.seek(0)
        sink.truncate()
        with self._translated(where):
            response = self._get(where)
            bound = ByteCap(self._where(where), cap)
            writer = _writer_to(sink, Path(str(sink.name)))
            size = self._transfer(where, response, writer, progress, bound)
        sink.flush()
        return size

    def size(self, url: str) -> int:
        where = parse_s3_url(url)
        with self._translated(where):
            client = self._client_for(where)
            try:
                response = client.head_object(Bucket=where.bucket, Key=where.key)
            except Exception as exc:
                # HEAD answers carry no error code, so ask whether the bucket itself is there
                if _status(exc) == 404 and not _bucket_exists(client, where.bucket):
                    raise bucket_missing(self._where(where), "HTTP 404") from exc
                raise
            return int(response["ContentLength"])

    def read_revalidated(self, url: str, local_copy: Path, *, cap: Cap | None = None) -> bytes:
        """A conditional GET (``If-None-Match``) against the ETag recorded beside
        ``local_copy`` (see ``validators``): on 304 the local copy is returned; otherwise the
        copy and its record are replaced with what was read."""
        where = parse_s3_url(url)
        stored = load_valid_copy(local_copy, where.url)
        etag = stored[0].validators.etag if stored is not None else None
        with self._translated(where):
            try:
                response = self._get(where, **({"IfNoneMatch": etag} if etag else {}))
            except Exception as exc:
                if stored is not None and _status(exc) == 304:
                    return stored[1]
                raise
            buffer = io.BytesIO()
            bound = ByteCap(self._where(where), self.read_cap(cap))
            self._transfer(where, response, buffer.write, None, bound)
        data = buffer.getvalue()
        fresh = Validators(etag=str(response.get("ETag") or "") or None)
        try:
            save_copy(local_copy, where.url, data, fresh)
        except OSError as exc:
            raise _cannot_write(local_copy, exc) from exc
        return data

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- for the write seam (transport/s3_store.py) -----------------------------------------

    def client(self, where: S3Location) -> Any:
        """The boto3 client of this mirror (made on first use)."""
        return self._client_for(where)

    def translated(self, where: S3Location) -> AbstractContextManager[None]:
        """boto3 failures inside the block become reconcile's transport errors."""
        return self._translated(where)

    # -- helpers ----------------------------------------------------------------------------

    def _client_for(self, where: S3Location) -> Any:
        with self._lock:
            if self._client is None:
                import boto3

                session = boto3.session.Session(profile_name=self.profile)
                try:
                    self._client = session.client(
                        "s3", endpoint_url=self.endpoint_url, config=self._config
                    )
                except ValueError as exc:
                    raise TransportError(
                        f"{self._where(where)}: invalid endpoint_url ({exc})",
                        hint=ENDPOINT_HINT,
                    ) from exc
            return self._client

    def _get(self, where: S3Location, **conditions: str) -> Any:
        client = self._client_for(where)
        return client.get_object(Bucket=where.bucket, Key=where.key, **conditions)

    def _transfer(
        self,
        where: S3Location,
        response: Any,
        write: Callable[[bytes], object],
        progress: ProgressCallback | None,
        bound: ByteCap,
    ) -> int:
        """Stream the body to ``write``; resume with a range request when the stream breaks.
        ``bound`` refuses a body announced or found larger than its cap."""
        from botocore import exceptions as boto
        from urllib3 import exceptions as pool

        broken_stream = (
            boto.ResponseStreamingError,
            boto.ReadTimeoutError,
            boto.IncompleteReadError,
            boto.ConnectionClosedError,
            pool.ProtocolError,
            pool.ReadTimeoutError,
        )
        total = int(response["ContentLength"])
        bound.check_announced(total)
        etag = response.get("ETag")
        written = 0
        breaks = 0
        while True:
            body = response["Body"]
            try:
                for chunk in body.iter_chunks(CHUNK):
                    bound.check(written + len(chunk))
                    write(chunk)
                    written += len(chunk)
                    self._count(len(chunk))
                    if progress is not None:
                        progress(len(chunk))
                if written == total:
                    return written
                reason = f"the stream ended after {written} of {total} bytes"
            except broken_stream as exc:
                reason = str(exc)
            finally:
                body.close()
            breaks += 1
            if breaks > self.resume_attempts or not etag:
                raise TransportError(
                    f"{self._where(where)}: the transfer broke {breaks} time(s), last at byte "
                    f"{written} of {total} ({reason})",
                    hint="the connection to the S3 service is unstable; run again",
                )
            response = self._get(where, Range=f"bytes={written}-", IfMatch=etag)
            _check_resumed_at(self._where(where), response, written)

    def _count(self, n: int) -> None:
        with self._lock:
            self.bytes_received += n

    def _where(self, where: S3Location) -> str:
        endpoint = self.endpoint_url
        if endpoint is None and self._client is not None:
            endpoint = str(self._client.meta.endpoint_url)
        return f"{where.url} (endpoint {mask_credentials(endpoint)})" if endpoint else where.url

    @contextmanager
    def _translated(self, where: S3Location) -> Iterator[None]:
        try:
            yield
        except ReconcileError:
            raise
        except Exception as exc:
            error = translate(exc, where=self._where(where), profile=self.profile)
            if error is None:
                raise
            raise error from exc


def _status(exc: Exception) -> int | None:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None


def _bucket_exists(client: Any, bucket: str) -> bool:
    try:
        client.head_bucket(Bucket=bucket)
    except Exception as exc:
        return _status(exc) != 404
    return True


def _check_resumed_at(where: str, response: Any, offset: int) -> None:
    # a service that ignored Range would send the whole object again: appending it corrupts
    content_range = str(response.get("ContentRange") or "")
    if not content_range.startswith(f"bytes {offset}-"):
        response["Body"].close()
        raise TransportError(
            f"{where}: asked to resume at byte {offset}, the service answered "
            f"{content_range or 'the whole object'}",
            hint="the S3-compatible service does not honour Range requests; run again",
        )


def _writer_to(target: BinaryIO, dest: Path) -> Callable[[bytes], object]:
    def write(chunk: bytes) -> int:
        try:
            return target.write(chunk)
        except OSError as exc:
            raise _cannot_write(dest, exc) from exc

    return write


def _cannot_write(dest: Path, exc: OSError) -> ReconcileError:
    return ReconcileError(
        f"cannot write the download to {dest}: {exc.strerror or exc}",
        hint="check that the folder exists, is writable and has free space",
    )
