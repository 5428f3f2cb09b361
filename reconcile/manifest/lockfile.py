"""The lock file: which DAG hash each declared selector resolved to, and what every node of
its closure was fetched as (mirror, tarball sha256 and size, signer); the sources' URLs and
checksums (``schemas/lock.schema.json``).

It lives next to the manifest: ``reconcile.toml`` -> ``reconcile.lock``. The bytes depend on
the resolution only (sorted keys, nodes in name/version/hash order, two-space indent, a
final newline), so the same inputs give the same file and a review diff shows one changed
block per changed node. It is JSON, not TOML, for the reasons docs/manifest.md gives.

A lock never replaces verification: plan and apply still fetch and check every spec's
signed metadata; the lock only decides *which* hash a selector means and refuses a tarball
whose checksum or size is not the locked one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

from reconcile import bounded_json
from reconcile.atomic_write import atomic_write_bytes
from reconcile.errors import LockFileError, Problem
from reconcile.manifest.bounded import NotReadableError, read_bounded
from reconcile.manifest.json_positions import (
    JsonPath,
    format_path,
    line_and_column,
    value_offsets,
)
from reconcile.manifest.model import ED25519_IDENTITY_PREFIX, SIGSTORE_IDENTITY_PREFIX
from reconcile.reprs import fields_repr

LOCK_VERSION = 1
# A lock of a few thousand specs is well under this; a bigger file is not one reconcile wrote.
MAX_LOCK_BYTES = 64 * 1024 * 1024

SignerScheme = Literal["gpg", "ed25519", "sigstore"]
# How verification names a signer: a gpg fingerprint as it is, the others by their [[key]]
# name behind a prefix (so that it never looks like a fingerprint).
_PREFIXES: dict[SignerScheme, str] = {
    "ed25519": ED25519_IDENTITY_PREFIX,
    "sigstore": SIGSTORE_IDENTITY_PREFIX,
}
_DAG_HASH = re.compile(r"[a-z0-9]{1,64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FINGERPRINT = re.compile(r"[0-9A-F]{40}")


@attrs.frozen(kw_only=True)
class LockedSigner:
    """Who signed a node's metadata: a GnuPG fingerprint, or the ``[[key]]`` name of an
    ed25519 or Sigstore key."""

    __repr__ = fields_repr

    scheme: SignerScheme
    id: str

    @classmethod
    def from_identity(cls, identity: str | None) -> LockedSigner | None:
        """From the signer as verification records it (``None``: an unsigned mirror)."""
        if identity is None:
            return None
        for scheme, prefix in _PREFIXES.items():
            if identity.startswith(prefix):
                return cls(scheme=scheme, id=identity.removeprefix(prefix))
        return cls(scheme="gpg", id=identity)

    @property
    def identity(self) -> str:
        return _PREFIXES.get(self.scheme, "") + self.id


@attrs.frozen(kw_only=True)
class LockedNode:
    __repr__ = fields_repr

    name: str
    version: str
    hash: str
    mirror: str  # the [[mirror]] it was fetched from when locked (plan prefers it)
    tarball_sha256: str
    tarball_size: int
    signer: LockedSigner | None

    def short(self) -> str:
        return f"{self.name}@{self.version}/{self.hash[:7]}"


@attrs.frozen(kw_only=True)
class LockedSpec:
    """What one ``[install] specs`` selector resolved to."""

    __repr__ = fields_repr

    selector: str
    hash: str
    closure: tuple[str, ...]  # every non-external node's hash, the root's included, sorted


@attrs.frozen(kw_only=True)
class LockedSource:
    __repr__ = fields_repr

    name: str
    version: str
    mirror: str
    url: str  # as the manifest gives it, credentials masked
    sha256: str


@attrs.frozen(kw_only=True)
class LockFile:
    __repr__ = fields_repr

    specs: tuple[LockedSpec, ...] = ()  # by selector text
    nodes: tuple[LockedNode, ...] = ()  # by name, version, hash
    sources: tuple[LockedSource, ...] = ()  # by mirror, name, version
    lock_version: int = LOCK_VERSION

    def spec(self, selector: str) -> LockedSpec | None:
        return next((s for s in self.specs if s.selector == selector), None)

    def node(self, dag_hash: str) -> LockedNode | None:
        return self.by_hash.get(dag_hash)

    @property
    def by_hash(self) -> Mapping[str, LockedNode]:
        return {node.hash: node for node in self.nodes}

    def source(self, mirror: str, name: str, version: str) -> LockedSource | None:
        return next(
            (s for s in self.sources if (s.mirror, s.name, s.version) == (mirror, name, version)),
            None,
        )


def lock_path(manifest_path: Path) -> Path:
    """``reconcile.toml`` -> ``reconcile.lock``, beside it (``prod.toml`` -> ``prod.lock``)."""
    return manifest_path.with_suffix(".lock")


def make_lock(
    *,
    specs: Mapping[str, LockedSpec],
    nodes: Mapping[str, LockedNode],
    sources: list[LockedSource],
) -> LockFile:
    """A lock in its canonical order (what makes its bytes deterministic)."""
    return LockFile(
        specs=tuple(specs[key] for key in sorted(specs)),
        nodes=tuple(sorted(nodes.values(), key=lambda n: (n.name, n.version, n.hash))),
        sources=tuple(sorted(sources, key=lambda s: (s.mirror, s.name, s.version, s.url))),
    )


# --- to bytes ------------------------------------------------------------------------------


def lock_to_dict(lock: LockFile) -> dict[str, Any]:
    return {
        "lock_version": lock.lock_version,
        "specs": {
            spec.selector: {"hash": spec.hash, "closure": list(spec.closure)} for spec in lock.specs
        },
        "nodes": [
            {
                "name": node.name,
                "version": node.version,
                "hash": node.hash,
                "mirror": node.mirror,
                "tarball": {"sha256": node.tarball_sha256, "size": node.tarball_size},
                "signer": None
                if node.signer is None
                else {"scheme": node.signer.scheme, "id": node.signer.id},
            }
            for node in lock.nodes
        ],
        "sources": [
            {
                "name": source.name,
                "version": source.version,
                "mirror": source.mirror,
                "url": source.url,
                "sha256": source.sha256,
            }
            for source in lock.sources
        ],
    }


def dump_lock(lock: LockFile) -> bytes:
    """The lock's bytes: one key per line, keys sorted, so a diff names what changed."""
    text = json.dumps(lock_to_dict(lock), indent=2, sort_keys=True, ensure_ascii=False)
    return (text + "\n").encode("utf-8")


