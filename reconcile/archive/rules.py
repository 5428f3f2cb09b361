"""The archive rules: what each member may be, and what the whole archive must look like.

Pure bookkeeping, no I/O. ``MemberTable.admit`` checks a member as it streams past and says
what to create; ``MemberTable.finish`` runs the checks that need the package prefix, which
is only known once ``.spack/binary_distribution`` (the last member in Spack's tarballs) has
been seen.
"""

from __future__ import annotations

import enum
import stat

import attrs

from reconcile.archive import violation as rules
from reconcile.archive.names import (
    Parts,
    display,
    header_stands_for,
    lexically_inside,
    member_parts,
)
from reconcile.archive.symlinks import escape_reason
from reconcile.archive.tar_headers import (
    BLOCK_DEVICE,
    CHARACTER_DEVICE,
    FIFO,
    TarMember,
)
from reconcile.archive.violation import ArchiveRuleError
from reconcile.reprs import fields_repr

BINARY_DISTRIBUTION = (".spack", "binary_distribution")

# The kernel refuses a symlink whose target, with its NUL, exceeds PATH_MAX.
MAX_SYMLINK_TARGET_BYTES = 4096

# Folders that members imply without listing them get what ``mkdir -p`` would give.
IMPLIED_DIRECTORY_MODE = 0o755

_SPECIAL_TYPES = {
    CHARACTER_DEVICE: "a character device",
    BLOCK_DEVICE: "a block device",
    FIFO: "a FIFO",
}


class Kind(enum.Enum):
    DIRECTORY = "directory"
    IMPLIED_DIRECTORY = "implied directory"
    FILE = "regular file"
    SYMLINK = "symlink"
    HARD_LINK = "hard link"


_FOLDER_KINDS = (Kind.DIRECTORY, Kind.IMPLIED_DIRECTORY)


@attrs.frozen(kw_only=True)
class Entry:
    """What the table remembers of one member (or of a folder a member implied)."""

    __repr__ = fields_repr

    kind: Kind
    mode: int  # permission bits from the archive
    mtime_ns: int | None  # None for implied folders
    link_target: str = ""  # symlink: the target as written


@attrs.frozen(kw_only=True)
class Admission:
    """What to create for one admitted member, in this order."""

    __repr__ = fields_repr

    parts: Parts
    kind: Kind
    implied_parents: tuple[Parts, ...]  # folders to create first, outermost first
    create: bool  # False when a directory member only gives a mode to an implied folder
    mode: int
    mtime_ns: int
    link_target: str = ""  # symlink target, as written
    hard_link_to: Parts = ()


@attrs.frozen(kw_only=True)
class DirectoryMode:
    """A folder of the prefix and what its mode and mtime become once unpacking is over."""

    __repr__ = fields_repr

    parts: Parts  # relative to the prefix; () is the prefix itself
    mode: int  # permission bits, as in the archive (the umask is applied when restoring)
    mtime_ns: int | None


@attrs.frozen(kw_only=True)
class Layout:
    """The archive as a whole, once every member passed."""

    __repr__ = fields_repr

    prefix: Parts  # the package prefix as named in the archive
    binary_distribution: Parts
    directories: tuple[DirectoryMode, ...]  # the prefix's folders, the prefix itself included
    skeleton: tuple[Parts, ...]  # the prefix's parent folders, outermost first


