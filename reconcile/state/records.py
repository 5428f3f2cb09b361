"""Install records: what reconcile put into a prefix, file by file.

A record lives at ``<root>/.reconcile/records/<dag hash>.json``. It lists every file, symlink
and folder of the prefix (the prefix itself as ``.``) with its mode, and the size and sha256
of files or the target of links, together with where the prefix came from (spec, mirror,
tarball checksum, signer). reconcile only removes or repairs prefixes that a record lists, and
``reconcile drift`` compares the disk against these entries, so they must be exact.

Records are written before the prefix is renamed into place: a record whose prefix is missing
means "repair", which is safe; a prefix without a record is never touched.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import itertools
import json
import operator
import os
import re
import stat
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import attrs

from reconcile import __version__, safe_fs
from reconcile.bounded_json import no_cycle_collection
from reconcile.errors import ReconcileError
from reconcile.folders import folder_mode, make_folders
from reconcile.pause import pause_point
from reconcile.redact import mask_credentials
from reconcile.reprs import fields_repr
from reconcile.safe_fs import Folder, folder_at
from reconcile.state.leftovers import temp_name

if TYPE_CHECKING:
    import cattrs

RECORD_VERSION = 1
RECORDS_FOLDER = (".reconcile", "records")
ABSENT = "absent"  # the fingerprint of a record that does not exist

EntryType = Literal["file", "dir", "symlink"]

_HASH_CHUNK = 1 << 20  # 1 MiB
_DAG_HASH = re.compile(r"[a-z0-9]{1,64}")  # Spack's are 32 base32 characters
_SHA256 = re.compile(r"[0-9a-f]{64}")
# a leading "/", or an empty, "." or ".." component (one regex: records hold every file);
# \Z, not $, which also matches before a final newline (a file may be named "a\n")
_NOT_NORMALISED = re.compile(r"^/|(?:^|/)\.{0,2}(?:/|\Z)")
_ENTRY_TYPES = ("file", "dir", "symlink")
_SPECIAL_KINDS = (
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


# --- validators: a record read from disk must be as exact as one just scanned ---------------


def _check_sha256(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not _SHA256.fullmatch(value):
        raise ValueError(f"{attribute.name} must be 64 lower-case hex digits, got {value!r}")


def _check_dag_hash(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not _DAG_HASH.fullmatch(value):
        raise ValueError(
            f"{attribute.name} must be a DAG hash (lower-case a-z, 0-9), got {value!r}"
        )


def _check_absolute(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value.startswith("/"):  # what PurePosixPath(value).is_absolute() says
        raise ValueError(f"{attribute.name} must be an absolute path, got {value!r}")


def _check_utc_timestamp(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{attribute.name} must be an ISO-8601 timestamp, got {value!r}") from None
    if moment.utcoffset() != datetime.timedelta(0):
        raise ValueError(f"{attribute.name} must be in UTC, got {value!r}")


@attrs.frozen(kw_only=True)
class RecordEntry:
    """One file, symlink or folder of a prefix, relative to it (the prefix itself is ``.``)."""

    __repr__ = fields_repr

    path: str
    type: EntryType
    mode: int  # stat.S_IMODE: permissions, set-gid, ...
    size: int | None = None  # files only
    sha256: str | None = None  # files only
    target: str | None = None  # symlinks only, exactly as readlink says
    # files only, when the entry was scanned: lets a fast drift audit skip hashing a file whose
    # size and mtime are unchanged. Not part of what the entry *is* (equality ignores it).
    mtime_ns: int | None = attrs.field(default=None, eq=False)

    def __attrs_post_init__(self) -> None:
        # Every check in one call, not a validator per field: a plan reads every entry of
        # every record (35,000 for 1,000 specs), and the per-field calls were most of it.
        if self.path != "." and _NOT_NORMALISED.search(self.path) is not None:
            raise ValueError(f"path must be a normalised relative POSIX path, got {self.path!r}")
        if self.type not in _ENTRY_TYPES:
            raise ValueError(f"'type' must be in {_ENTRY_TYPES!r} (got {self.type!r})")
        if not 0 <= self.mode <= 0o7777:
            raise ValueError(f"mode must be permission bits (0 to 0o7777), got {self.mode!r}")
        if self.sha256 is not None and not _SHA256.fullmatch(self.sha256):
            raise ValueError(f"sha256 must be 64 lower-case hex digits, got {self.sha256!r}")
        is_file, is_link = self.type == "file", self.type == "symlink"
        if (self.size is not None) != is_file or (self.sha256 is not None) != is_file:
            raise ValueError(f"{self.path!r}: size and sha256 belong to files, and files need both")
        if self.size is not None and self.size < 0:
            raise ValueError(f"{self.path!r}: size must not be negative, got {self.size}")
        if self.mtime_ns is not None and not is_file:
            raise ValueError(f"{self.path!r}: an mtime belongs to files only")
        if (self.target is not None) != is_link:
            raise ValueError(f"{self.path!r}: a target belongs to symlinks, and symlinks need one")


# An entry as a row: (path, type, mode, size, sha256, target, mtime_ns), None where the entry
# has no such field.
EntryRow = tuple[str, str, int, int | None, str | None, str | None, int | None]
_PATH = operator.itemgetter(0)


def _row_of(entry: RecordEntry) -> EntryRow:
    return (
        entry.path,
        entry.type,
        entry.mode,
        entry.size,
        entry.sha256,
        entry.target,
        entry.mtime_ns,
    )


def record_entry(row: EntryRow) -> RecordEntry:
    """The entry of a row (checked again: a row is only as good as whoever made it)."""
    path, kind, mode, size, sha256, target, mtime_ns = row
    return RecordEntry(
        path=path,
        type=kind,  # type: ignore[arg-type]  # checked by RecordEntry itself
        mode=mode,
        size=size,
        sha256=sha256,
        target=target,
        mtime_ns=mtime_ns,
    )


def _without_mtimes(rows: tuple[EntryRow, ...]) -> tuple[tuple[object, ...], ...]:
    return tuple(row[:6] for row in rows)  # equality ignores mtimes, as RecordEntry's does


class RecordEntries(Sequence[RecordEntry]):
    """A record's entries, sorted by path, kept as checked rows (``EntryRow``).

    A plan reads every entry of every record and compares most of them with one ``lstat``
    (``observe.prefix_drift`` reads ``rows``): a row costs a tuple where an entry costs an
    object and its checks. Entries are built from the rows the first time they are asked
    for (repairs, publishing, listing). Made only by ``_entries_of`` and
    ``_structure_entries``, which check every row as ``RecordEntry`` checks an entry.
    """

    __slots__ = ("_entries", "rows")

    def __init__(self, rows: tuple[EntryRow, ...]) -> None:
        self.rows = rows
        self._entries: tuple[RecordEntry, ...] | None = None

    def _built(self) -> tuple[RecordEntry, ...]:
        if self._entries is None:  # threads may both build it: the same value either way
            self._entries = tuple(record_entry(row) for row in self.rows)
        return self._entries

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> RecordEntry: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[RecordEntry, ...]: ...
    def __getitem__(self, index: int | slice) -> RecordEntry | tuple[RecordEntry, ...]:
        return self._built()[index]

    def __iter__(self) -> Iterator[RecordEntry]:
        return iter(self._built())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RecordEntries):
            return NotImplemented
        return _without_mtimes(self.rows) == _without_mtimes(other.rows)

    def __hash__(self) -> int:
        return hash(_without_mtimes(self.rows))

    def __repr__(self) -> str:
        return f"RecordEntries({self._built()!r})"


def _entries_of(entries: Iterable[RecordEntry] | RecordEntries) -> RecordEntries:
    """The entries sorted by path (the converter of ``InstallRecord.entries``)."""
    rows = entries.rows if isinstance(entries, RecordEntries) else map(_row_of, entries)
    return RecordEntries(tuple(sorted(rows, key=_PATH)))


def _check_unique_paths(
    _: object, attribute: attrs.Attribute[RecordEntries], value: RecordEntries
) -> None:
    paths = list(map(_PATH, value.rows))  # sorted: a path listed twice is next to itself
    if any(map(operator.eq, paths, itertools.islice(paths, 1, None))):
        twice = next(path for path, after in itertools.pairwise(paths) if path == after)
        raise ValueError(f"{attribute.name} lists {twice!r} twice")


def _str_dict(value: Mapping[str, str]) -> dict[str, str]:
    return dict(value)


@attrs.frozen(kw_only=True)
class InstallRecord:
    """What reconcile installed at one prefix, and from where."""

    __repr__ = fields_repr

    record_version: int = RECORD_VERSION
    hash: str = attrs.field(validator=_check_dag_hash)
    name: str
    version: str
    prefix: str = attrs.field(validator=_check_absolute)  # the final path, not the staging one
    spec: dict[str, Any] = attrs.field(converter=dict, hash=False)  # the node's raw JSON
    mirror: str  # the manifest's name for the mirror
    # Masked on the way in, so a record never holds a password even if handed one.
    mirror_url: str = attrs.field(converter=mask_credentials)
    tarball_sha256: str = attrs.field(validator=_check_sha256)
    # who vouched for it: a gpg key's fingerprint, or "<scheme>:<[[key]] name>" for the other
    # schemes (``manifest.model.Key.identity``); None for an unsigned mirror
    signer: str | None
    installed_at: str = attrs.field(validator=_check_utc_timestamp)
    # when reconcile last verified ``signer``'s signature, if after the install (a re-verification
    # under a new key); None: at ``installed_at``. Revocation dates compare against this.
    verified_at: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(_check_utc_timestamp)
    )
    # when a transparency log recorded the signer's signature (sigstore only): revocation of
    # a sigstore key compares with this, a time the signer cannot choose
    logged_at: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(_check_utc_timestamp)
    )
    reconcile_version: str = __version__
    permissions: dict[str, Any] | None = attrs.field(default=None, hash=False)  # what was applied
    # DAG hash -> path of the externals among the run-time dependencies (glibc at /usr, ...),
    # so that an installed closure can be planned without reading any mirror
    externals: dict[str, str] = attrs.field(factory=dict, converter=_str_dict, hash=False)
    # the manifest that installed it (``[install] owner``, or the manifest's path relative to
    # the install root): removal keeps every prefix another manifest owns. None in records
    # written before owners were kept: such a prefix is never removed.
    owner: str | None = None
    entries: RecordEntries = attrs.field(converter=_entries_of, validator=_check_unique_paths)
    # The sha256 of the file the record was read from (None for one built in memory): its
    # fingerprint, without serialising it again. Set by the reader only, never from the
    # file's keys, so a record cannot name its own fingerprint.
    read_sha256: str | None = attrs.field(default=None, init=False, eq=False, repr=False)

    def entries_by_path(self) -> dict[str, RecordEntry]:
        return {entry.path: entry for entry in self.entries}

    def rows_by_path(self) -> dict[str, EntryRow]:
        """``entries_by_path`` as rows, without building an entry."""
        return {row[0]: row for row in self.entries.rows}


def utc_timestamp(moment: datetime.datetime | None = None) -> str:
    """``2025-01-31T12:00:00Z``: the form of ``installed_at`` (now, unless given a moment)."""
    moment = moment or datetime.datetime.now(datetime.UTC)
    # isoformat, not strftime: strftime("%Y") does not pad years before 1000 to four digits.
    utc = moment.astimezone(datetime.UTC).replace(microsecond=0, tzinfo=None)
    return utc.isoformat() + "Z"


# --- serialisation -----------------------------------------------------------------------------


def _strict(kind: type[Any]) -> Any:
    """A structure hook that refuses values of another JSON type (cattrs would coerce them)."""

    def structure(value: Any, _: Any) -> Any:
        if type(value) is not kind:  # not isinstance: bool is an int, but not a mode
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__} {value!r}")
        return value

    return structure


@functools.cache
def converter() -> cattrs.Converter:
    """The cattrs converter that says exactly what is wrong with a record that is not right
    (and that ``record_to_dict`` and ``record_from_dict`` agree with: tests hold them to it).
    Built on first use: a plan reads and fingerprints good records with the plain functions
    below, and cattrs' import and code generation were a fifth of its start-up."""
    import cattrs
    from cattrs.gen import make_dict_unstructure_fn, override

    converter = cattrs.Converter(forbid_extra_keys=True)
    for kind in (str, int):
        converter.register_structure_hook(kind, _strict(kind))
    # Most entries are files or folders: leave out the fields they do not have. (A record's
    # entries are unstructured by _entry_dicts, which does the same.)
    converter.register_unstructure_hook(
        RecordEntry,
        make_dict_unstructure_fn(
            RecordEntry,
            converter,
            size=override(omit_if_default=True),
            sha256=override(omit_if_default=True),
            target=override(omit_if_default=True),
            mtime_ns=override(omit_if_default=True),
        ),
    )
    converter.register_unstructure_hook(RecordEntries, _entry_dicts)
    # Records without an owner (or a re-verification) keep the form (and the fingerprint)
    # they always had.
    converter.register_unstructure_hook(
        InstallRecord,
        make_dict_unstructure_fn(
            InstallRecord,
            converter,
            owner=override(omit_if_default=True),
            verified_at=override(omit_if_default=True),
            logged_at=override(omit_if_default=True),
            read_sha256=override(omit=True),
        ),
    )
    converter.register_structure_hook(RecordEntries, _structure_entries)
    return converter


