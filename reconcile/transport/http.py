"""HTTP(S) mirrors, with requests: pooled sessions, timeouts, retries, resumed downloads.

One transport serves one mirror: one ``requests.Session`` (so connections are reused), the
mirror's credentials, and a byte counter. The session ignores requests' own environment
handling (``trust_env``) because that would send ``~/.netrc`` credentials to any host,
plain http and redirect targets included; proxies and the CA bundle are read here instead.

Failures are retried with capped, jittered exponential backoff: connection errors, timeouts,
5xx, 408 and 429 (``Retry-After`` honoured up to the cap). A download cut short resumes with
``Range`` + ``If-Range`` from where it stopped, so a changed file is never spliced onto the
start of the old one. After the last attempt, a mirror that never answered raises
``MirrorUnreachableError``; one that answered badly raises ``TransportError``.
"""

from __future__ import annotations

import contextlib
import io
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO, NoReturn

import attrs
import requests
import requests.adapters
import requests.utils
import urllib3.exceptions

from reconcile import __version__
from reconcile.errors import TransportError
from reconcile.limits import DEFAULT_LIMITS, Limits
from reconcile.redact import mask_credentials
from reconcile.reprs import fields_repr
from reconcile.transport.base import ProgressCallback, Transport
from reconcile.transport.bounds import ByteCap, Cap, RateWatchdog
from reconcile.transport.credentials import (
    Credentials,
    origin_of,
    resolve_credentials,
    strip_credentials,
)
from reconcile.transport.http_errors import answer_error, network_error, status_error
from reconcile.transport.http_failures import NetworkFailure, classify
from reconcile.transport.http_options import READ_TIMEOUT_VAR, options_from_environment
from reconcile.transport.retry import RetryPolicy, is_retryable_status, parse_retry_after
from reconcile.transport.validators import Validators, load_valid_copy, save_copy

CHUNK = 1 << 20
USER_AGENT = f"reconcile/{__version__}"
# Error pages are read (so the connection can be reused, and their bytes counted) up to this.
ERROR_BODY_LIMIT = 64 << 10
# Answers to HEAD that mean "ask differently", not "no such file".
HEAD_REFUSED = frozenset({403, 405, 501})
# What reading a body can raise: requests' wrappers (iter_content), urllib3's own (read1),
# and socket errors that slip through both.
NETWORK_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


@attrs.frozen(kw_only=True)
class _Bounds:
    """What one GET may cost: bytes (``cap``), and rate (``watchdog``); ``prefix``: the
    first bytes expected, anything else ends the read early."""

    __repr__ = fields_repr

    cap: ByteCap
    watchdog: RateWatchdog
    prefix: bytes = b""


@attrs.frozen(kw_only=True)
class _Fetched:
    __repr__ = fields_repr

    status: int  # 200 (the body went to the sink) or 304 (not modified)
    validators: Validators
    written: int


@attrs.define
class _Transfer:
    """Where a GET into a sink stands between attempts."""

    __repr__ = fields_repr

    written: int = 0
    total: int | None = None  # the whole file's size, once a response said it
    validators: Validators = attrs.Factory(Validators)
    failures: int = 0
    head: bytes = b""  # the first bytes, while they are compared with an expected prefix
    # ``written`` bytes came from an earlier run: neither the size nor the validators of
    # what they are a part of are known, so the first range is asked without ``If-Range``
    # (the caller hashes the whole file)
    carried: bool = False

    def restart(self, sink: BinaryIO) -> None:
        sink.seek(0)
        sink.truncate()
        self.written = 0
        self.total = None
        self.validators = Validators()
        self.head = b""
        self.carried = False

    def resumable(self) -> bool:
        if self.written > 0 and self.carried:
            return True
        return (
            self.written > 0 and self.total is not None and self.validators.if_range() is not None
        )


