"""The tar reader of our own: the same members as Python's ``tarfile`` on every real and
generated archive, and a clear refusal (never a guess, never a skip) on every malformed one.

Most tests build a tar stream byte by byte (``tarfile`` writes the headers, the test then
breaks one field and puts the checksum right again where it means to), gzip it and read it
with ``TarReader`` as ``unpack_package`` does.
"""

from __future__ import annotations

import gzip
import io
import shutil
import struct
import subprocess
import tarfile
import tracemalloc
from pathlib import Path

import pytest
from conftest import FIXTURES
from hostile import PREFIX, Member, spack_tarball
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconcile.archive.reader import open_tar
from reconcile.archive.tar_headers import MAX_EXTENDED_BYTES, TarMember
from reconcile.archive.unpack import unpack_package
from reconcile.archive.violation import ArchiveRuleError
from reconcile.errors import ArchiveError

BLOCK = tarfile.BLOCKSIZE
END = bytes(2 * BLOCK)
MTIME = 1_700_000_000

# What a member is, to both readers: compared field by field, data included.
View = tuple[str, str, bytes, int, float, int, bytes | None]


# -- building streams ---------------------------------------------------------------------------


def info(
    name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, **fields: object
) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type = kind
    member.size = size
    member.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    member.mtime = MTIME
    for key, value in fields.items():
        setattr(member, key, value)
    return member


def padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % BLOCK)


def header(
    name: str,
    kind: bytes = tarfile.REGTYPE,
    size: int = 0,
    fmt: int = tarfile.USTAR_FORMAT,
    **fields: object,
) -> bytes:
    return info(name, kind, size, **fields).tobuf(fmt, "utf-8", "surrogateescape")


def file_member(name: str, data: bytes, fmt: int = tarfile.PAX_FORMAT, **fields: object) -> bytes:
    return header(name, size=len(data), fmt=fmt, **fields) + padded(data)


def pax_header(records: dict[str, str] | bytes, kind: bytes = tarfile.XHDTYPE) -> bytes:
    """A PAX extended header holding ``records`` (or exactly these bytes)."""
    if isinstance(records, bytes):
        body = records
    else:
        body = tarfile.TarInfo._create_pax_generic_header(records, kind, "utf-8")[BLOCK:]  # type: ignore[attr-defined]
        body = body.rstrip(b"\0")
    return header("././@PaxHeader", kind, size=len(body)) + padded(body)


def gnu_long(kind: bytes, value: str) -> bytes:
    payload = value.encode() + b"\0"
    return header("././@LongLink", kind, size=len(payload), fmt=tarfile.GNU_FORMAT) + padded(
        payload
    )


def set_field(block: bytes, start: int, value: bytes) -> bytes:
    """``block`` with bytes ``start``.. replaced and its checksum made right again."""
    changed = bytearray(block)
    changed[start : start + len(value)] = value
    changed[148:156] = b" " * 8
    changed[148:156] = b"%06o\0 " % sum(changed)
    return bytes(changed)


def with_size(block: bytes, size_field: bytes) -> bytes:
    return set_field(block, 124, size_field.ljust(12, b"\0"))


# -- reading them -------------------------------------------------------------------------------


def ours(stream: bytes | Path) -> list[View]:
    """Every member with its data, then the end checked, as ``unpack_package`` reads them."""
    gz = stream.read_bytes() if isinstance(stream, Path) else gzip.compress(stream)
    seen: list[View] = []
    with open_tar(gz) as reader:
        for member in reader.members():
            data = b"".join(reader.data()) if member.isreg() else None
            seen.append(_view(member, data))
        reader.check_end(lambda size: None)
    return seen


def theirs(stream: bytes | Path) -> list[View]:
    gz = stream.read_bytes() if isinstance(stream, Path) else gzip.compress(stream)
    seen: list[View] = []
    with tarfile.open(fileobj=io.BytesIO(gz), mode="r:gz") as archive:
        for member in archive:
            data = None
            if member.isreg():
                extracted = archive.extractfile(member)
                assert extracted is not None
                data = extracted.read()
            seen.append(_view(member, data))
    return seen


