"""Observed facts: what is on disk and in the mirrors, as plain data for the planner."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from reconcile.buildcache.database import IndexEntry
from reconcile.buildcache.layout_v2 import FetchedSpec
from reconcile.observe.findings import CheckMode, Finding
from reconcile.permissions import PermissionChange
from reconcile.reprs import fields_repr
from reconcile.sources.observe import SourceMirrorFacts
from reconcile.state.records import InstallRecord
from reconcile.views.generations import ViewState


@attrs.frozen(kw_only=True)
class MirrorView:
    __repr__ = fields_repr

    name: str
    url: str  # full URL (may hold credentials: mask before printing)
    signed: bool
    index: Mapping[str, IndexEntry]  # empty when the index could not be read
    problem: str | None = None  # why the index could not be read
    layout: int = 2  # Spack's binary cache layout found there (3 is tried first)
    empty: bool = False  # no index at all (or no folder): nothing was ever published there


@attrs.frozen(kw_only=True)
class VerifiedSpec:
    """Spec metadata fetched fresh and verified, with the size of the tarball it names."""

    __repr__ = fields_repr

    fetched: FetchedSpec
    mirror: str
    tarball_url: str
    tarball_bytes: int
    cached: bool = False  # a cache root holds the tarball (verified again when used)
    # the prefix the package was built in, read from that cached tarball; None: not known
    # before the tarball is downloaded (neither layout's metadata records it)
    built_prefix: str | None = None
    # from the same tarball: where its dependencies were when it was built (hash_to_prefix),
    # by DAG hash; plan uses them for dependencies whose own tarballs it has not read
    dependency_prefixes: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Reverification:
    """An installed spec whose recorded signer no longer counts, looked up again on every
    mirror that lists it (manifest order), under the keys that count now."""

    __repr__ = fields_repr

    verified: VerifiedSpec | None  # the first mirror whose signatures satisfy the policy
    tried: tuple[str, ...] = ()  # every other mirror that lists it, and why it did not


@attrs.frozen(kw_only=True)
class MirrorPermissionFacts:
    __repr__ = fields_repr

    root: str  # the mirror's folder
    exists: bool
    changes: tuple[PermissionChange, ...]  # paths whose mode or group differ


@attrs.frozen(kw_only=True)
class Observed:
    __repr__ = fields_repr

    install_root: str  # the manifest's root, resolved (records live below it)
    records: Mapping[str, InstallRecord]
    present: frozenset[str]  # hashes whose recorded prefix exists
    mirrors: tuple[MirrorView, ...]
    verified: Mapping[str, VerifiedSpec] = attrs.field(factory=dict)
    path_exists: Mapping[str, bool] = attrs.field(factory=dict)
    # installed specs whose recorded signer no longer counts, looked up again (hash -> facts)
    reverified: Mapping[str, Reverification] = attrs.field(factory=dict)
    # "<mirror>/<hash>" -> identities of the declared keys whose sidecar signature over that
    # spec's statement verifies (asked for by publishing with statement keys)
    sidecar_signers: Mapping[str, frozenset[str]] = attrs.field(factory=dict)
    # the source mirrors the manifest's [[source]] entries fill, by mirror name
    source_mirrors: Mapping[str, SourceMirrorFacts] = attrs.field(factory=dict)
    # mirrors with [mirror.permissions]: what differs on disk now, by mirror name
    mirror_permissions: Mapping[str, MirrorPermissionFacts] = attrs.field(factory=dict)
    # how each present prefix differs from its record (hash -> findings, empty when it
    # matches), and how that was checked; None: the prefixes were not compared
    drift: Mapping[str, tuple[Finding, ...]] = attrs.field(factory=dict)
    drift_mode: CheckMode | None = None
    # each declared [[view]]'s symlink and generations, by view name
    views: Mapping[str, ViewState] = attrs.field(factory=dict)