class MemberTable:
    """Every member seen so far, keyed by its normalised name."""

    def __init__(self) -> None:
        self._entries: dict[Parts, Entry] = {}

    def admit(self, info: TarMember) -> Admission:
        """Check one member against every rule that does not need the prefix."""
        parts = member_parts(info.name)
        _refuse_overridden_names(info)
        kind = _kind_of(info)
        _refuse_special_bits(info, kind)
        implied = self._implied_parents(info.name, parts)
        create = self._claim_name(info.name, parts, kind)
        mtime_ns = round(info.mtime * 1_000_000_000)
        mode = stat.S_IMODE(info.mode)
        link_target = ""
        hard_link_to: Parts = ()
        if kind is Kind.SYMLINK:
            link_target = _symlink_target(info, parts)
        elif kind is Kind.HARD_LINK:
            hard_link_to = self._hard_link_target(info)
        for parent in implied:
            self._entries[parent] = Entry(
                kind=Kind.IMPLIED_DIRECTORY, mode=IMPLIED_DIRECTORY_MODE, mtime_ns=None
            )
        self._entries[parts] = Entry(
            kind=kind, mode=mode, mtime_ns=mtime_ns, link_target=link_target
        )
        return Admission(
            parts=parts,
            kind=kind,
            implied_parents=implied,
            create=create,
            mode=mode,
            mtime_ns=mtime_ns,
            link_target=link_target,
            hard_link_to=hard_link_to,
        )

    def finish(self) -> Layout:
        """The checks that need the package prefix; raises on the first member that fails."""
        binary_distribution = self._binary_distribution()
        prefix = binary_distribution[: -len(BINARY_DISTRIBUTION)]
        skeleton: list[Parts] = []
        directories: list[DirectoryMode] = []
        for parts, entry in self._entries.items():
            if parts[: len(prefix)] != prefix:
                if prefix[: len(parts)] != parts:
                    raise ArchiveRuleError(
                        rules.OUTSIDE_PREFIX,
                        display(parts),
                        f"it lies outside the package prefix {display(prefix)!r} (marked by "
                        f"{display(binary_distribution)!r}) and is not one of its parent folders",
                    )
                skeleton.append(parts)  # a parent folder: admit() only lets folders have children
                continue
            relative = parts[len(prefix) :]
            if entry.kind in (Kind.DIRECTORY, Kind.IMPLIED_DIRECTORY):
                directories.append(
                    DirectoryMode(parts=relative, mode=entry.mode, mtime_ns=entry.mtime_ns)
                )
            elif entry.kind is Kind.SYMLINK and not entry.link_target.startswith("/"):
                self._refuse_escaping_symlink(prefix, parts, entry.link_target)
        skeleton.sort(key=len)
        return Layout(
            prefix=prefix,
            binary_distribution=binary_distribution,
            directories=tuple(directories),
            skeleton=tuple(skeleton),
        )

    def _implied_parents(self, name: str, parts: Parts) -> tuple[Parts, ...]:
        folder = self._entries.get(parts[:-1])
        if folder is not None and folder.kind in _FOLDER_KINDS:
            # Its own parents were checked when it was admitted, and an entry never changes
            # kind but from implied folder to folder: the common case, one lookup.
            return ()
        implied: list[Parts] = []
        for depth in range(1, len(parts)):
            parent = parts[:depth]
            entry = self._entries.get(parent)
            if entry is None:
                implied.append(parent)
            elif entry.kind is Kind.SYMLINK:
                raise ArchiveRuleError(
                    rules.THROUGH_SYMLINK,
                    name,
                    f"it would be written through the earlier symlink {display(parent)!r} "
                    f"(-> {entry.link_target!r}); expected only real folders on its path",
                )
            elif entry.kind not in (Kind.DIRECTORY, Kind.IMPLIED_DIRECTORY):
                raise ArchiveRuleError(
                    rules.UNDER_NON_DIRECTORY,
                    name,
                    f"its parent {display(parent)!r} is an earlier {entry.kind.value}, "
                    "not a folder",
                )
        return tuple(implied)

    def _claim_name(self, name: str, parts: Parts, kind: Kind) -> bool:
        """Whether the member must be created (False: a folder already implied by others)."""
        earlier = self._entries.get(parts)
        if earlier is None:
            return True
        if earlier.kind is Kind.IMPLIED_DIRECTORY and kind is Kind.DIRECTORY:
            return False
        what = (
            "a folder implied by earlier members"
            if earlier.kind is Kind.IMPLIED_DIRECTORY
            else f"an earlier {earlier.kind.value} member"
        )
        raise ArchiveRuleError(
            rules.DUPLICATE_NAME,
            name,
            f"this {kind.value} has the same name as {what}; expected every name once",
        )

    def _hard_link_target(self, info: TarMember) -> Parts:
        target = member_parts(info.linkname, what="hard link target", member=info.name)
        entry = self._entries.get(target)
        if entry is None or entry.kind is not Kind.FILE:
            found = "nothing" if entry is None else f"a {entry.kind.value}"
            raise ArchiveRuleError(
                rules.HARD_LINK_TARGET,
                info.name,
                f"it links to {info.linkname!r}, which is {found}; expected an earlier regular "
                "file member inside the package prefix",
            )
        return target

    def _binary_distribution(self) -> Parts:
        candidates = [
            parts
            for parts, entry in self._entries.items()
            if entry.kind is Kind.FILE
            and len(parts) > len(BINARY_DISTRIBUTION)
            and parts[-len(BINARY_DISTRIBUTION) :] == BINARY_DISTRIBUTION
        ]
        if not candidates:
            raise ArchiveRuleError(
                rules.MISSING_BINARY_DISTRIBUTION,
                "",
                "no regular file member named '<prefix>/.spack/binary_distribution'; "
                "expected one to mark the package prefix",
            )
        return min(candidates, key=lambda parts: (len(display(parts)), parts))

    def _refuse_escaping_symlink(self, prefix: Parts, parts: Parts, target: str) -> None:
        def read_link(relative: Parts) -> str | None:
            entry = self._entries.get(prefix + relative)
            return entry.link_target if entry is not None and entry.kind is Kind.SYMLINK else None

        reason = escape_reason(parts[len(prefix) : -1], target, read_link)
        if reason is not None:
            raise ArchiveRuleError(
                rules.SYMLINK_ESCAPE,
                display(parts),
                f"its relative target {target!r} leaves the package prefix: {reason}",
            )