def _view(member: TarMember | tarfile.TarInfo, data: bytes | None) -> View:
    return (member.name, member.linkname, member.type, member.mode, member.mtime, member.size, data)


def refusal(stream: bytes) -> ArchiveRuleError:
    with pytest.raises(ArchiveRuleError) as caught:
        ours(stream)
    return caught.value


def archive(*parts: bytes, end: bytes = END) -> bytes:
    return b"".join(parts) + end


# -- the same members as tarfile ----------------------------------------------------------------


def _fixture_gzips() -> list[Path]:
    """Every gzip file in the shared fixtures: layout 2 ``.spack`` files, layout 3 blobs
    (tarballs, and gzipped spec documents)."""
    found = sorted(FIXTURES.glob("spack-v2-*/build_cache/**/*.spack"))
    for blob in sorted((FIXTURES / "spack1-v3-signed" / "blobs").rglob("*")):
        if blob.is_file() and blob.read_bytes()[:2] == b"\x1f\x8b":
            found.append(blob)
    return found


def real_tarballs() -> list[Path]:
    return [p for p in _fixture_gzips() if gzip.decompress(p.read_bytes())[257:262] == b"ustar"]


def test_gzipped_documents_are_refused_by_both_readers() -> None:
    documents = [p for p in _fixture_gzips() if p not in real_tarballs()]
    assert documents
    for document in documents:
        with pytest.raises(ArchiveRuleError, match="bad checksum"):
            ours(document)
        with pytest.raises(tarfile.ReadError):
            theirs(document)


def test_the_fixtures_hold_tarballs_of_both_layouts() -> None:
    tarballs = real_tarballs()
    assert any(p.suffix == ".spack" for p in tarballs)
    assert any("blobs" in p.parts for p in tarballs)


@pytest.mark.parametrize("tarball", real_tarballs(), ids=lambda p: p.name[-40:])
def test_real_tarballs_read_as_tarfile_reads_them(tarball: Path) -> None:
    expected = theirs(tarball)
    assert len(expected) > 5
    assert ours(tarball) == expected


NAMES = [
    "short.txt",
    "a/" * 60 + "long-name-over-the-ustar-field.txt",  # a PAX path, or a ustar prefix
    "opt/" + "x" * 150 + "/file",  # no ustar split: PAX or GNU long name only
    "non-ascii/caf\u00e9/\u00fcber.txt",
    "undecodable/\udcff\udcfe.bin",
]


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_tarfile_written_archives_read_alike(fmt: int) -> None:
    stream = io.BytesIO()
    with tarfile.open(fileobj=stream, mode="w", format=fmt, encoding="utf-8") as out:
        out.addfile(info("opt", tarfile.DIRTYPE))
        for number, name in enumerate(NAMES):
            data = bytes([number]) * (number * 700)
            member = info(f"opt/{name}", size=len(data), mtime=MTIME + number)
            try:
                member.tobuf(fmt, "utf-8", "surrogateescape")
            except ValueError:
                continue  # a name this format cannot hold
            out.addfile(member, io.BytesIO(data))
        target = "../" + "t" * (120 if fmt != tarfile.USTAR_FORMAT else 20)
        out.addfile(info("opt/link", tarfile.SYMTYPE, linkname=target))
        out.addfile(info("opt/hard", tarfile.LNKTYPE, linkname="opt/short.txt"))
        if fmt == tarfile.PAX_FORMAT:
            out.addfile(info("opt/fraction", mtime=MTIME + 0.25))
    expected = theirs(stream.getvalue())
    assert len(expected) >= 5
    assert ours(stream.getvalue()) == expected


@pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar writes the archives")
@pytest.mark.parametrize("fmt", ["gnu", "posix", "ustar", "v7", "oldgnu"])
def test_gnu_tar_written_archives_read_alike(fmt: str, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    deep = tree / ("d" * 40) / ("e" * 40) if fmt == "v7" else tree / ("d" * 90) / ("e" * 90)
    deep.mkdir(parents=True)
    (deep / "file.txt").write_bytes(b"data\n" * 300)
    (tree / "short").write_text("x")
    (tree / "link").symlink_to("short")
    (tree / "hard").hardlink_to(tree / "short")
    tarball = tmp_path / "t.tar.gz"
    made = subprocess.run(
        ["tar", f"--format={fmt}", "-czf", str(tarball), "-C", str(tmp_path), "tree"],
        capture_output=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"GNU tar cannot write this tree as {fmt}: {made.stderr!r}")
    assert ours(tarball) == theirs(tarball)


MEMBERS = st.lists(
    st.tuples(
        st.text(
            st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_characters="/"),
            min_size=1,
            max_size=40,
        ),
        st.integers(1, 4),  # path depth
        st.binary(max_size=1500),
        st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE]),
        st.one_of(
            st.integers(0, 8**11 - 1), st.floats(0, 2e9, allow_nan=False).map(lambda t: round(t, 3))
        ),
    ),
    max_size=8,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(members=MEMBERS, fmt=st.sampled_from([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT]))
def test_generated_archives_read_alike(
    members: list[tuple[str, int, bytes, bytes, float]], fmt: int
) -> None:
    stream = io.BytesIO()
    with tarfile.open(fileobj=stream, mode="w", format=fmt, encoding="utf-8") as out:
        for part, depth, data, kind, mtime in members:
            if fmt == tarfile.GNU_FORMAT:
                mtime = int(mtime)
            name = "/".join([part] * depth)
            if kind == tarfile.REGTYPE:
                out.addfile(info(name, size=len(data), mtime=mtime), io.BytesIO(data))
            else:
                out.addfile(
                    info(name, kind, mtime=mtime, linkname=part if kind == tarfile.SYMTYPE else "")
                )
    assert ours(stream.getvalue()) == theirs(stream.getvalue())


@settings(max_examples=150, deadline=None)
@given(position=st.integers(0, 8 * BLOCK - 1), value=st.integers(0, 255))
def test_a_damaged_byte_is_refused_or_read_as_tarfile_reads_it(position: int, value: int) -> None:
    """One byte changed anywhere in a small archive: either the reader refuses, or it lists
    exactly what tarfile lists (it never accepts something tarfile reads otherwise)."""
    stream = bytearray(
        archive(
            header("opt", tarfile.DIRTYPE),
            file_member("opt/" + "n" * 120, b"payload\n" * 40),
            header("opt/link", tarfile.SYMTYPE, linkname="n"),
        )
    )
    stream[position] = value
    try:
        mine = ours(bytes(stream))
    except ArchiveRuleError:
        return
    assert mine == theirs(bytes(stream))


def test_global_pax_mtime_applies_to_later_members_as_in_tarfile() -> None:
    stream = archive(
        pax_header({"mtime": "1600000000.5", "comment": "hi"}, tarfile.XGLTYPE),
        file_member("a", b"x", fmt=tarfile.USTAR_FORMAT),
        file_member("b", b"y", fmt=tarfile.PAX_FORMAT, mtime=MTIME + 0.5),
    )
    assert ours(stream) == theirs(stream)
    assert [view[4] for view in ours(stream)] == [1600000000.5, MTIME + 0.5]


# -- header blocks ------------------------------------------------------------------------------


def test_bad_checksum_is_refused_on_the_first_header_and_later() -> None:
    good = file_member("a", b"x", fmt=tarfile.USTAR_FORMAT)
    broken = bytearray(good)
    broken[0] = ord("b")  # the name changed, the checksum not
    first = refusal(archive(bytes(broken)))
    later = refusal(archive(good, bytes(broken)))
    for error in (first, later):
        assert error.rule == "unreadable-archive" and "bad checksum" in error.detail
    assert "at byte 1,024" in later.detail


def test_signed_byte_checksum_is_accepted() -> None:
    """Some old tars summed signed bytes; GNU tar and tarfile accept either sum."""
    block = bytearray(header("caf\u00e9", size=0))
    block[148:156] = b" " * 8
    signed = 256 + sum(struct.unpack("148b8x356b", bytes(block)))
    assert signed != sum(block)
    block[148:156] = b"%06o\0 " % signed
    assert [view[0] for view in ours(archive(bytes(block)))] == ["caf\u00e9"]


def test_a_checksum_field_that_is_not_a_number_is_refused() -> None:
    block = bytearray(header("a"))
    block[148:156] = b"12x456\0 "
    assert "checksum" in refusal(archive(bytes(block))).detail


