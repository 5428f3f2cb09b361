"""Positions come from the parse itself: every key and value is found where it is written,
whatever the layout (headers, dotted keys, inline tables, tables split by others)."""

from __future__ import annotations

import random
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomlkit
from hypothesis import given, settings
from hypothesis import strategies as st

from reconcile.errors import ManifestError
from reconcile.manifest.load import load_manifest, loads_manifest
from reconcile.manifest.locate import (
    KeyPath,
    Position,
    TomlSyntaxError,
    format_key_path,
    parse_located,
)

Table = dict[str, Any]


def _literal(value: Any) -> str:
    return tomlkit.item(value).as_string()


def _at(text: str, position: Position) -> str:
    line = text.split("\n")[position.line - 1]
    return line[position.column - 1 :]


def _gap(rng: random.Random) -> str:
    return rng.choice(["", "\n", "# a comment\n", "\n\n", "  # indented comment\n"])


def _inline(table: Table) -> str:
    return "{ " + ", ".join(f"{key} = {_literal(value)}" for key, value in table.items()) + " }"


def _render(document: dict[str, Any], rng: random.Random) -> str:
    """``document`` as TOML, each table written in a layout picked at random."""
    scalars = [(k, v) for k, v in document.items() if not isinstance(v, dict | list)]
    tables = [(k, v) for k, v in document.items() if isinstance(v, dict)]
    arrays = [(k, v) for k, v in document.items() if isinstance(v, list)]
    text = "".join(f"{_gap(rng)}{k} = {_literal(v)}\n" for k, v in scalars)
    headed: list[list[str]] = []  # header blocks; those of one array of tables stay in order
    for name, table in tables:
        layout = rng.choice(["header", "dotted", "inline"])
        if layout == "inline":
            text += f"{name} = {_inline(table)}\n"
        elif layout == "dotted":
            text += "".join(f"{name} . {key} = {_literal(value)}\n" for key, value in table.items())
        else:
            body = "".join(f"{_gap(rng)}  {key} = {_literal(v)}\n" for key, v in table.items())
            headed.append([f"{_gap(rng)}[ {name} ]  # header\n{body}"])
    for name, elements in arrays:
        if not elements:
            text += f"{name} = []\n"
        elif rng.random() < 0.3:
            text += f"{name} = [\n" + "".join(f"  {_inline(e)},\n" for e in elements) + "]\n"
        else:
            headed.append(
                [
                    f"{_gap(rng)}[[{name}]]\n"
                    + "".join(f"{key}={_literal(value)}\n" for key, value in element.items())
                    for element in elements
                ]
            )
    # Interleave the blocks at random: [[mirror]] tables end up split by other tables.
    while headed:
        blocks = rng.choice(headed)
        text += blocks.pop(0)
        if not blocks:
            headed.remove(blocks)
    return text


scalars = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=8),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.booleans(),
    st.lists(st.integers(min_value=0, max_value=99), max_size=3),
)
keys = st.sampled_from(["name", "url", "root", "specs", "signed", "k-1", "x_2"])
tables = st.dictionaries(keys, scalars, min_size=1, max_size=4)
documents = st.fixed_dictionaries(
    {
        "version": st.integers(min_value=0, max_value=9),
        "install": tables,
        "other": tables,
        "mirror": st.lists(tables, min_size=1, max_size=3),
        "key": st.lists(tables, max_size=2),
    }
)


def _leaves(value: Any, path: KeyPath) -> list[tuple[KeyPath, Any]]:
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _leaves(item, (*path, key))]
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return [leaf for index, item in enumerate(value) for leaf in _leaves(item, (*path, index))]
    return [(path, value)]


@settings(max_examples=120, deadline=None)
@given(document=documents, rng=st.randoms(use_true_random=False))
def test_every_key_and_value_is_found_where_it_is_written(
    document: dict[str, Any], rng: random.Random
) -> None:
    text = _render(document, rng)
    located = parse_located(text)
    # Split [[mirror]] tables come back in file order, so indexes match the document's.
    assert located.data == document
    # The loader reads with tomllib and asks tomlkit only to place problems: both must read
    # the same data for the key paths of one to find their places in the other.
    assert tomllib.loads(text) == document
    for path, value in _leaves(document, ()):
        assert _at(text, located.value_position(path)).startswith(_literal(value)), path
        key = str(path[-1]) if not isinstance(path[-1], int) else None
        if key is not None:
            assert _at(text, located.key_position(path)).startswith(key), path


