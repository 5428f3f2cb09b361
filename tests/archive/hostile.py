"""Builders of hostile ``.spack`` tarballs (layout v2: gzip tar, absolute install paths
without the leading ``/``, ``.spack/binary_distribution`` last), one function per attack.

Plain functions, standard library only, so that other tests (the integration tests serve
these from a mirror) can import this file. Every attack writes a complete tarball around a
well-formed package with a valid ``binary_distribution``, so that only the attack is wrong.
``ATTACKS`` lists them with the archive rule that must refuse them and the stage that does.
"""

from __future__ import annotations

import gzip
import os
import tarfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

DAG_HASH = "hstlpkgaaaabbbbccccddddeeeeffff2"
INSTALL_ROOT = "opt/hostile"
PREFIX = f"{INSTALL_ROOT}/victim-1.0-{DAG_HASH}"  # as named in the archive, no leading "/"
# The name an escaping member tries to create; tests check it appears nowhere.
ESCAPED = "reconcile-hostile-escaped"
MTIME = 1_700_000_000


@dataclass(frozen=True)
class Member:
    """One member as it should appear in the tar stream, however malformed."""

    name: str
    kind: str = "file"  # file, dir, symlink, hardlink, chr, blk, fifo; else a raw type code
    data: bytes = b""
    mode: int | None = None  # default: 0o644 files, 0o755 folders, 0o777 symlinks
    linkname: str = ""
    pax: Mapping[str, str] = field(default_factory=dict)  # PAX records for this member
    gnu_longname: str | None = None  # a GNU long-name record placed before the header
    mtime: float = MTIME


_TYPES = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "chr": tarfile.CHRTYPE,
    "blk": tarfile.BLKTYPE,
    "fifo": tarfile.FIFOTYPE,
}
_DEFAULT_MODES = {"dir": 0o755, "symlink": 0o777}


def build_tarball(
    path: Path,
    members: Iterable[Member],
    *,
    global_pax: Mapping[str, str] | None = None,
    tail: bytes = b"",
) -> Path:
    """Write ``members``, in order and exactly as given, as a gzip-compressed tar; ``tail``
    goes after the end-of-archive blocks. A member of kind ``raw`` is its data, as is."""
    stream = bytearray()
    if global_pax:
        stream += tarfile.TarInfo.create_pax_global_header(dict(global_pax))
    for member in members:
        stream += member.data if member.kind == "raw" else _member_blocks(member)
    stream += bytes(2 * tarfile.BLOCKSIZE) + tail
    with gzip.open(path, "wb") as out:
        out.write(stream)
    return path


def _member_blocks(member: Member) -> bytes:
    info = tarfile.TarInfo(member.name)
    info.type = _TYPES.get(member.kind) or member.kind.encode()
    info.mode = member.mode if member.mode is not None else _DEFAULT_MODES.get(member.kind, 0o644)
    info.mtime = member.mtime
    info.linkname = member.linkname
    info.size = len(member.data) if member.kind == "file" else 0
    if member.kind in ("chr", "blk"):
        info.devmajor, info.devminor = 1, 3  # /dev/null
    info.pax_headers = dict(member.pax)
    blocks = b""
    if member.gnu_longname is not None:
        blocks += _gnu_long_name_record(member.gnu_longname)
    blocks += info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    if info.size:
        blocks += _padded(member.data)
    return blocks


def _gnu_long_name_record(name: str) -> bytes:
    payload = name.encode() + b"\0"
    record = tarfile.TarInfo("././@LongLink")
    record.type = tarfile.GNUTYPE_LONGNAME
    record.size = len(payload)
    return record.tobuf(tarfile.GNU_FORMAT) + _padded(payload)


def _padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % tarfile.BLOCKSIZE)


# -- a well-formed package -------------------------------------------------------------------