def test_nul_and_blank_padded_numbers_read_as_their_digits() -> None:
    block = header("a", size=3)
    for field in (b"3\0\0\0\0\0\0\0\0\0\0\0", b"  3 \0", b"00000000003\0", b"3\0garbage\0\0"):
        (member,) = ours(archive(with_size(block, field) + padded(b"abc")))
        assert member[5] == 3 and member[6] == b"abc"
    (empty,) = ours(archive(with_size(block, b"\0" * 12)))
    assert empty[5] == 0


@pytest.mark.parametrize("field", [b"-3", b"+3", b"0o3", b"1_0", b"3x", b"9", b"3 3"])
def test_numbers_tarfile_or_gnu_tar_would_misread_are_refused(field: bytes) -> None:
    block = with_size(header("a", size=3), field)
    error = refusal(archive(block + padded(b"abc")))
    assert error.rule == "unreadable-archive" and "size field" in error.detail


def test_base_256_sizes() -> None:
    small = with_size(header("a"), b"\x80" + (3).to_bytes(11, "big"))
    (member,) = ours(archive(small + padded(b"abc")))
    assert member[5:] == (3, b"abc")
    negative = with_size(header("a"), b"\xff" * 12)
    assert "negative size -1" in refusal(archive(negative)).detail
    huge = with_size(header("a"), b"\x80" + (1 << 80).to_bytes(11, "big"))
    assert "ends inside the member's data" in refusal(archive(huge + padded(b"abc"))).detail


def test_a_first_byte_that_is_neither_octal_nor_base_256_is_refused() -> None:
    assert "size field" in refusal(archive(with_size(header("a"), b"\x81" + bytes(11)))).detail


def test_negative_mode_and_out_of_range_mtime_are_refused() -> None:
    mode = set_field(header("a"), 100, b"\xff" * 8)
    assert "negative mode" in refusal(archive(mode)).detail
    mtime = set_field(header("a"), 136, b"\x80" + (1 << 70).to_bytes(11, "big"))
    assert "mtime" in refusal(archive(mtime)).detail
    old = set_field(header("a"), 136, b"\xff" * 11 + b"\x00")  # -256 s: before 1970 is fine
    assert ours(archive(old))[0][4] == -256


def test_truncated_header_data_and_padding_are_refused() -> None:
    whole = archive(file_member("a", b"abc" * 100, fmt=tarfile.USTAR_FORMAT), end=b"")
    for cut, where in (
        (BLOCK - 10, "inside a header block"),
        (BLOCK + 100, "member's data"),
        (2 * BLOCK - 1, "member's data"),
    ):
        error = refusal(whole[:cut])
        assert error.rule == "unreadable-archive" and where in error.detail, (cut, error.detail)


def test_an_empty_stream_is_refused() -> None:
    assert "empty" in refusal(b"").detail


def test_end_of_archive_forms() -> None:
    """Two zero blocks (what writers write), one, or none at all (GNU tar and tarfile read
    the end of the data as the end): the same members. A member after a zero block is not."""
    member = file_member("a", b"abc", fmt=tarfile.USTAR_FORMAT)
    for end in (END, bytes(BLOCK), b"", bytes(20 * BLOCK)):
        assert [view[0] for view in ours(member + end)] == ["a"]
    hidden = refusal(member + bytes(BLOCK) + file_member("b", b"hidden") + END)
    assert hidden.rule == "data-after-end"


def test_directory_with_data_is_refused() -> None:
    """GNU tar reads no data after a folder's header; a size would make readers disagree."""
    block = header("d", tarfile.DIRTYPE, size=BLOCK)
    error = refusal(archive(block + bytes(BLOCK)))
    assert "declares 512 bytes of data" in error.detail


def test_unknown_types_reach_the_rules_with_their_data_skipped() -> None:
    (member,) = ours(archive(header("v", b"V", size=3) + padded(b"abc")))
    assert member[2] == b"V"


# -- PAX headers ---------------------------------------------------------------------------------


