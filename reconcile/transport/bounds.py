"""How much a mirror may send, and how slowly: checked while the bytes arrive.

Every read from a mirror has a byte cap: the signed size + 1 for a tarball (the first byte
too many proves the file is not the signed one), ``[limits] max_metadata_bytes`` for spec
files, signatures and keys, ``max_index_bytes`` for an index, a source archive's ``size``
(else ``max_source_bytes``). A ``Content-Length`` over the cap is refused before the body is
read. On top of the read timeout (which a server sending one byte every few seconds never
trips), a transfer whose rate, averaged over the last 30 seconds, falls below
``min_transfer_rate`` is abandoned.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

import attrs

from reconcile.errors import TransportError
from reconcile.limits import RATE_WINDOW_SECONDS, Limits, describe_bytes
from reconcile.reprs import fields_repr


def too_large(
    where: str, cap: int, setting: str, *, announced: int | None = None
) -> TransportError:
    """``where`` (the URL, credentials masked) sent, or announced, more than ``cap`` bytes."""
    what = f"announces {announced:,} bytes" if announced is not None else "sent more"
    return TransportError(
        f"{where}: {what}; expected at most {describe_bytes(cap)} ({setting}), so the "
        "transfer was stopped",
        hint="the mirror serves something else than it should (a corrupt or hostile file); "
        f"if the file is genuine and this large, raise {setting}",
        reference="transfer-too-large",
    )


@attrs.frozen
class Cap:
    """At most ``bytes`` bytes, as ``setting`` says (quoted in the refusal)."""

    __repr__ = fields_repr

    bytes: int
    setting: str


def source_cap(limits: Limits, size: int | None) -> Cap:
    """A source archive: the size its ``[[source]]`` gives (one byte more is another file),
    else ``[limits] max_source_bytes`` (its sha256 decides only once the whole file is in)."""
    if size is not None:
        return Cap(size, "the size its [[source]] gives")
    return Cap(limits.max_source_bytes, "[limits] max_source_bytes")


def metadata_cap(limits: Limits) -> Cap:
    return Cap(limits.max_metadata_bytes, "[limits] max_metadata_bytes")


def index_cap(limits: Limits) -> Cap:
    return Cap(limits.max_index_bytes, "[limits] max_index_bytes")


def signed_size_cap(size: int) -> Cap:
    """A file whose size signed metadata gives: one byte more proves it is another file."""
    return Cap(size, "the size its signed metadata gives")


class ByteCap:
    """Counts the bytes of one transfer against ``cap`` (None: unbounded)."""

    def __init__(self, where: str, cap: Cap | None) -> None:
        self.where = where
        self.cap = None if cap is None else cap.bytes
        self.setting = "" if cap is None else cap.setting

    def check_announced(self, length: int | None) -> None:
        if self.cap is not None and length is not None and length > self.cap:
            raise too_large(self.where, self.cap, self.setting, announced=length)

    def check(self, total: int) -> None:
        if self.cap is not None and total > self.cap:
            raise too_large(self.where, self.cap, self.setting)


class RateWatchdog:
    """Refuses a transfer whose bytes over the last ``window`` seconds fall below
    ``min_rate`` per second; nothing is judged before one whole window has passed."""

    def __init__(
        self,
        where: str,
        min_rate: int,
        *,
        window: float = RATE_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.where, self.min_rate, self.window, self.clock = where, min_rate, window, clock
        self.total = 0
        self.started = clock()
        # (time, bytes so far): the oldest kept sample is at or before now - window
        self._samples: collections.deque[tuple[float, int]] = collections.deque([(self.started, 0)])

    def received(self, count: int) -> None:
        now = self.clock()
        self.total += count
        self._samples.append((now, self.total))
        while len(self._samples) > 1 and self._samples[1][0] <= now - self.window:
            self._samples.popleft()
        if now - self.started < self.window:
            return
        since, before = self._samples[0]
        rate = (self.total - before) / max(now - since, self.window)
        if rate < self.min_rate:
            raise TransportError(
                f"{self.where}: {rate:,.0f} bytes/s over the last {self.window:g} s, below "
                f"the {self.min_rate:,} bytes/s of [limits] min_transfer_rate "
                f"({self.total:,} bytes in {now - self.started:,.0f} s); the transfer was "
                "stopped",
                hint="the mirror or the network is stalling (or hostile); try again later, "
                "or lower [limits] min_transfer_rate for a slow link",
                reference="transfer-too-slow",
            )


class MemorySink:
    """The body of a capped read, kept in memory. With ``expect_prefix``, reading stops as
    soon as the first bytes differ from it: what was read is returned, and the caller's own
    check (a clear-signed file must start so) refuses it without the rest being fetched."""

    def __init__(self, cap: ByteCap, *, expect_prefix: bytes = b"") -> None:
        self.cap = cap
        self.expect_prefix = expect_prefix
        self.data = bytearray()

    def add(self, piece: bytes) -> bool:
        """Keep ``piece``; False when the rest need not be read (the prefix does not match)."""
        self.data += piece
        self.cap.check(len(self.data))
        return not self.wrong_prefix()

    def wrong_prefix(self) -> bool:
        head = bytes(self.data[: len(self.expect_prefix)])
        return not self.expect_prefix.startswith(head) if head else False