_ENTRY_FIELDS: dict[str, type] = {
    "path": str,
    "type": str,
    "mode": int,
    "size": int,
    "sha256": str,
    "target": str,
    "mtime_ns": int,
}


# The key orders reconcile writes (sorted: records are dumped with sort_keys) with the exact
# types of their values. An entry of one of these shapes is checked with one lookup and one
# comparison; any other goes through the check key by key, which says what is wrong.
_OPTIONAL_FIELDS = ("size", "sha256", "target", "mtime_ns")
_SHAPES: dict[tuple[str, ...], tuple[type, ...]] = {
    keys: tuple(_ENTRY_FIELDS[key] for key in keys)
    for count in range(len(_OPTIONAL_FIELDS) + 1)
    for optional in itertools.combinations(_OPTIONAL_FIELDS, count)
    for keys in [tuple(sorted(("path", "type", "mode", *optional)))]
}


def _check_entry_fields(index: int, item: dict[str, Any]) -> None:
    for key, field_value in item.items():
        kind = _ENTRY_FIELDS.get(key)
        if kind is None:
            raise ValueError(f"entries[{index}]: unknown key {key!r}")
        if type(field_value) is not kind:  # not isinstance: bool is an int, not a mode
            raise TypeError(
                f"entries[{index}].{key}: expected {kind.__name__}, got "
                f"{type(field_value).__name__} {field_value!r}"
            )


