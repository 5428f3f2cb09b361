"""Packing an installed prefix into a layout-v2 ``.spack`` tarball, the way Spack does.

Spack's shape (what its readers, and reconcile's, expect): one gzip-compressed PAX tar whose
member names are the absolute install paths without the leading ``/``; the parents of the
prefix come first as directory members; inside a folder, files and links come before
sub-folders, each group sorted by name; ``.spack/binary_distribution`` (the relocation
recipe) is the very last member. Nothing varies between runs: mtime 0, owner 0:0 with empty
names, gzip header without name or time. Publishing the same prefix twice therefore gives
byte-identical tarballs, and so the same checksum in the signed metadata.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import posixpath
import stat
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO, NamedTuple

import yaml

from reconcile.atomic_write import atomic_output
from reconcile.errors import ArchiveError, ReconcileError

METADATA_DIR = ".spack"
BUILD_INFO_NAME = "binary_distribution"
# Spack's choice: gzip's default level; 9 is much slower for about the same size.
GZIP_LEVEL = 6
# Parent folders of the prefix carry no information of their own; Spack writes them so.
PARENT_DIR_MODE = 0o755
# The mode of a symlink means nothing on Linux; Spack records 0o755.
SYMLINK_MODE = 0o755
_CHUNK = 1 << 20
_ELF_MAGIC = b"\x7fELF"
_ET_REL = 1


class RelocationScan(NamedTuple):
    """What the installer must rewrite, as paths relative to the prefix."""

    textfiles: tuple[str, ...]  # text files that mention an old prefix
    binaries: tuple[str, ...]  # ELF executables and libraries
    links: tuple[str, ...]  # symlinks whose absolute target lies under an old prefix


class _Entry(NamedTuple):
    path: Path
    relative: str  # "" for the prefix itself, else "a/b/c"
    status: os.stat_result


def _walk_tar_order(prefix: Path) -> Iterator[_Entry]:
    """The prefix and everything below it, without following symlinks: each folder, then its
    non-folder entries sorted by name, then its sub-folders, depth first, sorted by name."""
    pending: list[tuple[Path, str]] = [(prefix, "")]
    while pending:
        folder, relative = pending.pop()
        # Folders here are real ones (or the prefix itself, which may be reached via a link).
        yield _Entry(folder, relative, folder.stat())
        with os.scandir(folder) as scan:
            children = sorted(scan, key=lambda child: child.name)
        subfolders = []
        for child in children:
            child_relative = posixpath.join(relative, child.name) if relative else child.name
            if child.is_dir(follow_symlinks=False):
                subfolders.append((Path(child.path), child_relative))
            else:
                yield _Entry(Path(child.path), child_relative, child.stat(follow_symlinks=False))
        pending.extend(reversed(subfolders))


def _link_target(path: Path) -> str:
    # Not Path.readlink: a Path would normalize the target ("./x" -> "x", "a//b" -> "a/b").
    return os.readlink(path)  # noqa: PTH115


def _is_build_info(relative: str) -> bool:
    return relative == f"{METADATA_DIR}/{BUILD_INFO_NAME}"


def _read_signature(path: Path, needles: Sequence[bytes]) -> tuple[bytes, bool, bool]:
    """(first 20 bytes, contains a NUL byte, contains one of ``needles``), reading in chunks."""
    overlap = max((len(n) for n in needles), default=1) - 1
    head = b""
    has_nul = found = False
    tail = b""
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            if not head:
                head = chunk[:20]
            has_nul = has_nul or b"\0" in chunk
            window = tail + chunk
            found = found or any(n in window for n in needles)
            tail = window[-overlap:] if overlap else b""
    return head, has_nul, found


def _is_relocatable_elf(head: bytes, relative: str) -> bool:
    if not head.startswith(_ELF_MAGIC) or len(head) < 18:
        return False
    elf_type = int.from_bytes(head[16:18], "little" if head[5] == 1 else "big")
    # Spack leaves object files (``*.o``) alone: they are inputs to a link, not run.
    return not (elf_type == _ET_REL and relative.endswith(".o"))


def _under_any(target: str, prefixes: Sequence[str]) -> bool:
    return any(target == p or target.startswith(p.rstrip("/") + "/") for p in prefixes)


def scan_relocation(prefix: Path, old_prefixes: Sequence[str]) -> RelocationScan:
    """Classify the files of ``prefix`` for relocation, as ``spack buildcache push`` does.

    - binaries: every ELF file except ``*.o`` objects (Spack lists them all; the installer
      then rewrites only what starts with an old prefix);
    - textfiles: files without NUL bytes (and not ELF) that contain one of ``old_prefixes``;
    - links: symlinks whose target is absolute and lies under one of ``old_prefixes``.

    The ``.spack`` metadata folder is skipped, and a file hard-linked several times is listed
    once (its first path), since rewriting it rewrites all its names. Paths are relative and
    ordered as a sorted depth-first walk.
    """
    if not prefix.is_dir():
        raise ReconcileError(
            f"cannot scan {prefix}: it is not a folder",
            hint="pass the installed prefix of the package to publish",
            reference="prefix-missing",
        )
    try:
        return _scan(prefix, old_prefixes)
    except OSError as exc:
        raise _unreadable(prefix, exc) from exc


def _unreadable(prefix: Path, exc: OSError) -> ReconcileError:
    return ReconcileError(
        f"cannot read {exc.filename or prefix}: {exc.strerror or exc}",
        hint=f"publishing reads every file of {prefix}: run as a user who can read them all",
        reference="prefix-unreadable",
    )


def _scan(prefix: Path, old_prefixes: Sequence[str]) -> RelocationScan:
    needles = [os.fsencode(p) for p in old_prefixes if p]
    entries = sorted(
        (e for e in _walk_tar_order(prefix) if e.relative),
        key=lambda e: e.relative.split("/"),
    )
    textfiles: list[str] = []
    binaries: list[str] = []
    links: list[str] = []
    seen_inodes: set[tuple[int, int]] = set()
    for entry in entries:
        if entry.relative == METADATA_DIR or entry.relative.startswith(METADATA_DIR + "/"):
            continue
        mode = entry.status.st_mode
        if stat.S_ISLNK(mode):
            target = _link_target(entry.path)
            if target.startswith("/") and _under_any(target, old_prefixes):
                links.append(entry.relative)
            continue
        if not stat.S_ISREG(mode):
            continue
        if entry.status.st_nlink > 1:
            inode = (entry.status.st_dev, entry.status.st_ino)
            if inode in seen_inodes:
                continue
            seen_inodes.add(inode)
        head, has_nul, found = _read_signature(entry.path, needles)
        if _is_relocatable_elf(head, entry.relative):
            binaries.append(entry.relative)
        elif found and not has_nul and not head.startswith(_ELF_MAGIC):
            textfiles.append(entry.relative)
    return RelocationScan(tuple(textfiles), tuple(binaries), tuple(links))


def binary_distribution_yaml(
    *,
    buildpath: str,
    old_prefix: str,
    scan: RelocationScan,
    hash_to_prefix: Mapping[str, str],
    hardlinks_deduped: bool = True,
    sbang_install_path: str | None = None,
    spackprefix: str | None = None,
) -> str:
    """The text of ``.spack/binary_distribution``: flow-style YAML with Spack's keys, in
    Spack's order. ``hash_to_prefix`` maps DAG hashes to old prefixes, the package's own
    first, then its non-external dependencies. ``sbang_install_path`` and ``spackprefix``
    describe the Spack that built it; they are written only when known."""
    root = buildpath.rstrip("/")
    if not old_prefix.startswith(root + "/"):
        raise ReconcileError(
            f"the prefix {old_prefix} is not inside the install tree {buildpath}",
            hint="buildpath must be the install-tree root the prefix was installed under",
            reference="bad-buildpath",
        )
    info: dict[str, object] = {}
    if sbang_install_path is not None:
        info["sbang_install_path"] = sbang_install_path
    info["buildpath"] = buildpath
    if spackprefix is not None:
        info["spackprefix"] = spackprefix
    info["relative_prefix"] = posixpath.relpath(old_prefix, root)
    info["relocate_textfiles"] = list(scan.textfiles)
    info["relocate_binaries"] = list(scan.binaries)
    info["relocate_links"] = list(scan.links)
    info["hardlinks_deduped"] = hardlinks_deduped
    info["hash_to_prefix"] = dict(hash_to_prefix)
    text: str = yaml.safe_dump(
        info, default_flow_style=True, sort_keys=False, width=1 << 30, allow_unicode=True
    )
    return text


def _member_base(member_prefix: str) -> str:
    base = member_prefix.strip("/")
    parts = base.split("/")
    if not base or any(part in ("", ".", "..") for part in parts):
        raise ReconcileError(
            f"{member_prefix!r} cannot name a prefix inside a tarball: expected a normalized "
            "absolute path such as /opt/spack/linux-x86_64/gcc-12.2.0/name-1.0-hash",
            hint="pass the prefix the package was installed at (its old prefix)",
            reference="bad-prefix",
        )
    return base


def _parent_members(base: str) -> Iterator[tarfile.TarInfo]:
    parts = base.split("/")
    for depth in range(1, len(parts)):
        yield _directory("/".join(parts[:depth]), PARENT_DIR_MODE)


def _directory(name: str, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    return info


class _HashingWriter:
    """Writes through to ``target`` and keeps the sha256 of everything written."""

    def __init__(self, target: BinaryIO) -> None:
        self._target = target
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        return self._target.write(data)

    def flush(self) -> None:
        self._target.flush()


def _tar_members(prefix: Path, base: str) -> Iterator[tuple[tarfile.TarInfo, Path | None]]:
    """Members for everything under ``prefix`` (the prefix itself included)."""
    first_name_of_inode: dict[tuple[int, int], str] = {}
    for entry in _walk_tar_order(prefix):
        if _is_build_info(entry.relative):
            continue  # a stale recipe from an earlier push; the fresh one goes last
        name = f"{base}/{entry.relative}" if entry.relative else base
        mode = entry.status.st_mode
        if stat.S_ISDIR(mode):
            yield _directory(name, stat.S_IMODE(mode) & 0o777), None
            continue
        info = tarfile.TarInfo(name)
        if stat.S_ISLNK(mode):
            info.type = tarfile.SYMTYPE
            info.linkname = _link_target(entry.path)
            info.mode = SYMLINK_MODE
            yield info, None
            continue
        if not stat.S_ISREG(mode):
            raise ArchiveError(
                f"{entry.path} is neither a file, a folder nor a symlink "
                f"(mode {stat.filemode(mode)}): a binary cache cannot carry it",
                hint="remove device files, FIFOs and sockets from the prefix before publishing",
            )
        # Permission bits only: set-uid, set-gid and sticky bits are refused by readers.
        info.mode = stat.S_IMODE(mode) & 0o777
        inode = (entry.status.st_dev, entry.status.st_ino)
        if entry.status.st_nlink > 1 and inode in first_name_of_inode:
            info.type = tarfile.LNKTYPE
            info.linkname = first_name_of_inode[inode]
            yield info, None
            continue
        if entry.status.st_nlink > 1:
            first_name_of_inode[inode] = name
        info.size = entry.status.st_size
        yield info, entry.path


def write_tarball(
    prefix: Path, out: Path, *, member_prefix: str, build_info_yaml: str, root: Path | None = None
) -> str:
    """Write the ``.spack`` tarball of ``prefix`` to ``out`` (atomically); returns its sha256.
    With ``root`` (the mirror ``out`` is in), no folder below it is followed if a link.

    ``member_prefix`` is the absolute path the archive records for the prefix (its old
    prefix), which need not be where ``prefix`` is on this disk. Hard links inside the prefix
    are stored once, later names as hard-link members (``hardlinks_deduped``).
    """
    if not prefix.is_dir():
        raise ReconcileError(
            f"cannot pack {prefix}: it is not a folder",
            hint="pass the installed prefix of the package to publish",
            reference="prefix-missing",
        )
    base = _member_base(member_prefix)
    build_info = build_info_yaml.encode()
    try:
        with atomic_output(out, root=root) as raw:
            return _write_archive(prefix, base, build_info, raw)
    except OSError as exc:
        raise _packing_error(prefix, out, exc) from exc


def _packing_error(prefix: Path, out: Path, exc: OSError) -> ReconcileError:
    """Reading the prefix failed, or writing the tarball did (full disk, read-only mirror)."""
    failed = Path(exc.filename) if isinstance(exc.filename, str) else None
    if failed is not None and failed.is_relative_to(prefix):
        return _unreadable(prefix, exc)
    return ReconcileError(
        f"cannot write {out}: {exc.strerror or exc}",
        hint="check that the mirror folder is writable and has room",
        reference="mirror-unwritable",
    )


def _write_archive(prefix: Path, base: str, build_info: bytes, raw: BinaryIO) -> str:
    has_metadata_dir = (prefix / METADATA_DIR).is_dir() and not (prefix / METADATA_DIR).is_symlink()
    hashing = _HashingWriter(raw)
    with (
        gzip.GzipFile(
            filename="", mode="wb", compresslevel=GZIP_LEVEL, mtime=0, fileobj=hashing
        ) as compressed,
        tarfile.open(
            fileobj=compressed,
            mode="w",
            format=tarfile.PAX_FORMAT,
            encoding="utf-8",
            errors="surrogateescape",
        ) as tar,
    ):
        for parent in _parent_members(base):
            tar.addfile(parent)
        for info, source in _tar_members(prefix, base):
            if source is None:
                tar.addfile(info)
                continue
            with source.open("rb") as stream:
                tar.addfile(info, stream)
        if not has_metadata_dir:
            tar.addfile(_directory(f"{base}/{METADATA_DIR}", PARENT_DIR_MODE))
        recipe = tarfile.TarInfo(f"{base}/{METADATA_DIR}/{BUILD_INFO_NAME}")
        recipe.size = len(build_info)
        recipe.mode = 0o644
        tar.addfile(recipe, io.BytesIO(build_info))
    return hashing.sha256.hexdigest()