def binary_distribution_text(prefix: str = PREFIX, dag_hash: str = DAG_HASH) -> str:
    """A ``binary_distribution`` in the flow style Spack writes."""
    root = "/" + prefix.rsplit("/", 1)[0]
    return (
        f"{{buildpath: {root}, relative_prefix: {prefix.rsplit('/', 1)[1]}, "
        "relocate_textfiles: [share/victim/readme.txt], relocate_binaries: [], "
        "relocate_links: [], hardlinks_deduped: true, "
        f"hash_to_prefix: {{{dag_hash}: /{prefix}}}}}\n"
    )


def parent_folders(prefix: str = PREFIX) -> list[Member]:
    """The folders from the archive root down to the prefix itself, as Spack lists them."""
    parts = prefix.split("/")
    return [Member("/".join(parts[:depth]), "dir") for depth in range(1, len(parts) + 1)]


def package_body(prefix: str = PREFIX) -> list[Member]:
    """What a small package holds below its prefix (not its binary_distribution)."""
    return [
        Member(f"{prefix}/.spack", "dir"),
        Member(f"{prefix}/bin", "dir"),
        Member(f"{prefix}/bin/tool", data=b"#!/bin/sh\necho tool\n", mode=0o755),
        Member(f"{prefix}/lib", "dir"),
        Member(f"{prefix}/lib/libvictim.so.1", data=b"\x7fELF not really\n", mode=0o755),
        Member(f"{prefix}/lib/libvictim.so", "symlink", linkname="libvictim.so.1"),
        Member(f"{prefix}/share", "dir"),
        Member(f"{prefix}/share/victim", "dir"),
        Member(f"{prefix}/share/victim/readme.txt", data=f"installed in /{prefix}\n".encode()),
    ]


def binary_distribution(prefix: str = PREFIX, text: str | None = None) -> Member:
    data = (text if text is not None else binary_distribution_text(prefix)).encode()
    return Member(f"{prefix}/.spack/binary_distribution", data=data)


def spack_tarball(
    path: Path,
    extra: Sequence[Member] = (),
    *,
    prefix: str = PREFIX,
    metadata: Member | None = None,
    global_pax: Mapping[str, str] | None = None,
    tail: bytes = b"",
) -> Path:
    """A package tarball laid out like Spack's, with ``extra`` members before the
    binary_distribution (which is always last, as in Spack's own tarballs)."""
    members = [
        *parent_folders(prefix),
        *package_body(prefix),
        *extra,
        metadata if metadata is not None else binary_distribution(prefix),
    ]
    return build_tarball(path, members, global_pax=global_pax, tail=tail)


# -- the attacks -----------------------------------------------------------------------------


def path_traversal(path: Path) -> Path:
    """A member whose ``..`` components climb from the prefix to the filesystem root."""
    climb = "../" * 40
    return spack_tarball(path, [Member(f"{PREFIX}/{climb}tmp/{ESCAPED}", data=b"pwned\n")])


def absolute_member(path: Path) -> Path:
    return spack_tarball(path, [Member(f"/tmp/{ESCAPED}", data=b"pwned\n")])


def symlink_escape_relative(path: Path) -> Path:
    """A relative symlink that climbs out of the archive towards /etc/passwd."""
    target = "../" * 40 + "etc/passwd"
    return spack_tarball(path, [Member(f"{PREFIX}/lib/passwd", "symlink", linkname=target)])


def symlink_escape_sibling(path: Path) -> Path:
    """A relative symlink that stays in the archive but leaves the package prefix."""
    return spack_tarball(
        path, [Member(f"{PREFIX}/lib/neighbour", "symlink", linkname="../../other-1.0/lib")]
    )


def symlink_escape_through_dot(path: Path) -> Path:
    """``s -> .`` then ``t -> s/s/s/../../../x``: lexically inside, but the kernel climbs
    three folders from ``lib`` and lands outside the prefix."""
    return spack_tarball(
        path,
        [
            Member(f"{PREFIX}/lib/s", "symlink", linkname="."),
            Member(f"{PREFIX}/lib/t", "symlink", linkname="s/s/s/../../../x"),
        ],
    )


def symlink_escape_absolute(path: Path) -> Path:
    """An absolute symlink to /etc/passwd: unpacked as is, refused by ``check_symlinks``."""
    return spack_tarball(
        path, [Member(f"{PREFIX}/share/victim/passwd", "symlink", linkname="/etc/passwd")]
    )


