"""Observed facts to and from JSON, so that planner tests state their world as data.

Spec nodes and spec documents are kept as Spack writes them (``raw``) and parsed with the
same functions the observers use; install records use their own on-disk codec. Fields left
at their default are omitted when dumping, and may be omitted in hand-written files.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cattrs

from reconcile.observe.facts import Observed
from reconcile.permissions import PermissionChange
from reconcile.spack.spec import SpecDocument, SpecNode, parse_node, parse_spec_document
from reconcile.state.records import InstallRecord, record_from_dict, record_to_dict


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, omit_if_default=True)
    converter.register_structure_hook(SpecNode, lambda raw, _: parse_node(raw))
    converter.register_unstructure_hook(SpecNode, lambda node: dict(node.raw))
    converter.register_structure_hook(SpecDocument, lambda raw, _: parse_spec_document(raw))
    converter.register_unstructure_hook(SpecDocument, lambda document: dict(document.raw))
    converter.register_structure_hook(InstallRecord, lambda raw, _: record_from_dict(raw))
    converter.register_unstructure_hook(InstallRecord, record_to_dict)
    converter.register_structure_hook(Path, lambda raw, _: Path(raw))
    converter.register_unstructure_hook(Path, str)
    converter.register_unstructure_hook(frozenset, sorted)
    converter.register_structure_hook(PermissionChange, lambda raw, _: PermissionChange(**raw))
    converter.register_unstructure_hook(PermissionChange, lambda change: change._asdict())
    return converter


CONVERTER = _make_converter()


def load_facts(data: Mapping[str, Any]) -> Observed:
    """The ``Observed`` a ``facts.json`` describes."""
    return CONVERTER.structure(data, Observed)


def dump_facts(observed: Observed) -> dict[str, Any]:
    """JSON-ready data that ``load_facts`` turns back into an equal ``Observed``."""
    data: dict[str, Any] = CONVERTER.unstructure(observed)
    return data
