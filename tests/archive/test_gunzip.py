"""The gzip layer, with ISA-L's igzip and with zlib (the fallback when isal is missing): the
same bytes out, and the same refusals of a damaged, cut or extended stream."""

from __future__ import annotations

import gzip
import io
import os
import zlib
from collections.abc import Iterator

import pytest

from reconcile.archive import gunzip
from reconcile.archive.gunzip import GunzipStream
from reconcile.archive.violation import ArchiveRuleError

DATA = os.urandom(200_000) + b"text compresses well\n" * 20_000


@pytest.fixture(params=["igzip", "zlib"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "igzip":
        if gunzip._igzip is None:
            pytest.skip("isal is not installed")
    else:
        monkeypatch.setattr(gunzip, "_igzip", None)
    yield request.param


def read_all(data: bytes, piece: int = 16 << 10) -> tuple[bytes, GunzipStream]:
    stream = GunzipStream(io.BytesIO(data))
    out = bytearray()
    while chunk := stream.read(piece):
        assert len(chunk) <= piece  # bounded, whatever the compression ratio
        out += chunk
    return bytes(out), stream


def test_the_decompressed_bytes_are_gzip_s(engine: str) -> None:
    out, stream = read_all(gzip.compress(DATA))
    assert out == DATA and stream.position == len(DATA)
    stream.check_end()
    assert gunzip.engine_name().startswith(engine)


def test_a_wrong_crc_is_an_error(engine: str) -> None:
    del engine
    whole = bytearray(gzip.compress(DATA))
    whole[-8] ^= 0xFF  # the CRC-32 of the trailer
    with pytest.raises(gunzip.ERRORS):
        read_all(bytes(whole))


def test_a_wrong_length_is_an_error(engine: str) -> None:
    del engine
    whole = bytearray(gzip.compress(DATA))
    whole[-1] ^= 0x01  # the length (mod 2**32) of the trailer
    with pytest.raises(gunzip.ERRORS):
        read_all(bytes(whole))


def test_a_damaged_deflate_stream_is_an_error(engine: str) -> None:
    del engine
    whole = bytearray(gzip.compress(DATA))
    whole[len(whole) // 2 : len(whole) // 2 + 64] = b"\xff" * 64
    with pytest.raises(gunzip.ERRORS):
        read_all(bytes(whole))


def test_not_gzip_is_an_error(engine: str) -> None:
    del engine
    with pytest.raises(gunzip.ERRORS):
        read_all(b"not gzip at all" * 100)


@pytest.mark.parametrize("cut", [1, 4, 8, 1000])
def test_a_stream_cut_short_is_refused_at_the_end(engine: str, cut: int) -> None:
    del engine
    out, stream = read_all(gzip.compress(DATA)[:-cut])
    assert len(out) <= len(DATA)
    with pytest.raises(ArchiveRuleError) as refused:
        stream.check_end()
    assert refused.value.rule == "unreadable-archive"


@pytest.mark.parametrize("tail", [b"\x00", b"trailing garbage", gzip.compress(b"a second member")])
def test_anything_after_the_stream_is_refused(engine: str, tail: bytes) -> None:
    del engine
    out, stream = read_all(gzip.compress(DATA) + tail)
    assert out == DATA  # a second member is never read as more data
    with pytest.raises(ArchiveRuleError) as refused:
        stream.check_end()
    assert refused.value.rule == "data-after-end"


def test_a_bomb_comes_out_in_bounded_pieces(engine: str) -> None:
    del engine
    bomb = gzip.compress(bytes(64 << 20), compresslevel=9)
    assert len(bomb) < 100_000
    stream = GunzipStream(io.BytesIO(bomb))
    assert len(stream.read(4096)) == 4096  # not the whole 64 MiB at once


def test_zlib_and_igzip_give_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    data = gzip.compress(DATA)
    with_default, _ = read_all(data, piece=1000)
    monkeypatch.setattr(gunzip, "_igzip", None)
    with_zlib, _ = read_all(data, piece=1000)
    assert with_default == with_zlib == DATA == zlib.decompress(data, 31)