def test_pax_path_gives_a_long_name_and_overrides_the_header_field() -> None:
    name = "opt/" + "p" * 150
    stream = archive(pax_header({"path": name}), header(name[:100], size=1) + padded(b"z"))
    ((read, *_),) = ours(stream)
    assert read == name


def test_pax_size_overrides_the_header_size() -> None:
    data = b"q" * 1000
    stream = archive(pax_header({"size": "1000"}), header("big", size=0) + padded(data))
    (member,) = ours(stream)
    assert member[5:] == (1000, data)
    assert ours(stream) == theirs(stream)


@pytest.mark.parametrize("size", ["-1", "1e3", "0x10", " 10", "1" * 25, "\u0661"])
def test_pax_sizes_that_are_not_sizes_are_refused(size: str) -> None:
    error = refusal(archive(pax_header({"size": size}), header("a")))
    assert "PAX size" in error.detail


@pytest.mark.parametrize("mtime", ["nan", "inf", "1e5", "", "12.", "99999999999"])
def test_pax_mtimes_that_are_not_times_are_refused(mtime: str) -> None:
    assert "mtime" in refusal(archive(pax_header({"mtime": mtime}), header("a"))).detail


@pytest.mark.parametrize(
    "records",
    [
        b"99 path=a\n",  # longer than the header's data
        b"5 path=a\n",  # shorter than the record
        b"11 path=a\n",  # ends one byte after its newline
        b"0 path=a\n",
        b"x9 path=a\n",
        b"9 path=a\n\0\0\0",  # padding inside the declared size
        b"8 path=a",  # no newline
        b"9  path a\n",  # no '='
        b"7 =abc\n",  # an empty keyword
        b"9 path=a\n9 path=b\n",  # a keyword twice
        b"path=a\n",
    ],
)
def test_pax_records_with_a_bad_length_or_form_are_refused(records: bytes) -> None:
    error = refusal(archive(pax_header(records), header("a")))
    assert error.rule == "unreadable-archive" and "PAX" in error.detail, error.detail


def test_two_pax_headers_or_long_names_for_one_member_are_refused() -> None:
    double_pax = archive(pax_header({"mtime": "1"}), pax_header({"mtime": "2"}), header("a"))
    assert "second PAX header" in refusal(double_pax).detail
    name = "n" * 120
    double_long = archive(gnu_long(b"L", name), gnu_long(b"L", name), header(name[:100]))
    assert "second GNU long name" in refusal(double_long).detail


def test_pax_path_and_gnu_long_name_that_disagree_are_refused() -> None:
    name = "n" * 120
    stream = archive(
        gnu_long(b"L", name), pax_header({"path": name + "-other"}), header(name[:100])
    )
    error = refusal(stream)
    assert error.rule == "pax-name-override" and "different names" in error.detail
    agreeing = archive(gnu_long(b"L", name), pax_header({"path": name}), header(name[:100]))
    assert [view[0] for view in ours(agreeing)] == [name]


def test_gnu_long_name_and_link() -> None:
    name, target = "opt/" + "l" * 130, "t" * 140
    stream = archive(
        gnu_long(b"L", name),
        gnu_long(b"K", target),
        header(name[:100], tarfile.SYMTYPE, linkname=target[:100], fmt=tarfile.GNU_FORMAT),
    )
    ((read_name, read_target, *_),) = ours(stream)
    assert (read_name, read_target) == (name, target)
    assert ours(stream) == theirs(stream)


def test_extended_headers_without_their_member_are_refused() -> None:
    for extended in (pax_header({"mtime": "1"}), gnu_long(b"L", "n" * 120)):
        assert "follows an extended header" in refusal(archive(extended)).detail
        assert "after an extended header" in refusal(extended).detail


def test_an_oversized_extended_header_is_refused_before_it_is_read() -> None:
    block = header("././@PaxHeader", tarfile.XHDTYPE, size=MAX_EXTENDED_BYTES + 1)
    error = refusal(block + bytes(MAX_EXTENDED_BYTES + 1))
    assert "extended header of 1,048,577 bytes" in error.detail


@pytest.mark.parametrize("keyword", ["size", "GNU.sparse.size", "GNU.sparse.major"])
def test_global_records_that_resize_every_member_are_refused(keyword: str) -> None:
    stream = archive(pax_header({keyword: "1"}, tarfile.XGLTYPE), header("a"))
    assert "global PAX header" in refusal(stream).detail