def write_lock(path: Path, lock: LockFile) -> None:
    """Readers see the old lock or the new one, never half of one."""
    atomic_write_bytes(path, dump_lock(lock))


# --- from bytes ----------------------------------------------------------------------------


class _Problems:
    """Problems found while reading a lock, each at the JSON path it concerns."""

    def __init__(self) -> None:
        self.found: list[tuple[JsonPath, str]] = []

    def add(self, path: JsonPath, message: str) -> None:
        self.found.append((path, message))

    def expect_object(self, value: object, path: JsonPath, keys: Mapping[str, bool]) -> bool:
        """``value`` is an object with the ``keys`` marked True and no keys but ``keys``."""
        if not isinstance(value, dict):
            self.add(path, f"expected an object, got {_kind(value)}")
            return False
        good = True
        for key in value:
            if key not in keys:
                self.add((*path, key), f"unknown key {key!r}; expected one of {sorted(keys)}")
                good = False
        for key, required in keys.items():
            if required and key not in value:
                self.add(path, f"missing key {key!r}")
                good = False
        return good

    def string(
        self, value: object, path: JsonPath, pattern: re.Pattern[str] | None = None, what: str = ""
    ) -> str:
        if not isinstance(value, str):
            self.add(path, f"expected a string, got {_kind(value)}")
            return ""
        if pattern is not None and not pattern.fullmatch(value):
            self.add(path, f"expected {what}, got {bounded_json.shown(value)}")
        elif not value:
            self.add(path, "expected a non-empty string")
        return value