_DIR_KEYS = ("mode", "path", "type")
_LINK_KEYS = ("mode", "path", "target", "type")
_FILE_KEYS = ("mode", "mtime_ns", "path", "sha256", "size", "type")
# _NOT_NORMALISED over paths joined by NUL, a NUL standing for the start or end of a path: an
# empty, "." or ".." component between two separators, at the start, or at the end. (Three
# searches, each starting at a separator or an end, scan several times faster than one
# alternation tried at every character.) A path holding a NUL itself can only fail it (the
# long way then judges that path alone).
_BETWEEN_SEPARATORS = re.compile(r"[/\0]\.{0,2}[/\0]")
_AT_START = re.compile(r"\.{0,2}(?:[/\0]|\Z)")
_AT_END = re.compile(r"[/\0]\.{0,2}\Z")


def _any_not_normalised(joined: str) -> bool:
    return (
        _BETWEEN_SEPARATORS.search(joined) is not None
        or _AT_START.match(joined) is not None
        or _AT_END.search(joined) is not None
    )


_HEX = re.compile(r"[0-9a-f]*")


_FILE_TYPES = (int, int, str, str, int, str)  # the types of a file's values, in _FILE_KEYS order


def _written_rows(items: list[Any]) -> list[EntryRow] | None:
    """The rows of entries all in a form reconcile writes (keys sorted; files with their
    mtime) when every one passes every check ``RecordEntry`` makes, else None (and each entry
    goes the long way, which says what is wrong). What this accepts is a subset of what the
    long way does (tests hold it to that). Modes, paths and checksums are checked all at
    once (paths and checksums with one regex each), which makes it several times cheaper."""
    rows: list[EntryRow] = []
    digests: list[str] = []
    for item in items:
        if type(item) is not dict:
            return None
        keys = tuple(item)
        if keys == _FILE_KEYS:
            values = tuple(item.values())
            # exact types, not isinstance: bool is an int, but not a mode or a size
            if tuple(map(type, values)) != _FILE_TYPES:
                return None
            mode, mtime_ns, path, sha256, size, kind = values
            if kind != "file" or size < 0 or len(sha256) != 64:  # and hex: below
                return None
            digests.append(sha256)
            rows.append((path, "file", mode, size, sha256, None, mtime_ns))
        elif keys == _DIR_KEYS:
            mode, path, kind = item.values()
            if not (type(mode) is int and type(path) is str and kind == "dir"):
                return None
            rows.append((path, "dir", mode, None, None, None, None))
        elif keys == _LINK_KEYS:
            mode, path, target, kind = item.values()
            if (
                not (type(mode) is int and type(path) is str and type(target) is str)
                or kind != "symlink"
            ):
                return None
            rows.append((path, "symlink", mode, None, None, target, None))
        else:
            return None
    modes = [row[2] for row in rows]
    if modes and (min(modes) < 0 or max(modes) > 0o7777):
        return None
    paths = [row[0] for row in rows]
    if "." in paths:
        paths.remove(".")  # the prefix itself; a second "." fails the regex below
    if _any_not_normalised("\0".join(paths)):
        return None
    if _HEX.fullmatch("".join(digests)) is None:
        return None
    return rows