def write_through_symlink(path: Path) -> Path:
    """A symlink to /tmp, then a file written through it."""
    return spack_tarball(
        path,
        [
            Member(f"{PREFIX}/lib/tmp", "symlink", linkname="/tmp"),
            Member(f"{PREFIX}/lib/tmp/{ESCAPED}", data=b"pwned\n"),
        ],
    )


def write_through_relative_symlink(path: Path) -> Path:
    """A relative symlink to the prefix's parent, then a file written through it."""
    return spack_tarball(
        path,
        [
            Member(f"{PREFIX}/lib/up", "symlink", linkname="../.."),
            Member(f"{PREFIX}/lib/up/{ESCAPED}", data=b"pwned\n"),
        ],
    )


def hardlink_outside(path: Path) -> Path:
    """A hard link to /etc/passwd, named as the archive names paths."""
    return spack_tarball(path, [Member(f"{PREFIX}/lib/passwd", "hardlink", linkname="etc/passwd")])


def hardlink_absolute(path: Path) -> Path:
    return spack_tarball(path, [Member(f"{PREFIX}/lib/passwd", "hardlink", linkname="/etc/passwd")])


def hardlink_to_symlink(path: Path) -> Path:
    """A hard link to an earlier symlink (which would pin the link, not a file)."""
    return spack_tarball(
        path, [Member(f"{PREFIX}/lib/pinned", "hardlink", linkname=f"{PREFIX}/lib/libvictim.so")]
    )


def duplicate_member(path: Path) -> Path:
    """The same file twice: the second copy would silently replace the first."""
    return spack_tarball(
        path, [Member(f"{PREFIX}/bin/tool", data=b"#!/bin/sh\necho evil\n", mode=0o755)]
    )


def file_after_directory(path: Path) -> Path:
    return spack_tarball(path, [Member(f"{PREFIX}/share/victim", data=b"not a folder\n")])


def pax_path_override(path: Path) -> Path:
    """A PAX ``path`` record that renames a member whose header name fits the ustar field."""
    return spack_tarball(
        path,
        [
            Member(
                f"{PREFIX}/share/victim/notes.txt",
                data=b"harmless\n",
                pax={"path": f"{PREFIX}/bin/tool-replaced"},
            )
        ],
    )


def pax_linkpath_override(path: Path) -> Path:
    """A PAX ``linkpath`` record that re-points a symlink the header shows as harmless."""
    return spack_tarball(
        path,
        [
            Member(
                f"{PREFIX}/lib/libother.so",
                "symlink",
                linkname="libvictim.so.1",
                pax={"linkpath": "/etc/shadow"},
            )
        ],
    )


def pax_global_path(path: Path) -> Path:
    """A global PAX header whose ``path`` would rename every member that follows."""
    return spack_tarball(path, global_pax={"path": f"{PREFIX}/bin/tool"})


def gnu_longname_override(path: Path) -> Path:
    """A GNU long-name record that renames a member whose header name is short."""
    return spack_tarball(
        path,
        [Member(f"{PREFIX}/share/victim/a.txt", data=b"x\n", gnu_longname=f"{PREFIX}/bin/evil")],
    )


def setuid_file(path: Path) -> Path:
    return spack_tarball(path, [Member(f"{PREFIX}/bin/su-helper", data=b"\x7fELF\n", mode=0o4755)])


def setgid_dir(path: Path) -> Path:
    return spack_tarball(path, [Member(f"{PREFIX}/shared", "dir", mode=0o2775)])


def sticky_dir(path: Path) -> Path:
    return spack_tarball(path, [Member(f"{PREFIX}/scratch", "dir", mode=0o1777)])


def char_device(path: Path) -> Path:
    return spack_tarball(path, [Member(f"{PREFIX}/lib/null", "chr", mode=0o666)])


def block_device(path: Path) -> Path:
    return spack_tarball(path, [Member(f"{PREFIX}/lib/disk", "blk", mode=0o660)])


