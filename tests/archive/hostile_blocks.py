"""A corpus of hostile tar streams built block by block, each with the exact verdict of
``unpack_package``: the rule that refuses it, or None when the package is accepted.

The streams are raw 512-byte blocks (``block`` below), so they hold what no tar writer
writes: fields out of range, prefixes in GNU headers, extended headers without members.
Each is wrapped around a well-formed package (``hostile.py``), so only the attack is wrong.
"""

from __future__ import annotations

from collections.abc import Callable

from hostile import PREFIX, binary_distribution_text

BLOCK = 512
MTIME = 1_700_000_000
END = bytes(2 * BLOCK)
P = PREFIX
POSIX, GNU, V7 = b"ustar\x0000", b"ustar  \x00", bytes(8)


def block(
    name: str,
    kind: bytes = b"0",
    size: int = 0,
    *,
    mode: int = 0o644,
    linkname: str = "",
    magic: bytes = POSIX,
    prefix: bytes = b"",
    fields: dict[int, bytes] | None = None,
) -> bytes:
    """One header block, its checksum right; ``fields`` overwrite bytes at their offsets."""
    raw = bytearray(BLOCK)
    encoded = name.encode("utf-8", "surrogateescape")[:100]
    raw[: len(encoded)] = encoded
    raw[100:108] = b"%07o\0" % mode
    raw[108:124] = b"0000000\x00" * 2
    raw[124:136] = b"%011o\0" % size
    raw[136:148] = b"%011o\0" % MTIME
    raw[156:157] = kind
    target = linkname.encode()[:100]
    raw[157 : 157 + len(target)] = target
    raw[257:265] = magic
    raw[345 : 345 + len(prefix)] = prefix
    for offset, value in (fields or {}).items():
        raw[offset : offset + len(value)] = value
    raw[148:156] = b" " * 8
    raw[148:156] = b"%06o\0 " % sum(raw)
    return bytes(raw)


def padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % BLOCK)


def file(name: str, data: bytes = b"x", **options: object) -> bytes:
    return block(name, b"0", len(data), **options) + padded(data)  # type: ignore[arg-type]


def records(*pairs: tuple[str, str]) -> bytes:
    body = b""
    for keyword, value in pairs:
        text = f" {keyword}={value}\n".encode()
        length = len(text) + len(str(len(text)))
        length += len(str(length)) - len(str(len(text)))
        body += str(length).encode() + text
    return body


def extended(kind: bytes, body: bytes, magic: bytes = POSIX) -> bytes:
    return block("././@PaxHeader", kind, len(body), magic=magic) + padded(body)


def pax(*pairs: tuple[str, str]) -> bytes:
    return extended(b"x", records(*pairs))


def long_name(name: str, kind: bytes = b"L") -> bytes:
    return extended(kind, name.encode() + b"\0", magic=GNU)


def package(*attack: bytes, end: bytes = END, before: bytes = b"") -> bytes:
    """The folders down to the prefix, a file, ``attack``, the binary_distribution."""
    parts = P.split("/")
    folders = [
        block("/".join(parts[:depth]), b"5", mode=0o755) for depth in range(1, len(parts) + 1)
    ]
    body = block(f"{P}/.spack", b"5", mode=0o755) + file(f"{P}/tool", b"#!/bin/sh\n")
    marker = file(f"{P}/.spack/binary_distribution", binary_distribution_text().encode())
    return before + b"".join(folders) + body + b"".join(attack) + marker + end


DEEP = f"{P}/" + "a/" * 300_000 + "f"  # charged as 600 KB of records before it is split
LOW = f"{P}/" + "d/" * 300 + "f"
S = f"{P}/s"  # the name most attacks use