def _checked_row(index: int, item: Any) -> EntryRow:
    """The row of any entry, through ``RecordEntry``'s own checks; ``ValueError`` or
    ``TypeError`` saying what is wrong."""
    if type(item) is not dict:
        raise TypeError(f"entries[{index}]: expected an object, got {type(item).__name__}")
    if _SHAPES.get(tuple(item)) != tuple(map(type, item.values())):
        _check_entry_fields(index, item)
    try:
        return _row_of(RecordEntry(**item))
    except TypeError as exc:  # a required key is missing
        raise ValueError(f"entries[{index}]: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"entries[{index}]: {exc}") from None


def _structure_entries(value: Any, _: Any) -> RecordEntries:
    """A record holds one entry per file, and every plan and drift reads every record: check
    them into rows without cattrs' generic path or an object each, as strictly (exact JSON
    types, no unknown keys, the entry's own checks)."""
    if type(value) is not list:
        raise TypeError(f"entries: expected list, got {type(value).__name__}")
    rows = _written_rows(value)
    if rows is None:
        rows = [_checked_row(index, item) for index, item in enumerate(value)]
    return RecordEntries(tuple(rows))  # sorted by the record (InstallRecord.entries)


def _entry_dicts(entries: RecordEntries) -> list[dict[str, Any]]:
    """What cattrs made of the entries (fields that are None left out), written out: a plan
    fingerprints every record it reads, and cattrs' generic path was most of that."""
    dicts = []
    for path, kind, mode, size, sha256, target, mtime_ns in entries.rows:
        item: dict[str, Any] = {"path": path, "type": kind, "mode": mode}
        if size is not None:
            item["size"] = size
        if sha256 is not None:
            item["sha256"] = sha256
        if target is not None:
            item["target"] = target
        if mtime_ns is not None:
            item["mtime_ns"] = mtime_ns
        dicts.append(item)
    return dicts


# Each field of a record but its entries, with the exact JSON type of its value and whether
# it may be null: what the converter's strict hooks take as they are.
_RECORD_FIELDS: dict[str, tuple[type, bool]] = {
    "record_version": (int, False),
    "hash": (str, False),
    "name": (str, False),
    "version": (str, False),
    "prefix": (str, False),
    "spec": (dict, False),
    "mirror": (str, False),
    "mirror_url": (str, False),
    "tarball_sha256": (str, False),
    "signer": (str, True),
    "installed_at": (str, False),
    "verified_at": (str, True),
    "logged_at": (str, True),
    "reconcile_version": (str, False),
    "permissions": (dict, True),
    "externals": (dict, False),
    "owner": (str, True),
}
_REQUIRED_FIELDS = frozenset(
    field.name
    for field in attrs.fields(InstallRecord)
    if field.default is attrs.NOTHING and field.name != "entries"
)
_LEFT_OUT_WHEN_NONE = ("verified_at", "logged_at", "owner")


def _copied(value: Any) -> Any:
    """JSON-like data copied as cattrs unstructures a value typed ``Any``."""
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_copied(item) for item in value)
    return value