def _body_pieces(response: requests.Response) -> Iterator[bytes]:
    """The body as it arrives. urllib3 2's ``read1`` hands over each piece as soon as it is
    received; ``iter_content`` would hold up to a whole chunk back, and lose it when the
    connection is cut, so a resumed download would fetch those bytes twice."""
    read1 = getattr(response.raw, "read1", None)
    if read1 is None:  # urllib3 1.x
        yield from response.iter_content(64 << 10)
        return
    while piece := read1(CHUNK, decode_content=True):
        yield piece


def _validators_of(response: requests.Response) -> Validators:
    return Validators(
        etag=response.headers.get("ETag"), last_modified=response.headers.get("Last-Modified")
    )


def _content_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length", "")
    return int(value) if value.isdigit() else None


def _content_range(response: requests.Response) -> tuple[int, int, int | None] | None:
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
    if match is None:
        return None
    total = match.group(3)
    return int(match.group(1)), int(match.group(2)), None if total == "*" else int(total)


class HttpTransport(Transport):
    def __init__(
        self,
        *,
        base_url: str,
        mirror_name: str | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        attempts: int = 4,
        backoff_base: float = 0.5,
        backoff_cap: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        environ: Mapping[str, str] | None = None,
        limits: Limits = DEFAULT_LIMITS,
        rate_window: float | None = None,
    ) -> None:
        scheme = urllib.parse.urlsplit(base_url).scheme
        if scheme not in ("http", "https"):
            raise TransportError(
                f"not an http(s) URL: {mask_credentials(base_url)}",
                hint="HTTP mirrors are written http://host/path or https://host/path",
            )
        self._base_url = base_url
        self._mirror_name = mirror_name
        self._options = options_from_environment(
            connect_timeout=connect_timeout, read_timeout=read_timeout, environ=environ
        )
        self._retry = RetryPolicy(
            attempts=attempts, backoff_base=backoff_base, backoff_cap=backoff_cap
        )
        self._sleep = sleep
        self._credentials = resolve_credentials(base_url, mirror_name, environ=environ)
        self._origin = origin_of(base_url)
        self._session = requests.Session()
        self._session.trust_env = False
        self._session.headers["User-Agent"] = USER_AGENT
        # urllib3 must not retry on its own: the policy here owns the retry budget
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=8, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._count_lock = threading.Lock()
        self.bytes_received = 0
        self.limits = limits
        self._rate_window = rate_window if rate_window is not None else self._options.rate_window

    def __repr__(self) -> str:
        return f"HttpTransport({mask_credentials(self._base_url)!r}, mirror={self._mirror_name!r})"

    # --- the Transport interface -------------------------------------------------------

    def read_bytes(self, url: str, *, cap: Cap | None = None, expect_prefix: bytes = b"") -> bytes:
        sink = io.BytesIO()
        self._fetch(url, sink, bounds=self._bounds(url, self.read_cap(cap), expect_prefix))
        return sink.getvalue()

    def download(
        self,
        url: str,
        dest: Path,
        *,
        progress: ProgressCallback | None = None,
        cap: Cap | None = None,
    ) -> int:
        bounds = self._bounds(url, cap)
        try:
            with dest.open("wb") as sink:
                return self._fetch(url, sink, progress=progress, bounds=bounds).written
        except OSError as exc:
            raise _cannot_write(dest, url, exc) from None

    def download_into(
        self,
        url: str,
        sink: BinaryIO,
        *,
        offset: int = 0,
        progress: ProgressCallback | None = None,
        cap: Cap | None = None,
    ) -> int:
        bounds = self._bounds(url, cap)
        try:
            sink.seek(offset)
            sink.truncate()
            fetched = self._fetch(url, sink, progress=progress, bounds=bounds, offset=offset)
            sink.flush()
        except OSError as exc:
            raise _cannot_write(Path(str(sink.name)), url, exc) from None
        return fetched.written

    def size(self, url: str) -> int:
        response = self._request("HEAD", url)
        length = _content_length(response)
        # a HEAD answer has no body: keep the connection, unless the server refused (it may
        # be closing the connection after an error)
        _finish(response, body_read=response.status_code == 200)
        if response.status_code == 200 and length is not None:
            return length
        if response.status_code not in HEAD_REFUSED and response.status_code != 200:
            self._raise_for_status(url, response)
        return self._size_from_range(url)

    def read_revalidated(self, url: str, local_copy: Path, *, cap: Cap | None = None) -> bytes:
        # what the copy's record keeps: no userinfo, query-string values masked
        clean_url = mask_credentials(strip_credentials(url))
        stored = load_valid_copy(local_copy, clean_url)
        conditional = stored[0].validators.conditional_headers() if stored else {}
        sink = io.BytesIO()
        bounds = self._bounds(url, self.read_cap(cap))
        fetched = self._fetch(url, sink, headers=conditional, bounds=bounds)
        if fetched.status == 304 and stored is not None:
            return stored[1]
        data = sink.getvalue()
        try:
            save_copy(local_copy, clean_url, data, fetched.validators)
        except OSError as exc:
            raise TransportError(
                f"cannot keep the copy of {mask_credentials(url)} in {local_copy}: {exc.strerror}",
                hint="check that the cache folder is writable and has free space",
            ) from None
        return data

    def close(self) -> None:
        self._session.close()

    def _bounds(self, url: str, cap: Cap | None, prefix: bytes = b"") -> _Bounds:
        where = self._where(url)
        watchdog = RateWatchdog(where, self.limits.min_transfer_rate, window=self._rate_window)
        return _Bounds(cap=ByteCap(where, cap), watchdog=watchdog, prefix=prefix)

    # --- one request, and the retry loop around it ------------------------------------

    def _credentials_for(self, url: str) -> Credentials | None:
        """The credentials for ``url``: its own userinfo, else the mirror's, and only ever
        to the mirror's origin (never to another host or over another scheme)."""
        if urllib.parse.urlsplit(url).username is not None:
            return resolve_credentials(url, None, environ={})
        if origin_of(url) == self._origin:
            return self._credentials
        return None

    def _send(
        self, method: str, url: str, headers: Mapping[str, str], *, stream: bool
    ) -> requests.Response:
        target = strip_credentials(url)
        credentials = self._credentials_for(url)
        response = self._session.request(
            method,
            target,
            headers=dict(headers),
            auth=credentials.auth() if credentials is not None else None,
            stream=stream,
            allow_redirects=True,
            timeout=(self._options.connect_timeout, self._options.read_timeout),
            verify=self._options.verify,
            proxies=requests.utils.get_environ_proxies(target, no_proxy=None),
        )
        for redirect in response.history:  # requests read their bodies: count them too
            with contextlib.suppress(RuntimeError, requests.RequestException):
                self._count(len(redirect.content or b""))
        return response

    def _request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        transfer: _Transfer | None = None,
    ) -> requests.Response:
        """Send until the answer is not a "try again"; the caller checks the status.

        Failures count against ``transfer`` when given, so that a download shares one
        budget between its first request and its resumptions.
        """
        state = transfer if transfer is not None else _Transfer()
        while True:
            try:
                response = self._send(method, url, headers or {}, stream=True)
            except requests.RequestException as exc:
                failure = classify(exc, answered=False)
                state.failures += 1
                if not failure.retryable or state.failures >= self._retry.attempts:
                    raise self._network_error(url, failure, state.failures) from None
                self._sleep(self._retry.delay(state.failures))
                continue
            if not is_retryable_status(response.status_code):
                return response
            state.failures += 1
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            self._drain(response)
            if state.failures >= self._retry.attempts:
                raise status_error(self._where(url), response, state.failures)
            self._sleep(self._retry.delay(state.failures, retry_after=retry_after))

    def _fetch(
        self,
        url: str,
        sink: BinaryIO,
        *,
        headers: Mapping[str, str] | None = None,
        progress: ProgressCallback | None = None,
        bounds: _Bounds,
        offset: int = 0,
    ) -> _Fetched:
        """GET ``url`` into ``sink``, resuming a cut transfer where the server allows it
        (and, from ``offset``, one an earlier run began); ``bounds`` stop it early
        (``TransportError``, never retried)."""
        transfer = _Transfer(written=offset, carried=offset > 0)
        while True:
            request_headers = {"Accept-Encoding": "identity"}
            resuming = transfer.resumable()
            if resuming:
                request_headers["Range"] = f"bytes={transfer.written}-"
                if not transfer.carried:
                    request_headers["If-Range"] = transfer.validators.if_range() or ""
            else:
                if transfer.written:
                    transfer.restart(sink)  # cut, and no safe way to resume: start over
                request_headers.update(headers or {})
            response = self._request("GET", url, request_headers, transfer=transfer)
            status = response.status_code
            if status == 304 and not resuming and headers:
                self._drain(response)
                return _Fetched(status=304, validators=_validators_of(response), written=0)
            if status == 206 and resuming:
                if not self._accepts_range(response, transfer):
                    self._drain(response)
                    self._count_failure(url, transfer, "the server sent a different range")
                    transfer.restart(sink)
                    continue
                try:
                    bounds.cap.check_announced(transfer.total)
                except TransportError:
                    response.close()
                    raise
            elif status == 200:
                if transfer.written:
                    transfer.restart(sink)  # the file changed, or ranges are not supported
                transfer.total = _content_length(response)
                transfer.validators = _validators_of(response)
                try:
                    bounds.cap.check_announced(transfer.total)
                except TransportError:
                    response.close()  # do not read a body announced too large
                    raise
            elif status == 416 and resuming:
                self._drain(response)
                self._count_failure(url, transfer, "the server refused the range")
                transfer.restart(sink)
                continue
            else:
                self._raise_for_status(url, response)
            if self._receive(url, response, sink, transfer, progress, bounds):
                return _Fetched(
                    status=200, validators=transfer.validators, written=transfer.written
                )

    def _accepts_range(self, response: requests.Response, transfer: _Transfer) -> bool:
        content_range = _content_range(response)
        if content_range is None:
            return False
        start, _end, total = content_range
        if transfer.carried and start == transfer.written:
            transfer.total = total  # now known, with validators for any later resumption
            transfer.validators = _validators_of(response)
            transfer.carried = False
            return True
        return start == transfer.written and total == transfer.total

    def _receive(
        self,
        url: str,
        response: requests.Response,
        sink: BinaryIO,
        transfer: _Transfer,
        progress: ProgressCallback | None,
        bounds: _Bounds,
    ) -> bool:
        """Stream the body into ``sink``; True when the whole file is there (or its first
        bytes are not the expected prefix), False after a cut that may be resumed
        (``TransportError`` when the budget is spent or a bound is reached)."""
        pieces = _body_pieces(response)
        reached_end = False
        try:
            while True:
                try:
                    piece = next(pieces, b"")
                except NETWORK_ERRORS as exc:
                    failure = classify(exc, answered=True)
                    if not failure.retryable:
                        raise self._network_error(url, failure, transfer.failures + 1) from None
                    self._count_failure(url, transfer, failure.description)
                    return False
                if not piece:
                    reached_end = True
                    break
                bounds.cap.check(transfer.written + len(piece))
                sink.write(piece)
                transfer.written += len(piece)
                self._count(len(piece))
                if progress is not None:
                    progress(len(piece))
                bounds.watchdog.received(len(piece))
                if _wrong_prefix(transfer, piece, bounds.prefix):
                    return True  # the caller's own check refuses what was read
        finally:
            _finish(response, body_read=reached_end)
        if transfer.total is not None and transfer.written != transfer.total:
            self._count_failure(
                url,
                transfer,
                f"the body ended after {transfer.written} of {transfer.total} bytes",
            )
            return False
        return True

    def _count_failure(self, url: str, transfer: _Transfer, what: str) -> None:
        """One more failed attempt of a transfer; wait, or give up when none are left."""
        transfer.failures += 1
        if transfer.failures >= self._retry.attempts:
            size = f" of {transfer.total}" if transfer.total is not None else ""
            raise TransportError(
                f"{self._where(url)}: {what}; gave up after {transfer.failures} attempts "
                f"with {transfer.written}{size} bytes received",
                hint=f"the connection to the mirror is unreliable; try again later, or "
                f"raise {READ_TIMEOUT_VAR} if it is slow",
            )
        self._sleep(self._retry.delay(transfer.failures))

    def _size_from_range(self, url: str) -> int:
        """The size from the first byte's ``Content-Range``, for servers that refuse HEAD."""
        response = self._request("GET", url, {"Range": "bytes=0-0", "Accept-Encoding": "identity"})
        status = response.status_code
        content_range = _content_range(response)
        length = _content_length(response)
        if status == 206 and content_range is not None and content_range[2] is not None:
            self._drain(response)
            return content_range[2]
        if status == 416 and response.headers.get("Content-Range", "").strip() == "bytes */0":
            self._drain(response)
            return 0
        if status == 200 and length is not None:
            response.close()  # the server ignored the range: do not read the whole file
            return length
        if status in (200, 206):
            response.close()
            raise TransportError(
                f"{self._where(url)}: the server says neither the size nor the range it sent",
                hint="the mirror's web server answers without Content-Length or "
                "Content-Range; serve the files as static files",
            )
        self._raise_for_status(url, response)

    # --- bookkeeping and errors -------------------------------------------------------

    def _count(self, received: int) -> None:
        with self._count_lock:
            self.bytes_received += received

    def _drain(self, response: requests.Response) -> None:
        """Read a small body (an error page, one byte) so that the connection can be
        reused and its bytes are counted; a large one is abandoned instead."""
        try:
            remaining = ERROR_BODY_LIMIT
            for chunk in response.iter_content(8192):
                self._count(len(chunk))
                remaining -= len(chunk)
                if remaining <= 0:
                    break
        except requests.RequestException:
            pass  # the status is what matters
        finally:
            response.close()

    def _where(self, url: str) -> str:
        shown = mask_credentials(url)
        return f"mirror '{self._mirror_name}': {shown}" if self._mirror_name else shown

    def _raise_for_status(self, url: str, response: requests.Response) -> NoReturn:
        """Raise the error for a final, non-success answer."""
        self._drain(response)
        raise answer_error(
            self._where(url),
            url,
            response,
            credentials=self._credentials_for(url),
            mirror_name=self._mirror_name,
        )

    def _network_error(self, url: str, failure: NetworkFailure, attempts: int) -> TransportError:
        return network_error(self._where(url), failure, attempts, self._options)


def _wrong_prefix(transfer: _Transfer, piece: bytes, prefix: bytes) -> bool:
    """Whether the body read so far already differs from ``prefix``."""
    if len(transfer.head) >= len(prefix):
        return False
    transfer.head += piece[: len(prefix) - len(transfer.head)]
    return not prefix.startswith(transfer.head)


def _cannot_write(dest: Path, url: str, exc: OSError) -> TransportError:
    return TransportError(
        f"cannot write {dest} while downloading {mask_credentials(url)}: {exc.strerror}",
        hint="check that the folder exists, is writable and has free space",
    )


def _finish(response: requests.Response, *, body_read: bool) -> None:
    """Done with a response: a connection whose body was read to the end goes back to the
    pool for the next request (``Response.close`` would drop it, since the body was read
    from the raw stream); any other is closed."""
    if body_read:
        response.raw.release_conn()
    else:
        response.close()