# name -> (tar stream, the rule that refuses it, or None when it is accepted)
CORPUS: dict[str, tuple[Callable[[], bytes], str | None]] = {
    "well-formed": (lambda: package(), None),
    "pax-path-dotdot": (
        lambda: package(pax(("path", f"{P}/../../x")), file(f"{P}/x")),
        "parent-component",
    ),
    "pax-path-absolute": (
        lambda: package(pax(("path", "/tmp/x")), file("/tmp/x")),
        "absolute-name",
    ),
    "ustar-prefix-absolute": (lambda: package(file("x", prefix=b"/tmp")), "absolute-name"),
    "gnu-header-prefix": (
        lambda: package(file("evil", magic=GNU, prefix=P.encode())),
        "unreadable-archive",
    ),
    "v7-header-prefix": (
        lambda: package(file("evil", magic=V7, prefix=P.encode())),
        "unreadable-archive",
    ),
    "pax-path-nul": (lambda: package(pax(("path", f"{S}\0x")), file(S)), "nul-in-name"),
    "pax-path-renames": (
        lambda: package(pax(("path", f"{P}/other")), file(S)),
        "pax-name-override",
    ),
    "long-name-and-pax-disagree": (
        lambda: package(
            long_name(f"{P}/{'b' * 120}"),
            pax(("path", f"{P}/{'c' * 120}")),
            file(f"{P}/{'b' * 120}"),
        ),
        "pax-name-override",
    ),
    "two-long-names": (lambda: package(long_name(S), long_name(S), file(S)), "unreadable-archive"),
    "long-link-out": (
        lambda: package(
            long_name("../" * 40 + "etc", b"K"), block(S, b"2", linkname=("../" * 40)[:100])
        ),
        "symlink-escape",
    ),
    "global-path": (
        lambda: package(before=extended(b"g", records(("path", S)))),
        "pax-name-override",
    ),
    "global-size": (
        lambda: package(before=extended(b"g", records(("size", "1")))),
        "unreadable-archive",
    ),
    "global-between-headers": (
        lambda: package(pax(("mtime", "1")), extended(b"g", b""), file(S)),
        "unreadable-archive",
    ),
    "pax-keyword-twice": (
        lambda: package(pax(("mtime", "1"), ("mtime", "2")), file(S)),
        "unreadable-archive",
    ),
    "pax-zero-length-record": (
        lambda: package(extended(b"x", b"0 \n"), file(S)),
        "unreadable-archive",
    ),
    "pax-size-not-a-number": (lambda: package(pax(("size", "-1")), file(S)), "unreadable-archive"),
    "pax-size-huge": (lambda: package(pax(("size", "9" * 20)), file(S)), "unpacked-size"),
    "pax-header-over-1mib": (
        lambda: package(block("././@PaxHeader", b"x", 2 << 20), bytes(2 << 20), file(S)),
        "unreadable-archive",
    ),
    "pax-mtime-nan": (lambda: package(pax(("mtime", "nan")), file(S)), "unreadable-archive"),
    "pax-at-the-end": (
        lambda: package(pax(("mtime", "1")))[: -len(END) - 1536] + pax(("mtime", "1")) + END,
        "unreadable-archive",
    ),
    "size-base-256-negative": (
        lambda: package(block(S, fields={124: b"\xff" * 12})),
        "unreadable-archive",
    ),
    "size-base-256-huge": (
        lambda: package(block(S, fields={124: b"\x80" + b"\xff" * 11})),
        "unpacked-size",
    ),
    "size-signed": (
        lambda: package(block(S, fields={124: b"+0000000001\0"}) + padded(b"x")),
        "unreadable-archive",
    ),
    "mode-negative": (lambda: package(file(S, fields={100: b"\xff" * 8})), "unreadable-archive"),
    "mtime-beyond-2262": (
        lambda: package(file(S, fields={136: b"\x80" + b"\xff" * 11})),
        "unreadable-archive",
    ),
    "checksum-wrong": (
        lambda: package(file(S)[:148] + b"0000000\0" + file(S)[156:]),
        "unreadable-archive",
    ),
    "hard-link-to-later": (
        lambda: package(block(f"{P}/h", b"1", linkname=S), file(S)),
        "hard-link-target",
    ),
    "hard-link-outside": (
        lambda: package(block(f"{P}/h", b"1", linkname="../../etc/passwd")),
        "parent-component",
    ),
    "hard-link-to-symlink": (
        lambda: package(block(S, b"2", linkname="/etc/passwd"), block(f"{P}/h", b"1", linkname=S)),
        "hard-link-target",
    ),
    "hard-link-with-data": (
        lambda: package(block(f"{P}/h", b"1", 1, linkname=f"{P}/tool") + padded(b"x")),
        "unreadable-archive",
    ),
    "file-through-symlink": (
        lambda: package(block(S, b"2", linkname="/tmp"), file(f"{S}/x")),
        "through-symlink",
    ),
    "file-replaced-by-symlink": (
        lambda: package(file(S), block(S, b"2", linkname="/etc/passwd")),
        "duplicate-name",
    ),
    "folder-then-file": (lambda: package(block(S, b"5", mode=0o755), file(S)), "duplicate-name"),
    "folder-with-data": (lambda: package(block(S, b"5", 1) + padded(b"x")), "unreadable-archive"),
    "symlink-climbs-out": (
        lambda: package(block(S, b"2", linkname="../" * 10 + "etc")),
        "symlink-escape",
    ),
    "gnu-sparse": (lambda: package(block(S, b"S", 1, magic=GNU) + padded(b"x")), "sparse-file"),
    "pax-sparse": (lambda: package(pax(("GNU.sparse.major", "1")), file(S)), "sparse-file"),
    "character-device": (lambda: package(block(S, b"3")), "special-file"),
    "fifo": (lambda: package(block(S, b"6")), "special-file"),
    "unknown-type": (lambda: package(block(S, b"Z", 1) + padded(b"x")), "special-file"),
    "gnu-volume-label": (lambda: package(before=block("label", b"V", magic=GNU)), "special-file"),
    "set-uid": (lambda: package(file(S, mode=0o4755)), "special-mode-bits"),
    "cut-inside-a-header": (lambda: package(end=b"")[:-600], "unreadable-archive"),
    "cut-inside-data": (
        lambda: package(block(S, b"0", 5000), b"x" * 1000, end=b""),
        "unreadable-archive",
    ),
    "data-after-end": (lambda: package(end=END + file(f"{P}/late")), "data-after-end"),
    "lone-zero-block-then-member": (
        lambda: package(bytes(BLOCK), file(f"{P}/late")),
        "data-after-end",
    ),
    "megabyte-deep-long-name": (
        lambda: package(long_name(DEEP), file(DEEP[:100])),
        "unpacked-size",
    ),
    "megabyte-deep-pax-path": (
        lambda: package(pax(("path", DEEP)), file(DEEP[:100])),
        "unpacked-size",
    ),
    "too-deep-long-name": (lambda: package(long_name(LOW), file(LOW[:100])), "too-deep"),
    "too-deep-pax-path": (lambda: package(pax(("path", LOW)), file(LOW[:100])), "too-deep"),
    "megabyte-of-pax-records": (
        lambda: package(pax(("comment", "c" * 1_000_000)), file(S)),
        "unpacked-size",
    ),
    "component-over-255-bytes": (
        lambda: package(pax(("path", f"{P}/{'z' * 256}")), file(f"{P}/{'z' * 256}"[:100])),
        "name-too-long",
    ),
    "component-of-128-two-byte-characters": (
        lambda: package(pax(("path", f"{P}/" + "\u00e9" * 128)), file(f"{P}/{'?' * 128}"[:100])),
        "name-too-long",
    ),
    "component-of-255-bytes": (
        lambda: package(pax(("path", f"{P}/{'z' * 255}")), file(f"{P}/{'z' * 255}"[:100])),
        None,
    ),
    "symlink-target-of-4096-bytes": (
        lambda: package(
            pax(("linkpath", "/" + "t" * 4095)), block(S, b"2", linkname="/" + "t" * 99)
        ),
        "name-too-long",
    ),
    "symlink-target-of-4095-bytes": (
        lambda: package(
            pax(("linkpath", "/" + "t" * 4094)), block(S, b"2", linkname="/" + "t" * 99)
        ),
        None,
    ),
    "no-end-blocks": (lambda: package(end=b""), None),
    "one-end-block": (lambda: package(end=bytes(BLOCK)), None),
    "signed-byte-checksum": (lambda: package(_signed(file(f"{P}/\u00e9t\u00e9"))), None),
    "old-style-folder-and-contiguous-file": (
        lambda: package(block(f"{P}/d/", b"\0"), file(f"{P}/d/c", fields={156: b"7"})),
        None,
    ),
    "pax-long-name-and-mtime": (
        lambda: package(
            pax(("path", f"{P}/{'n' * 150}"), ("mtime", "5.25")), file(f"{P}/{'n' * 150}")
        ),
        None,
    ),
    "global-mtime-and-comments": (
        lambda: package(
            before=b"".join(
                extended(b"g", records((f"k{n}", "v" * 1000), ("mtime", "7"))) for n in range(50)
            )
        ),
        None,
    ),
}


def _signed(header_and_data: bytes) -> bytes:
    """The header's checksum as old tars summed it: bytes over 127 counted negative."""
    raw = bytearray(header_and_data[:BLOCK])
    raw[148:156] = b" " * 8
    raw[148:156] = b"%06o\0 " % sum(byte - 256 if byte > 127 else byte for byte in raw)
    return bytes(raw) + header_and_data[BLOCK:]