def _plain_record(data: Mapping[str, Any]) -> InstallRecord | None:
    """The record in ``data`` when every key is known, every required one present and every
    value of the exact type the converter takes as is; else None, and the converter says
    what is wrong. The model's own converters and validators run either way."""
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key == "entries":
            continue
        expected = _RECORD_FIELDS.get(key)
        if expected is None or not (type(value) is expected[0] or (value is None and expected[1])):
            return None
        values[key] = value
    externals = values.get("externals")
    if "entries" not in data or not values.keys() >= _REQUIRED_FIELDS:
        return None
    if externals is not None and any(type(target) is not str for target in externals.values()):
        return None
    try:
        return InstallRecord(**values, entries=_structure_entries(data["entries"], None))
    except (TypeError, ValueError):
        return None


def owner_name(explicit: str | None, manifest_path: Path, install_root: Path | str) -> str:
    """Who owns the records a manifest writes: its ``[install] owner``, else its path
    relative to the install root (so that moving both together keeps the owner)."""
    return explicit or os.path.relpath(manifest_path, install_root)


def record_to_dict(record: InstallRecord) -> dict[str, Any]:
    """The record as JSON data: the fields in order, those of ``_LEFT_OUT_WHEN_NONE`` left
    out when None (records without them keep the form and fingerprint they always had)."""
    data: dict[str, Any] = {}
    for name in _RECORD_FIELDS:
        value = getattr(record, name)
        if value is None and name in _LEFT_OUT_WHEN_NONE:
            continue
        data[name] = _copied(value)
    data["entries"] = _entry_dicts(record.entries)
    return data