def fifo(path: Path) -> Path:
    return spack_tarball(path, [Member(f"{PREFIX}/lib/pipe", "fifo", mode=0o644)])


def member_outside_prefix(path: Path) -> Path:
    """A file beside the package prefix, in the install root."""
    return spack_tarball(path, [Member(f"{INSTALL_ROOT}/{ESCAPED}", data=b"pwned\n")])


def missing_binary_distribution(path: Path) -> Path:
    return build_tarball(path, [*parent_folders(), *package_body()])


def binary_distribution_symlink(path: Path) -> Path:
    """The marker is a symlink, not a file: it marks nothing."""
    return spack_tarball(
        path,
        metadata=Member(f"{PREFIX}/.spack/binary_distribution", "symlink", linkname="/etc/passwd"),
    )


def bad_binary_distribution(path: Path) -> Path:
    return spack_tarball(path, metadata=binary_distribution(text="{buildpath: [unclosed\n"))


def under_regular_file(path: Path) -> Path:
    return spack_tarball(path, [Member(f"{PREFIX}/bin/tool/inner", data=b"x\n")])


def nul_in_pax_path(path: Path) -> Path:
    name = f"{PREFIX}/share/victim/long-" + "n" * 60
    return spack_tarball(path, [Member(name, data=b"x\n", pax={"path": name + "\x00.txt"})])


# -- attacks on the work reconcile does (bounds) ------------------------------------------------

# Deeper than Python's recursion limit, and than any real package.
NESTING_LEVELS = 1100
# Unpacks to far more than max_unpack_ratio (50) times its compressed size.
ZERO_FILE_BYTES = 20 << 20


def junk_after_end(path: Path) -> Path:
    """GNU tar refuses data after the end-of-archive blocks; tarfile would ignore it."""
    return spack_tarball(path, tail=b"JUNK" * 128)


def junk_header_in_middle(path: Path) -> Path:
    """A garbage header block between members: tarfile would take it for the end and drop
    the binary_distribution after it; here it is moved before, so only the junk is wrong."""
    garbage = Member("", kind="raw", data=b"\xa5" * tarfile.BLOCKSIZE)
    members = [*parent_folders(), *package_body(), binary_distribution(), garbage]
    members.append(Member(f"{PREFIX}/share/victim/after-junk", data=b"dropped?\n"))
    return build_tarball(path, members)


def lone_zero_block_then_member(path: Path) -> Path:
    """One zero block, then more members: tarfile stops at the zero block."""
    members = [*parent_folders(), *package_body(), binary_distribution()]
    members.append(Member("", kind="raw", data=bytes(tarfile.BLOCKSIZE)))
    members.append(Member(f"{PREFIX}/share/victim/hidden", data=b"hidden\n"))
    return build_tarball(path, members)


def garbage_after_gzip(path: Path) -> Path:
    spack_tarball(path)
    with path.open("ab") as out:
        out.write(b"trailing garbage after the gzip stream")
    return path


def zero_bomb(path: Path) -> Path:
    """A file of zeros that compresses ~1000:1: a 20 KiB tarball that unpacks to 20 MiB."""
    return spack_tarball(path, [Member(f"{PREFIX}/lib/zeros", data=bytes(ZERO_FILE_BYTES))])


def deep_nesting(path: Path) -> Path:
    folders = [f"{PREFIX}/d" + "/d" * depth for depth in range(NESTING_LEVELS)]
    members = [Member(folder, "dir") for folder in folders]
    members.append(Member(f"{folders[-1]}/bottom", data=b"deep\n"))
    return spack_tarball(path, members)


