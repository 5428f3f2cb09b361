"""The bundle as a tar archive: written deterministically, read only under the same member
rules as package tarballs (relative names that only descend, regular files and folders)."""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterator, Mapping
from functools import partial
from pathlib import Path

from reconcile.archive.names import member_parts
from reconcile.archive.violation import ArchiveRuleError
from reconcile.atomic_write import atomic_output
from reconcile.bundle.errors import BundleError
from reconcile.bundle.listing import (
    LISTING_NAME,
    MAX_LISTING_BYTES,
    FileDigest,
    parse_listing,
)
from reconcile.hashing import digest_stream

FILE_MODE = 0o644
FOLDER_MODE = 0o755
_REFUSED_HINT = "do not import this bundle; ask its sender for a new one"


def _info(name: str, *, folder: bool, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if folder else tarfile.REGTYPE
    info.mode = FOLDER_MODE if folder else FILE_MODE
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _entries(root: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted(root.rglob("*")):
        yield path.relative_to(root).as_posix(), path


def write_archive(root: Path, out: Path) -> None:
    """Tar ``root``'s folders and files into ``out`` (replaced atomically): listing first,
    then names in sorted order, with zero times and owners, so equal trees give equal bytes."""
    entries = sorted(_entries(root), key=lambda item: (item[0] != LISTING_NAME, item[0]))
    with (
        atomic_output(out) as raw,
        tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name, path in entries:
            if path.is_symlink() or not (path.is_dir() or path.is_file()):
                raise BundleError(
                    f"{path}: only folders and regular files can go into a bundle",
                    hint="this is a bug in the exporter; report it",
                )
            if path.is_dir():
                tar.addfile(_info(name, folder=True))
                continue
            with path.open("rb") as data:
                tar.addfile(_info(name, folder=False, size=path.stat().st_size), data)


def _open(bundle: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(bundle, mode="r:")
    except (OSError, tarfile.TarError) as exc:
        raise BundleError(
            f"{bundle}: cannot read it as an uncompressed tar archive ({exc})",
            hint="pass the file `reconcile bundle export` wrote",
        ) from exc


def _refuse(bundle: Path, detail: str) -> BundleError:
    return BundleError(f"{bundle}: refused: {detail}", hint=_REFUSED_HINT)


def _checked_members(bundle: Path, tar: tarfile.TarFile) -> Iterator[tuple[tarfile.TarInfo, str]]:
    seen: set[str] = set()
    try:
        for info in tar:
            try:
                name = "/".join(member_parts(info.name))
            except ArchiveRuleError as exc:
                raise _refuse(bundle, exc.detail) from exc
            if not (info.isreg() or info.isdir()):
                raise _refuse(bundle, f"member {info.name!r} is not a regular file or folder")
            if name in seen:
                raise _refuse(bundle, f"member {name!r} appears twice")
            seen.add(name)
            yield info, name
    except tarfile.TarError as exc:
        raise _refuse(bundle, f"the archive is damaged ({exc})") from exc


def _hash_member(
    tar: tarfile.TarFile, info: tarfile.TarInfo, sink: int | None = None
) -> FileDigest:
    stream = tar.extractfile(info)
    assert stream is not None  # regular files always have data
    return digest_stream(stream, sink=None if sink is None else partial(_write_all, sink))


def _write_all(fd: int, chunk: bytes) -> None:
    view = memoryview(chunk)
    while view:
        view = view[os.write(fd, view) :]


def _compare(
    bundle: Path, listed: Mapping[str, FileDigest], found: Mapping[str, FileDigest]
) -> None:
    for name in sorted(set(listed) | set(found)):
        if name not in found:
            raise _refuse(bundle, f"{LISTING_NAME} lists {name!r}, which the archive lacks")
        if name not in listed:
            raise _refuse(bundle, f"member {name!r} is not listed in {LISTING_NAME}")
        if listed[name] != found[name]:
            raise _refuse(
                bundle,
                f"member {name!r} has sha256 {found[name].sha256} ({found[name].size} bytes), "
                f"but {LISTING_NAME} says {listed[name].sha256} ({listed[name].size} bytes)",
            )


def scan_archive(bundle: Path) -> dict[str, FileDigest]:
    """Read the archive once, without writing anything: every member must be safe and every
    file must match ``bundle.json``. Returns the listing."""
    listing: bytes | None = None
    found: dict[str, FileDigest] = {}
    with _open(bundle) as tar:
        for info, name in _checked_members(bundle, tar):
            if not info.isreg():
                continue
            if name == LISTING_NAME:
                if info.size > MAX_LISTING_BYTES:
                    raise _refuse(bundle, f"{LISTING_NAME} is {info.size} bytes, over the limit")
                stream = tar.extractfile(info)
                assert stream is not None
                listing = stream.read()
                continue
            found[name] = _hash_member(tar, info)
    if listing is None:
        raise _refuse(bundle, f"it has no {LISTING_NAME}")
    listed = parse_listing(listing)
    _compare(bundle, listed, found)
    return listed


def unpack_archive(bundle: Path, into: Path, listed: Mapping[str, FileDigest]) -> None:
    """Write the members into the empty folder ``into``, checking each file against the
    listing again as it is written (the archive may have changed since it was scanned)."""
    found: dict[str, FileDigest] = {}
    with _open(bundle) as tar:
        for info, name in _checked_members(bundle, tar):
            target = into.joinpath(*name.split("/"))
            if info.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(target, flags, FILE_MODE)
            try:
                digest = _hash_member(tar, info, sink=fd)
            finally:
                os.close(fd)
            if name != LISTING_NAME:
                found[name] = digest
    _compare(bundle, listed, found)