def _describe(exc: BaseException, kind: type[Any] | None) -> str:
    """Our validators and strict hooks say what is wrong; keep their words."""
    from cattrs.v import format_exception

    if isinstance(exc, ValueError | TypeError) and str(exc):
        return str(exc)
    return format_exception(exc, kind)


def record_from_dict(data: Any) -> InstallRecord:
    """Raises ``ValueError`` saying what is wrong; callers name the file."""
    if not isinstance(data, Mapping):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    version = data.get("record_version")
    if version != RECORD_VERSION:
        raise ValueError(
            f"record_version is {version!r}, expected {RECORD_VERSION}"
            " (written by another version of reconcile?)"
        )
    plain = _plain_record(data)
    if plain is not None:
        return plain
    import cattrs

    try:
        return converter().structure(data, InstallRecord)
    except cattrs.BaseValidationError as exc:
        messages = cattrs.transform_error(exc, path="record", format_exception=_describe)
        raise ValueError("; ".join(messages)) from None
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ValueError(str(exc)) from None


def _record_json(record: InstallRecord) -> bytes:
    # ensure_ascii: file names that are not UTF-8 (surrogate escapes) still round-trip exactly.
    return (json.dumps(record_to_dict(record), sort_keys=True, indent=1) + "\n").encode("ascii")


def record_fingerprint(record: InstallRecord | None) -> str:
    """A stable digest of a record (``"absent"`` for none); saved plans use it to spot staleness.

    The sha256 of the record's file as read: any change to the file changes it. A record
    built in memory digests the bytes ``write_record`` would write, so a record and the same
    record written and read back agree.
    """
    if record is None:
        return ABSENT
    if record.read_sha256 is not None:
        return record.read_sha256
    return hashlib.sha256(_record_json(record)).hexdigest()


# --- scanning a prefix ---------------------------------------------------------------------------


def _sha256_of(path: str, buffer: bytearray) -> tuple[int, str]:
    """Size and sha256 of a regular file, read without following a symlink swapped in."""
    digest = hashlib.sha256()
    view = memoryview(buffer)
    size = 0
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb", buffering=0) as stream:
        while count := stream.readinto(view):
            digest.update(view[:count])
            size += count
    return size, digest.hexdigest()


def _link_target(path: str) -> str:
    # os.readlink, not Path.readlink: a Path would normalise the target ("a//b/" -> "a/b").
    return os.readlink(path)  # noqa: PTH115


def _special_kind(mode: int) -> str:
    for test, kind in _SPECIAL_KINDS:
        if test(mode):
            return kind
    return f"an unknown kind of file (mode {mode:o})"