def yaml_alias_bomb(path: Path) -> Path:
    """A "billion laughs" binary_distribution: 9 levels of aliases, a few hundred bytes."""
    lines = ['l0: &l0 ["lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [*l{i - 1}, *l{i - 1}, *l{i - 1}]" for i in range(1, 10)]
    text = (
        binary_distribution_text().rstrip("\n").rstrip("}")
        + ", "
        + ", ".join(line.replace(": ", ": ", 1) for line in lines)
    )
    return spack_tarball(path, metadata=binary_distribution(text=text + "}\n"))


def yaml_deep_nesting(path: Path) -> Path:
    """Nesting that crashes libyaml's recursive composer (a segfault, not an exception)."""
    text = binary_distribution_text().rstrip("\n").rstrip("}")
    text += ", extra: " + "[" * 60_000 + "]" * 60_000 + "}\n"
    # Random bytes do not compress: they keep the 120 KB of brackets within the unpack ratio.
    noise = Member(f"{PREFIX}/lib/noise", data=os.urandom(16 << 10))
    return spack_tarball(path, [noise], metadata=binary_distribution(text=text))


@dataclass(frozen=True)
class Attack:
    build: Callable[[Path], Path]
    rule: str  # the rule named in the refusal
    stage: str = "unpack"  # "unpack", or "check_symlinks" (refused after relocation)


ATTACKS: dict[str, Attack] = {
    "path_traversal": Attack(path_traversal, "parent-component"),
    "absolute_member": Attack(absolute_member, "absolute-name"),
    "symlink_escape_relative": Attack(symlink_escape_relative, "symlink-escape"),
    "symlink_escape_sibling": Attack(symlink_escape_sibling, "symlink-escape"),
    "symlink_escape_through_dot": Attack(symlink_escape_through_dot, "symlink-escape"),
    "symlink_escape_absolute": Attack(symlink_escape_absolute, "symlink", "check_symlinks"),
    "write_through_symlink": Attack(write_through_symlink, "through-symlink"),
    "write_through_relative_symlink": Attack(write_through_relative_symlink, "through-symlink"),
    "hardlink_outside": Attack(hardlink_outside, "hard-link-target"),
    "hardlink_absolute": Attack(hardlink_absolute, "absolute-name"),
    "hardlink_to_symlink": Attack(hardlink_to_symlink, "hard-link-target"),
    "duplicate_member": Attack(duplicate_member, "duplicate-name"),
    "file_after_directory": Attack(file_after_directory, "duplicate-name"),
    "pax_path_override": Attack(pax_path_override, "pax-name-override"),
    "pax_linkpath_override": Attack(pax_linkpath_override, "pax-name-override"),
    "pax_global_path": Attack(pax_global_path, "pax-name-override"),
    "gnu_longname_override": Attack(gnu_longname_override, "pax-name-override"),
    "setuid_file": Attack(setuid_file, "special-mode-bits"),
    "setgid_dir": Attack(setgid_dir, "special-mode-bits"),
    "sticky_dir": Attack(sticky_dir, "special-mode-bits"),
    "char_device": Attack(char_device, "special-file"),
    "block_device": Attack(block_device, "special-file"),
    "fifo": Attack(fifo, "special-file"),
    "member_outside_prefix": Attack(member_outside_prefix, "outside-prefix"),
    "missing_binary_distribution": Attack(
        missing_binary_distribution, "missing-binary-distribution"
    ),
    "binary_distribution_symlink": Attack(
        binary_distribution_symlink, "missing-binary-distribution"
    ),
    "bad_binary_distribution": Attack(bad_binary_distribution, "bad-binary-distribution"),
    "under_regular_file": Attack(under_regular_file, "under-non-directory"),
    "nul_in_pax_path": Attack(nul_in_pax_path, "nul-in-name"),
    "junk_after_end": Attack(junk_after_end, "data-after-end"),
    "junk_header_in_middle": Attack(junk_header_in_middle, "unreadable-archive"),
    "lone_zero_block_then_member": Attack(lone_zero_block_then_member, "data-after-end"),
    "garbage_after_gzip": Attack(garbage_after_gzip, "data-after-end"),
    "zero_bomb": Attack(zero_bomb, "unpacked-size"),
    "deep_nesting": Attack(deep_nesting, "too-deep"),
    "yaml_alias_bomb": Attack(yaml_alias_bomb, "bad-binary-distribution"),
    "yaml_deep_nesting": Attack(yaml_deep_nesting, "bad-binary-distribution"),
}