@pytest.mark.parametrize("keyword", ["path", "linkpath"])
def test_global_records_that_rename_every_member_are_refused(keyword: str) -> None:
    stream = archive(pax_header({keyword: "x"}, tarfile.XGLTYPE), header("a"))
    assert refusal(stream).rule == "pax-name-override"


def test_a_global_header_between_a_members_headers_is_refused() -> None:
    stream = archive(
        pax_header({"mtime": "1"}), pax_header({"comment": "c"}, tarfile.XGLTYPE), header("a")
    )
    assert "inside a member's headers" in refusal(stream).detail


def test_global_headers_keep_only_the_mtime_that_applies() -> None:
    """Global records under distinct keywords, each header under the 1 MiB bound, were all
    kept (and merged into every later member's records): 16 MiB here, unbounded in all."""
    flood = b"".join(pax_header({f"k{n}": "v" * (256 << 10)}, tarfile.XGLTYPE) for n in range(64))
    mtimes = pax_header({"mtime": "5"}, tarfile.XGLTYPE), pax_header({"mtime": "7"})
    gz = gzip.compress(archive(flood, mtimes[0], header("a"), mtimes[1], header("b"), header("c")))
    tracemalloc.start()
    try:
        with open_tar(gz) as reader:
            seen = [(member.name, member.mtime) for member in reader.members()]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seen == [("a", 5), ("b", 7), ("c", 5)]
    assert peak < 8 << 20


@pytest.mark.parametrize("magic", [b"ustar  \0", bytes(8)], ids=["gnu", "v7"])
def test_a_name_prefix_outside_a_posix_ustar_header_is_refused(magic: bytes) -> None:
    """GNU tar joins the prefix field only to a POSIX ustar header's name, tarfile to any:
    the member would land in two places."""
    block = set_field(set_field(header("evil"), 345, b"opt/share"), 257, magic)
    assert "not POSIX ustar" in refusal(archive(block)).detail
    posix = set_field(header("fine"), 345, b"opt/share")
    assert [view[0] for view in ours(archive(posix))] == ["opt/share/fine"]
    if shutil.which("tar") is not None:
        listed = subprocess.run(
            ["tar", "-tf", "-"], input=archive(block, posix), capture_output=True, check=True
        )
        assert listed.stdout.split() == [b"evil", b"opt/share/fine"]


@pytest.mark.parametrize(
    "records", [{"GNU.sparse.map": "0,1"}, {"GNU.sparse.major": "1", "GNU.sparse.minor": "0"}]
)
def test_pax_sparse_files_are_marked_sparse(records: dict[str, str]) -> None:
    with open_tar(gzip.compress(archive(pax_header(records), header("s", size=0)))) as reader:
        (member,) = reader.members()
    assert member.sparse and member.isreg()


def test_damage_in_the_gzip_layer_is_refused() -> None:
    whole = bytearray(gzip.compress(archive(file_member("a", bytes(range(256)) * 40))))
    whole[len(whole) // 2] ^= 0xFF
    with pytest.raises(ArchiveRuleError) as caught, open_tar(bytes(whole)) as reader:
        for _member in reader.members():
            b"".join(reader.data())
        reader.check_end(lambda size: None)
    assert caught.value.rule == "unreadable-archive"
    with (
        pytest.raises(ArchiveRuleError) as not_gzip,
        open_tar(b"plain text, not gzip" * 30) as reader,
    ):
        list(reader.members())
    assert "not a gzip-compressed tar" in not_gzip.value.detail


def test_a_pax_mtime_of_nan_is_a_refusal_through_unpack(tmp_path: Path) -> None:
    """tarfile reads it as a float NaN, which the rules could not round: a traceback before."""
    tarball = spack_tarball(
        tmp_path / "t.spack",
        [Member(f"{PREFIX}/lib/x", data=b"x", pax={"mtime": "nan"})],
    )
    with pytest.raises(ArchiveError, match=r"rule 'unreadable-archive'.*'nan' is not a time"):
        unpack_package(tarball, tmp_path / "staging", signed_size=tarball.stat().st_size)