@attrs.frozen(kw_only=True)
class KnownContents:
    """What an unpacker wrote into a prefix it alone could write to, so that scanning it
    need not read those files again: size and sha256 by relative path, and the files changed
    since (by device and inode), which are read."""

    __repr__ = fields_repr

    files: Mapping[str, tuple[int, str]]
    changed: Collection[tuple[int, int]]

    def sha256(self, relative: str, st: os.stat_result) -> str | None:
        known = self.files.get(relative)
        if known is None or known[0] != st.st_size or (st.st_dev, st.st_ino) in self.changed:
            return None
        return known[1]


def _entry_for(
    absolute: str,
    relative: str,
    st: os.stat_result,
    buffer: bytearray,
    known: KnownContents | None = None,
) -> RecordEntry:
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        return RecordEntry(path=relative, type="symlink", mode=mode, target=_link_target(absolute))
    if stat.S_ISDIR(st.st_mode):
        return RecordEntry(path=relative, type="dir", mode=mode)
    if stat.S_ISREG(st.st_mode):
        sha256 = known.sha256(relative, st) if known is not None else None
        if sha256 is None:
            size, sha256 = _sha256_of(absolute, buffer)
        else:
            size = st.st_size
        return RecordEntry(
            path=relative,
            type="file",
            mode=mode,
            size=size,
            sha256=sha256,
            mtime_ns=st.st_mtime_ns,
        )
    raise ReconcileError(
        f"{absolute} is {_special_kind(st.st_mode)}; a prefix may hold only files,"
        " symlinks and folders",
        hint="remove it from the prefix; reconcile does not record or install special files",
        reference="unsupported-file-type",
    )


def scan_prefix(prefix: Path, known: KnownContents | None = None) -> tuple[RecordEntry, ...]:
    """Every file, symlink and folder under ``prefix`` (itself as ``.``), sorted by path.

    Symlinks are recorded, never followed. Files are hashed in 1 MiB chunks, but for those
    ``known`` vouches for (written by this process, unchanged since: same size, not changed).
    """
    top = os.fspath(prefix)
    try:
        top_stat = os.lstat(top)
    except OSError as exc:
        raise _disk_error(top, exc, "scan") from None
    if not stat.S_ISDIR(top_stat.st_mode):
        raise ReconcileError(
            f"{top} is not a folder; expected the prefix to scan",
            hint="pass the prefix folder itself (not a symlink to it)",
            reference="not-a-prefix",
        )
    buffer = bytearray(_HASH_CHUNK)
    entries = [RecordEntry(path=".", type="dir", mode=stat.S_IMODE(top_stat.st_mode))]
    pending = [(top, "")]  # an explicit stack: deep trees must not hit the recursion limit
    while pending:
        folder, relative_folder = pending.pop()
        try:
            with os.scandir(folder) as listing:
                for item in listing:
                    relative = f"{relative_folder}{item.name}"
                    st = item.stat(follow_symlinks=False)
                    entry = _entry_for(item.path, relative, st, buffer, known)
                    entries.append(entry)
                    if entry.type == "dir":
                        pending.append((item.path, relative + "/"))
        except OSError as exc:
            raise _disk_error(getattr(exc, "filename", None) or folder, exc, "scan") from None
    return tuple(sorted(entries, key=lambda entry: entry.path))


def _disk_error(path: str, exc: OSError, doing: str) -> ReconcileError:
    return ReconcileError(
        f"cannot {doing} {path}: {exc.strerror or exc}",
        hint="check that the path exists and that reconcile may read it",
        reference="disk-error",
    )


# --- the records folder ---------------------------------------------------------------------------


def records_dir(root: Path) -> Path:
    return root.joinpath(*RECORDS_FOLDER)


def record_path(root: Path, dag_hash: str) -> Path:
    if not _DAG_HASH.fullmatch(dag_hash):
        # A hash becomes a file name: refuse anything that could leave the records folder.
        raise ValueError(f"not a DAG hash: {dag_hash!r}")
    return records_dir(root) / f"{dag_hash}.json"


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _ensure_records_dir(root: Path) -> Path:
    """Create the records folder; fsync the parent of every folder made, so it survives a crash."""
    folder = records_dir(root)
    missing: list[Path] = []
    ancestor = folder
    while not ancestor.is_dir():
        missing.append(ancestor)
        ancestor = ancestor.parent
    make_folders(root)  # the install root, with reconcile's folder mode
    safe_fs.make_folders(root, folder, mode=folder_mode())  # no link below the root followed
    for made in reversed(missing):
        _fsync_folder(made.parent)
    return folder