def test_table_positions_point_at_headers_and_braces() -> None:
    text = (
        'version = 1\nkey = [{ name = "k" }]\n\n  [install]\nroot = "opt"\n[[mirror]]\nname = "a"\n'
    )
    located = parse_located(text)
    assert located.value_position(("key", 0)) == Position(line=2, column=8)
    assert located.value_position(("install",)) == Position(line=4, column=3)
    assert located.key_position(("install", "root")) == Position(line=5, column=1)
    assert located.value_position(("mirror", 0)) == Position(line=6, column=1)
    # Unknown paths fall back to the closest located parent, then to the start of the file.
    assert located.value_position(("install", "nothing")) == Position(line=4, column=3)
    assert located.value_position(("nothing",)) == Position(line=1, column=1)


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ("version = 1\nversion = 2\n", 2, 1, "key 'version' is defined twice"),
        ('[install]\nroot = "a"\n\n  root = "b"\n', 4, 3, "key 'root' is defined twice"),
        ("[[mirror]]\nname = 1\n[[mirror]]\nname = 2\nname = 3\n", 5, 1, "defined twice"),
        ("x = { a = 1, a = 2 }\n", 1, 14, "key 'a' is defined twice"),
        ("version = \n", 1, 11, "Unexpected character"),
        ('name = "unterminated\n', 1, 21, "Control characters"),
        ("[install\n", 1, 9, "Unexpected character"),
    ],
)
def test_syntax_errors_carry_a_position(text: str, line: int, column: int, message: str) -> None:
    with pytest.raises(TomlSyntaxError) as caught:
        parse_located(text)
    assert caught.value.position == Position(line=line, column=column)
    assert message in caught.value.message
    with pytest.raises(ManifestError) as error:
        loads_manifest(text, path=Path("reconcile.toml"))
    (problem,) = error.value.problems
    assert (problem.line, problem.column) == (line, column)
    assert str(problem).startswith(f"reconcile.toml:{line}:{column}: invalid TOML: ")
    assert "toml.io" in (error.value.hint or "")


@pytest.mark.parametrize(
    ("table", "unknown_at"),
    [
        ('{ root = "opt",\n  specs = ["zlib"] }', "3:3"),  # a newline in an inline table
        ('{ root = "opt", specs = ["zlib"], }', "2:27"),  # a trailing comma
    ],
)
def test_what_only_tomlkit_reads_is_read_as_before(table: str, unknown_at: str) -> None:
    """tomllib (TOML 1.0) refuses a little that tomlkit reads; such a manifest still loads,
    from tomlkit's reading, as it did before tomllib read manifests first."""
    text = f"version = 1\ninstall = {table}\n"
    with pytest.raises(tomllib.TOMLDecodeError):
        tomllib.loads(text)
    loaded = loads_manifest(text, path=Path("reconcile.toml"))
    assert loaded.manifest.install is not None
    assert loaded.manifest.install.specs == ("zlib",)
    # ... and its problems are placed as well
    with pytest.raises(ManifestError) as caught:
        loads_manifest(text.replace("specs", "spec"), path=Path("reconcile.toml"))
    assert [str(p) for p in caught.value.problems] == [
        "reconcile.toml:2:11: install: missing required key 'specs'",
        f"reconcile.toml:{unknown_at}: install: unknown key 'spec' (did you mean 'specs'?)",
    ]


def test_format_key_path() -> None:
    assert format_key_path(()) == ""
    assert format_key_path(("mirror", 1, "url")) == "mirror[1].url"
    assert format_key_path(("install", "specs", 2)) == "install.specs[2]"


def test_a_missing_manifest_is_a_manifest_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path / "nowhere.toml")
    (problem,) = caught.value.problems
    assert problem.line == 0
    assert (
        str(problem)
        == f"{tmp_path / 'nowhere.toml'}: cannot read the manifest: No such file or directory"
    )
    assert caught.value.hint is not None


def test_a_manifest_that_is_not_utf8_points_at_the_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "reconcile.toml"
    path.write_bytes(b'version = 1\n[install]\nroot = "caf\xe9"\n')
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    (problem,) = caught.value.problems
    assert (problem.line, problem.column) == (3, 12)
    assert "byte 0xe9" in problem.message


def test_problems_name_the_file_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "reconcile.toml").write_text("version = 1\nmirrors = []\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ManifestError) as caught:
        load_manifest(Path("team/reconcile.toml"))
    assert [str(p) for p in caught.value.problems] == [
        "team/reconcile.toml:2:1: unknown key 'mirrors' (did you mean 'mirror'?)"
    ]
