"""Load a manifest (``reconcile.toml``) into the model, reporting every problem with its place.

``loads_manifest`` parses with tomlkit (keeping positions), structures the data with cattrs
(every field checked), runs the checks that span tables, and raises one ``ManifestError``
listing all the problems in file order. ``dump_manifest`` writes a model back as TOML.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import tomlkit

from reconcile.errors import ManifestError, Problem
from reconcile.manifest.bounded import MAX_MANIFEST_BYTES, NotReadableError, read_bounded
from reconcile.manifest.crosscheck import cross_check
from reconcile.manifest.finding import Finding
from reconcile.manifest.locate import (
    LocatedDocument,
    Position,
    TomlSyntaxError,
    format_key_path,
    parse_located,
)
from reconcile.manifest.model import Manifest, ManifestFile
from reconcile.manifest.paths import path_findings
from reconcile.manifest.structure import make_converter, structure_manifest

_CONVERTER = make_converter()

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


def loads_manifest(text: str, *, path: Path) -> ManifestFile:
    """The manifest in ``text``; ``path`` names it in messages and anchors relative paths."""
    file = str(path)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    try:
        document = parse_located(text)
    except TomlSyntaxError as exc:
        problem = _problem(file, exc.position, "", f"invalid TOML: {exc.message}")
        raise ManifestError([problem], hint=SYNTAX_HINT) from None
    manifest, findings = structure_manifest(_CONVERTER, document.data)
    findings.extend(cross_check(document.data))
    findings.extend(path_findings(document.data, path.absolute().parent))
    if findings or manifest is None:
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
    return tomlkit.dumps(_CONVERTER.unstructure(manifest))