def _kind(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "true or false"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"the number {value}"
    return names.get(type(value), type(value).__name__)


def _nodes(data: object, problems: _Problems) -> list[LockedNode]:
    nodes: list[LockedNode] = []
    if not isinstance(data, list):
        problems.add(("nodes",), f"expected an array, got {_kind(data)}")
        return nodes
    keys = dict.fromkeys(("name", "version", "hash", "mirror", "tarball", "signer"), True)
    for index, item in enumerate(data):
        at: JsonPath = ("nodes", index)
        if not problems.expect_object(item, at, keys):
            continue
        assert isinstance(item, dict)
        tarball = item["tarball"]
        size = 0
        sha256 = ""
        if problems.expect_object(tarball, (*at, "tarball"), {"sha256": True, "size": True}):
            sha256 = problems.string(
                tarball["sha256"], (*at, "tarball", "sha256"), _SHA256, "64 lower-case hex digits"
            )
            size = tarball["size"]
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                problems.add((*at, "tarball", "size"), f"expected bytes (0 or more), got {size!r}")
                size = 0
        nodes.append(
            LockedNode(
                name=problems.string(item["name"], (*at, "name")),
                version=problems.string(item["version"], (*at, "version")),
                hash=problems.string(item["hash"], (*at, "hash"), _DAG_HASH, "a DAG hash"),
                mirror=problems.string(item["mirror"], (*at, "mirror")),
                tarball_sha256=sha256,
                tarball_size=size,
                signer=_signer(item["signer"], (*at, "signer"), problems),
            )
        )
    seen: dict[str, int] = {}
    for index, node in enumerate(nodes):
        if node.hash in seen:
            problems.add(("nodes", index, "hash"), f"{node.hash} is listed twice")
        seen.setdefault(node.hash, index)
    return nodes


def _signer(value: object, at: JsonPath, problems: _Problems) -> LockedSigner | None:
    if value is None or not problems.expect_object(value, at, {"scheme": True, "id": True}):
        return None
    assert isinstance(value, dict)
    scheme = value["scheme"]
    if scheme not in ("gpg", *_PREFIXES):
        problems.add(
            (*at, "scheme"),
            f"expected 'gpg', 'ed25519' or 'sigstore', got {bounded_json.shown(scheme)}",
        )
        return None
    if scheme == "gpg":
        key = problems.string(value["id"], (*at, "id"), _FINGERPRINT, "40 upper-case hex digits")
    else:
        key = problems.string(value["id"], (*at, "id"))
    return LockedSigner(scheme=scheme, id=key)


def _specs(data: object, nodes: Mapping[str, LockedNode], problems: _Problems) -> list[LockedSpec]:
    specs: list[LockedSpec] = []
    if not isinstance(data, dict):
        problems.add(("specs",), f"expected an object, got {_kind(data)}")
        return specs
    for selector, item in data.items():
        at: JsonPath = ("specs", selector)
        if not problems.expect_object(item, at, {"hash": True, "closure": True}):
            continue
        assert isinstance(item, dict)
        root = problems.string(item["hash"], (*at, "hash"), _DAG_HASH, "a DAG hash")
        closure = item["closure"]
        if not isinstance(closure, list):
            problems.add((*at, "closure"), f"expected an array, got {_kind(closure)}")
            continue
        hashes = []
        for index, dag_hash in enumerate(closure):
            where = (*at, "closure", index)
            hashes.append(problems.string(dag_hash, where, _DAG_HASH, "a DAG hash"))
            if isinstance(dag_hash, str) and dag_hash not in nodes:
                problems.add(where, f"{dag_hash} is not one of the lock's nodes")
        if root and root not in hashes:
            problems.add((*at, "closure"), f"does not hold the selector's own hash {root}")
        specs.append(LockedSpec(selector=selector, hash=root, closure=tuple(hashes)))
    return specs


def _sources(data: object, problems: _Problems) -> list[LockedSource]:
    sources: list[LockedSource] = []
    if not isinstance(data, list):
        problems.add(("sources",), f"expected an array, got {_kind(data)}")
        return sources
    keys = dict.fromkeys(("name", "version", "mirror", "url", "sha256"), True)
    for index, item in enumerate(data):
        at: JsonPath = ("sources", index)
        if not problems.expect_object(item, at, keys):
            continue
        assert isinstance(item, dict)
        sources.append(
            LockedSource(
                name=problems.string(item["name"], (*at, "name")),
                version=problems.string(item["version"], (*at, "version")),
                mirror=problems.string(item["mirror"], (*at, "mirror")),
                url=problems.string(item["url"], (*at, "url")),
                sha256=problems.string(
                    item["sha256"], (*at, "sha256"), _SHA256, "64 lower-case hex digits"
                ),
            )
        )
    return sources


def parse_lock(text: str, *, source: str) -> LockFile:
    """The lock in ``text``; ``LockFileError`` listing every problem at its line and column."""
    located = _locator(text, source)
    try:
        document = bounded_json.loads(text)
    except json.JSONDecodeError as exc:
        problem = Problem(file=source, line=exc.lineno, column=exc.colno, path="", message="")
        raise LockFileError(
            [attrs.evolve(problem, message=f"not JSON: {exc.msg}")], hint=_REWRITE
        ) from None
    except ValueError as exc:  # nested too deep: no position worth walking to
        problem = Problem(file=source, line=1, column=1, path="", message=f"not a lock: {exc}")
        raise LockFileError([problem], hint=_REWRITE) from None
    problems = _Problems()
    keys = {"lock_version": True, "specs": True, "nodes": True, "sources": True}
    if not problems.expect_object(document, (), keys):
        raise LockFileError([located(p, m) for p, m in problems.found], hint=_REWRITE)
    assert isinstance(document, dict)
    version = document["lock_version"]
    if version != LOCK_VERSION or isinstance(version, bool):
        problems.add(
            ("lock_version",),
            f"lock format {bounded_json.shown(version)} is not supported (expected {LOCK_VERSION})",
        )
    nodes = _nodes(document["nodes"], problems)
    by_hash = {node.hash: node for node in nodes}
    specs = _specs(document["specs"], by_hash, problems)
    sources = _sources(document["sources"], problems)
    if problems.found:
        raise LockFileError([located(p, m) for p, m in problems.found], hint=_REWRITE)
    return LockFile(specs=tuple(specs), nodes=tuple(nodes), sources=tuple(sources))


_REWRITE = (
    "the lock is written by 'reconcile lock', never by hand: restore it from version control, "
    "or delete it and run 'reconcile lock' to resolve every selector anew"
)


def _locator(text: str, source: str) -> Callable[[JsonPath, str], Problem]:
    offsets: dict[JsonPath, int] | None = None

    def located(path: JsonPath, message: str) -> Problem:
        nonlocal offsets
        if offsets is None:
            offsets = value_offsets(text)
        # the value itself, else the nearest enclosing value that exists
        probe = path
        while probe not in offsets and probe:
            probe = probe[:-1]
        line, column = line_and_column(text, offsets.get(probe, 0))
        return Problem(
            file=source, line=line, column=column, path=format_path(path), message=message
        )

    return located


def read_lock(path: Path) -> LockFile | None:
    """The lock at ``path``; None when there is none. Only a regular file is read (a FIFO
    or device planted there is refused, never waited on), and only up to a bound."""
    try:
        data = read_bounded(path, MAX_LOCK_BYTES)
    except FileNotFoundError:
        return None
    except NotReadableError as exc:
        problem = Problem(file=str(path), line=0, column=0, path="", message=exc.message)
        raise LockFileError([problem], hint=_REWRITE) from None
    except OSError as exc:
        problem = Problem(
            file=str(path), line=0, column=0, path="", message=f"cannot read: {exc.strerror}"
        )
        raise LockFileError([problem]) from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problem = Problem(
            file=str(path), line=0, column=0, path="", message=f"not UTF-8 text: {exc.reason}"
        )
        raise LockFileError([problem], hint=_REWRITE) from None
    return parse_lock(text, source=str(path))