def _kind_of(info: TarMember) -> Kind:
    if info.isdir():
        return Kind.DIRECTORY
    if info.issym():
        return Kind.SYMLINK
    if info.islnk():
        return Kind.HARD_LINK
    if info.isreg():
        if info.sparse:
            raise ArchiveRuleError(
                rules.SPARSE_FILE, info.name, "a GNU sparse file; Spack never writes them"
            )
        return Kind.FILE
    found = _SPECIAL_TYPES.get(info.type, f"of unknown type {info.type!r}")
    raise ArchiveRuleError(
        rules.SPECIAL_FILE,
        info.name,
        f"it is {found}; expected a regular file, folder, symlink or hard link",
    )


def _refuse_special_bits(info: TarMember, kind: Kind) -> None:
    special = info.mode & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX)
    if special:
        names = [
            label
            for bit, label in (
                (stat.S_ISUID, "set-uid"),
                (stat.S_ISGID, "set-gid"),
                (stat.S_ISVTX, "sticky"),
            )
            if special & bit
        ]
        raise ArchiveRuleError(
            rules.SPECIAL_MODE_BITS,
            info.name,
            f"this {kind.value} has mode {info.mode:04o} ({', '.join(names)}); "
            "expected permission bits only",
        )


def _refuse_overridden_names(info: TarMember) -> None:
    header_name = info.header_name
    if not header_stands_for(header_name, info.name):
        raise ArchiveRuleError(
            rules.PAX_NAME_OVERRIDE,
            info.name,
            f"a PAX or GNU long-name record renames the member from its header name "
            f"{header_name!r}; expected the record to repeat the header's name",
        )
    header_linkname = info.header_linkname
    if not header_stands_for(header_linkname, info.linkname):
        raise ArchiveRuleError(
            rules.PAX_NAME_OVERRIDE,
            info.name,
            f"a PAX or GNU long-link record changes the link target from {header_linkname!r} "
            f"to {info.linkname!r}; expected the record to repeat the header's target",
        )


def _symlink_target(info: TarMember, parts: Parts) -> str:
    target = info.linkname
    if not target:
        raise ArchiveRuleError(rules.SYMLINK_ESCAPE, info.name, "the symlink has an empty target")
    if "\x00" in target:
        raise ArchiveRuleError(rules.NUL_IN_NAME, info.name, "the symlink target holds a NUL byte")
    size = len(target.encode("utf-8", "surrogateescape"))
    if size >= MAX_SYMLINK_TARGET_BYTES:
        raise ArchiveRuleError(
            rules.NAME_TOO_LONG,
            info.name,
            f"the symlink target is {size:,} bytes long; expected fewer than "
            f"{MAX_SYMLINK_TARGET_BYTES:,} (PATH_MAX: the link could not be made)",
        )
    if not target.startswith("/") and not lexically_inside(parts[:-1], target):
        raise ArchiveRuleError(
            rules.SYMLINK_ESCAPE,
            info.name,
            f"its relative target {target!r} climbs out of the archive",
        )
    return target
