"""Load a manifest (``reconcile.toml``) into the model, reporting every problem with its place.

``loads_manifest`` parses with the standard library's ``tomllib``, structures the data
(every field checked: ``structure.py``), runs the checks that span tables, and raises one
``ManifestError`` listing all the problems in file order. Only then is the text parsed again
with tomlkit, which keeps where every key and value starts (``locate.py``): the positions are
needed only for problems, and tomlkit costs a plan's start-up more than all the rest of the
manifest's reading. ``dump_manifest`` writes a model back as TOML.
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconcile.errors import ManifestError, Problem
from reconcile.manifest.bounded import MAX_MANIFEST_BYTES, NotReadableError, read_bounded
from reconcile.manifest.crosscheck import cross_check
from reconcile.manifest.finding import Finding, format_key_path
from reconcile.manifest.model import Manifest, ManifestFile
from reconcile.manifest.paths import path_findings
from reconcile.manifest.structure import converter, structure_manifest

if TYPE_CHECKING:
    from reconcile.manifest.locate import LocatedDocument, Position


MANIFEST_HINT = (
    "fix each problem at the line and column given; "
    "schemas/manifest.schema.json describes every key"
)
SYNTAX_HINT = "fix the TOML syntax at that place (the format is described at https://toml.io)"


def _problem(file: str, position: Position | None, path: str, message: str) -> Problem:
    line, column = (position.line, position.column) if position is not None else (0, 0)
    return Problem(file=file, line=line, column=column, path=path, message=message)


def _located(file: str, document: LocatedDocument, finding: Finding) -> Problem:
    if finding.anchor == "key":
        position = document.key_position(finding.at)
    else:
        position = document.value_position(finding.at)
    return _problem(file, position, format_key_path(finding.path), finding.message)


def _in_file_order(problems: list[Problem]) -> list[Problem]:
    unique = list(dict.fromkeys(problems))  # attrs frozen classes hash by value
    return sorted(unique, key=lambda problem: (problem.line, problem.column))


def _located_document(file: str, text: str) -> LocatedDocument:
    """``text`` parsed again by tomlkit, with positions; a syntax error is a ``ManifestError``
    placed where tomlkit stopped, worded as it always was."""
    from reconcile.manifest.locate import TomlSyntaxError, parse_located

    try:
        return parse_located(text)
    except TomlSyntaxError as exc:
        problem = _problem(file, exc.position, "", f"invalid TOML: {exc.message}")
        raise ManifestError([problem], hint=SYNTAX_HINT) from None


def loads_manifest(text: str, *, path: Path) -> ManifestFile:
    """The manifest in ``text``; ``path`` names it in messages and anchors relative paths."""
    file = str(path)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    document: LocatedDocument | None = None
    data: dict[str, Any]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        # tomlkit says where and why (and reads the little TOML 1.1 that tomllib does not)
        document = _located_document(file, text)
        data = document.data
    manifest, findings = structure_manifest(data)
    findings.extend(cross_check(data))
    findings.extend(path_findings(data, path.absolute().parent))
    if findings or manifest is None:
        if document is None:
            document = _located_document(file, text)
        problems = [_located(file, document, finding) for finding in findings]
        raise ManifestError(_in_file_order(problems), hint=MANIFEST_HINT)
    return ManifestFile(path=path.absolute(), digest=digest, manifest=manifest)


def load_manifest(path: Path) -> ManifestFile:
    """Read and load the manifest at ``path``."""
    file = str(path)
    try:
        data = read_bounded(path, MAX_MANIFEST_BYTES)
    except OSError as exc:
        problem = _problem(file, None, "", f"cannot read the manifest: {exc.strerror or exc}")
        raise ManifestError(
            [problem], hint="check the manifest's path (reconcile -m PATH)"
        ) from None
    except NotReadableError as exc:
        problem = _problem(file, None, "", f"not read: {exc.message}")
        raise ManifestError(
            [problem],
            hint="name a manifest file (reconcile -m PATH); a manifest this large is not one "
            "a person keeps: split what generates it",
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        from reconcile.manifest.locate import Position

        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        problem = _problem(
            file,
            Position(line=line, column=column),
            "",
            f"not UTF-8: byte 0x{data[exc.start]:02x} cannot be decoded (TOML files are UTF-8)",
        )
        raise ManifestError([problem], hint="save the manifest as UTF-8") from None
    return loads_manifest(text, path=path)


def dump_manifest(manifest: Manifest) -> str:
    """TOML text that ``loads_manifest`` reads back into an equal ``Manifest``."""
    import tomlkit  # only writing needs it

    return tomlkit.dumps(converter().unstructure(manifest))