def write_record(root: Path, record: InstallRecord) -> Path:
    """Write ``record`` atomically (temp file, fsync, rename, fsync folder); return its path."""
    destination = record_path(root, record.hash)
    payload = _record_json(record)
    _ensure_records_dir(root)
    # Named after this process (state/leftovers.py): a later run can tell it is a leftover.
    temporary = temp_name(record.hash)
    with folder_at(root, records_dir(root), create=False) as folder:
        try:
            with folder.open_new(temporary) as stream:
                stream.write(payload)
                stream.flush()
                os.fchmod(stream.fileno(), 0o644)  # drift audits may run as other users
                os.fsync(stream.fileno())
            pause_point("record-temp", record.hash)
            folder.replace(temporary, destination.name)
        except BaseException as exc:
            folder.unlink(temporary)
            if isinstance(exc, OSError) and exc.errno is not None and exc.filename is None:
                exc.filename = str(destination)  # a full disk on write() names no file
            raise
        folder.fsync()
    return destination


def delete_record(root: Path, dag_hash: str) -> bool:
    """Remove a record (after its prefix is gone); False when there was none."""
    path = record_path(root, dag_hash)
    try:
        with folder_at(root, path.parent, create=False) as folder:
            folder.unlink(path.name, missing_ok=False)
            folder.fsync()
    except FileNotFoundError:
        return False
    return True


def _corrupt(path: Path, reason: str) -> ReconcileError:
    return ReconcileError(
        f"install record {path} cannot be read: {reason}",
        hint=(
            f"move it aside (mv {path} {path}.corrupt); reconcile then no longer considers that"
            " prefix its own and leaves it alone"
        ),
        reference="corrupt-record",
    )


def _load(folder: Folder, path: Path) -> InstallRecord:
    try:
        with folder.open_read(path.name) as stream:
            raw = stream.read()
        data = json.loads(raw)
    except OSError as exc:
        raise _disk_error(str(path), exc, "read") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise _corrupt(path, f"not valid JSON ({exc})") from None
    try:
        record = record_from_dict(data)
    except ValueError as exc:
        raise _corrupt(path, str(exc)) from None
    if path.name != f"{record.hash}.json":
        raise _corrupt(path, f"it holds the record of {record.hash}, expected {path.stem}")
    object.__setattr__(record, "read_sha256", hashlib.sha256(raw).hexdigest())  # frozen
    return record


def read_record(root: Path, dag_hash: str) -> InstallRecord | None:
    """The record of ``dag_hash``, or None when there is none."""
    path = record_path(root, dag_hash)
    try:
        with folder_at(root, path.parent, create=False) as folder:
            return _load(folder, path) if folder.exists(path.name) else None
    except FileNotFoundError:
        return None


def read_records(root: Path) -> dict[str, InstallRecord]:
    """Every record under ``root``, by DAG hash; {} when there is no records folder.

    Temporary files of an interrupted write (``.<hash>.*.tmp``) are ignored. All corrupt
    records are reported together, not only the first.
    """
    folder_path = records_dir(root)
    records: dict[str, InstallRecord] = {}
    problems: list[ReconcileError] = []
    try:
        with folder_at(root, folder_path, create=False) as folder, no_cycle_collection():
            for name in folder.listdir():
                path = folder_path / name
                if path.name.startswith(".") or path.suffix != ".json":
                    continue
                try:
                    record = _load(folder, path)
                except ReconcileError as exc:
                    problems.append(exc)
                    continue
                records[record.hash] = record
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except OSError as exc:
        raise _disk_error(str(folder_path), exc, "list") from None
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ReconcileError(
            f"{len(problems)} install records cannot be read:\n"
            + "\n".join(f"  {problem.message}" for problem in problems),
            hint="move each of them aside (mv FILE FILE.corrupt); reconcile then leaves"
            " those prefixes alone",
            reference="corrupt-record",
        )
    return records
