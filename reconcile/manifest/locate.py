"""Parse TOML with tomlkit and keep where every key and value starts.

tomlkit items carry no positions, and the parsed document is not always in file order
(tomlkit regroups ``[[mirror]]`` tables that are split by other tables), so offsets cannot be
summed from its rendering. Instead the parser itself records, for each key, value and table
header object it creates, the source offset at which it began; a walk over the finished
document then maps key paths such as ``("mirror", 1, "url")`` to those offsets.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

import attrs
from tomlkit.container import Container
from tomlkit.exceptions import ParseError, TOMLKitError
from tomlkit.items import AbstractTable, AoT, Array, Item, Key, Table
from tomlkit.parser import Parser

from reconcile.manifest.finding import KeyPath, format_key_path
from reconcile.reprs import fields_repr

__all__ = ["KeyPath", "LocatedDocument", "Position", "TomlSyntaxError", "format_key_path"]

_TOMLKIT_POSITION = re.compile(r" at line \d+ col \d+$")
_DUPLICATE_KEY = re.compile(r'^Key "(?P<name>.*)" already exists\.$')


@attrs.frozen(kw_only=True)
class Position:
    __repr__ = fields_repr

    line: int  # 1-based
    column: int  # 1-based, in characters


class TomlSyntaxError(Exception):
    """The text is not valid TOML; ``position`` is where tomlkit stopped."""

    def __init__(self, message: str, position: Position | None):
        super().__init__(message)
        self.message = message
        self.position = position


class _RecordingParser(Parser):
    """tomlkit's parser, noting the offset at which each key, value and table header starts."""

    def __init__(self, text: str):
        super().__init__(text)
        # Keyed by id(); the object is kept alive alongside so that ids are never reused.
        self.offsets: dict[int, tuple[object, int]] = {}
        self.keys_in_order: list[tuple[Key, int]] = []

    def _record(self, thing: object, offset: int) -> None:
        self.offsets.setdefault(id(thing), (thing, offset))

    def _record_key(self, key: Key, offset: int) -> Key:
        self._record(key, offset)
        self.keys_in_order.append((key, offset))
        return key

    def _parse_bare_key(self) -> Key:
        offset = self._idx
        return self._record_key(super()._parse_bare_key(), offset)

    def _parse_quoted_key(self) -> Key:
        offset = self._idx
        return self._record_key(super()._parse_quoted_key(), offset)

    def _parse_value(self) -> Item:
        offset = self._idx
        value = super()._parse_value()
        self._record(value, offset)
        return value

    def _parse_table(
        self, parent_name: Key | None = None, parent: Table | None = None
    ) -> tuple[Key, Table | AoT]:
        offset = self._idx  # on the opening bracket of the header
        key, result = super()._parse_table(parent_name, parent)
        header = _header_table(result)
        if header is not None:
            self._record(header, offset)
        return key, result


def _header_table(item: Item) -> Table | None:
    """The table a ``[a.b]`` header opened, below the implicit tables created for it."""
    while True:
        if isinstance(item, AoT):
            if not item.body:
                return None
            item = item.body[0]
        if not isinstance(item, Table):
            return None
        if not item.is_super_table():
            return item
        children = [child for key, child in item.value.body if key is not None]
        if len(children) != 1:
            return None
        item = children[0]


@attrs.frozen(kw_only=True)
class LocatedDocument:
    """Plain data of a TOML document, with the position of each key and value in it."""

    __repr__ = fields_repr

    data: dict[str, Any]
    key_offsets: Mapping[KeyPath, int]
    value_offsets: Mapping[KeyPath, int]  # a table's is its header (or its '{')
    line_starts: tuple[int, ...]

    def value_position(self, path: KeyPath) -> Position:
        """Where the value at ``path`` starts; else its key; else its closest located parent."""
        for length in range(len(path), 0, -1):
            prefix = path[:length]
            offset = self.value_offsets.get(prefix, self.key_offsets.get(prefix))
            if offset is not None:
                return _position(self.line_starts, offset)
        return Position(line=1, column=1)

    def key_position(self, path: KeyPath) -> Position:
        """Where the key at ``path`` is written (for a dotted key, its last part)."""
        offset = self.key_offsets.get(path)
        return (
            _position(self.line_starts, offset) if offset is not None else self.value_position(path)
        )


class _Indexer:
    """Walks a parsed document and maps key paths to the offsets the parser recorded."""

    def __init__(self, offsets: Mapping[int, tuple[object, int]]):
        self._offsets = offsets
        self.keys: dict[KeyPath, int] = {}
        self.values: dict[KeyPath, int] = {}
        self._elements: Counter[KeyPath] = Counter()

    def _offset(self, thing: object) -> int | None:
        found = self._offsets.get(id(thing))
        return found[1] if found is not None else None

    def _note(self, table: dict[KeyPath, int], path: KeyPath, thing: object) -> None:
        offset = self._offset(thing)
        if offset is not None:
            table.setdefault(path, offset)  # the first definition of a path wins

    def container(self, body: Container, path: KeyPath) -> None:
        for key, item in body.body:
            if key is None:
                continue
            child = (*path, key.key)
            self._note(self.keys, child, key)
            self.value(item, child)

    def value(self, item: Item, path: KeyPath) -> None:
        self._note(self.values, path, item)
        if isinstance(item, AbstractTable):
            self.container(item.value, path)
        elif isinstance(item, AoT):
            for table in item.body:
                element = (*path, self._elements[path])
                self._elements[path] += 1
                self.value(table, element)
        elif isinstance(item, Array):
            for index, element_item in enumerate(item):
                self.value(element_item, (*path, index))


def _line_starts(text: str) -> tuple[int, ...]:
    starts = [0]
    starts.extend(index + 1 for index, char in enumerate(text) if char == "\n")
    return tuple(starts)


def _position(line_starts: tuple[int, ...], offset: int) -> Position:
    line = bisect.bisect_right(line_starts, offset)
    return Position(line=line, column=offset - line_starts[line - 1] + 1)


def _syntax_error(
    exc: TOMLKitError, parser: _RecordingParser, line_starts: tuple[int, ...]
) -> TomlSyntaxError:
    message = _TOMLKIT_POSITION.sub("", str(exc))
    duplicate = _DUPLICATE_KEY.match(message)
    if duplicate is not None:
        # tomlkit reports where it stopped (often the next line) or nothing at all: point
        # at the last key of that name it read, which is the one defined a second time.
        name = duplicate["name"]
        for key, offset in reversed(parser.keys_in_order):
            if key.key == name:
                position = _position(line_starts, offset)
                return TomlSyntaxError(f"key {name!r} is defined twice", position)
    if isinstance(exc, ParseError):
        # tomlkit counts columns from 0.
        return TomlSyntaxError(message, Position(line=exc.line, column=exc.col + 1))
    return TomlSyntaxError(message, None)


def parse_located(text: str) -> LocatedDocument:
    """Parse ``text``; ``TomlSyntaxError`` when it is not TOML."""
    parser = _RecordingParser(text)
    line_starts = _line_starts(text)
    try:
        document = parser.parse()
    except TOMLKitError as exc:
        raise _syntax_error(exc, parser, line_starts) from exc
    indexer = _Indexer(parser.offsets)
    indexer.container(document, ())
    return LocatedDocument(
        data=document.unwrap(),
        key_offsets=indexer.keys,
        value_offsets=indexer.values,
        line_starts=line_starts,
    )
