"""The observation loop: gather facts until the planner has what it needs."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from reconcile.buildcache.pinned_keys import trust_policy
from reconcile.errors import PlanError
from reconcile.manifest.lockfile import lock_path, read_lock
from reconcile.manifest.model import ManifestFile, Source
from reconcile.observe.facts import MirrorPermissionFacts, MirrorView, Observed, VerifiedSpec
from reconcile.observe.findings import CheckMode
from reconcile.observe.install_tree import observe_install_tree, observe_prefix_drift
from reconcile.observe.mirrors import fetch_verified_spec, find_valid_signature, observe_mirrors
from reconcile.observe.sidecars import sidecar_fact_key, sidecar_signers
from reconcile.permissions import permission_changes, resolve_group
from reconcile.plan.locking import LockUse
from reconcile.plan.model import Plan
from reconcile.plan.planner import make_plan
from reconcile.sources.observe import SourceMirrorFacts, observe_source_mirror
from reconcile.spack.spec import SpecNode
from reconcile.transport.file import url_to_path
from reconcile.transport.registry import TransportPool
from reconcile.trust.policy import TrustPolicy
from reconcile.views.generations import read_view_state

if TYPE_CHECKING:
    from reconcile.cache.store import BlobCache

VERIFY_WORKERS = 8
# A closure deeper than this many rounds of "fetch what the plan needs" is not a real DAG.
MAX_ROUNDS = 1000


def observe_source_mirrors(
    manifest_file: ManifestFile, *, check_contents: bool
) -> dict[str, SourceMirrorFacts]:
    """Read-only facts about each mirror that [[source]] entries fill."""
    facts = {}
    by_mirror: dict[str, list[Source]] = {}
    for source in manifest_file.manifest.sources:
        by_mirror.setdefault(source.mirror, []).append(source)
    for name, sources in by_mirror.items():
        root = url_to_path(manifest_file.mirror_url(manifest_file.manifest.mirror(name)))
        facts[name] = observe_source_mirror(root, sources, check_contents=check_contents)
    return facts


def observe_mirror_permissions(manifest_file: ManifestFile) -> dict[str, MirrorPermissionFacts]:
    """For each local mirror with [mirror.permissions], the files that differ (read-only)."""
    facts = {}
    for mirror in manifest_file.manifest.mirrors:
        url = manifest_file.mirror_url(mirror)
        if mirror.permissions is None or not url.startswith("file:"):
            continue
        root = url_to_path(url)
        group = mirror.permissions.group
        gid = resolve_group(group) if group else None
        exists = root.is_dir()
        changes = permission_changes(root, mirror.permissions, gid) if exists else []
        facts[mirror.name] = MirrorPermissionFacts(
            root=str(root), exists=exists, changes=tuple(changes)
        )
    return facts


def with_index_closure(needed: Mapping[str, SpecNode], observed: Observed) -> dict[str, SpecNode]:
    """The specs the planner asked for, and their run-time closures as the mirrors' indexes
    describe them (not yet verified, not installed): fetched in one round rather than one
    round per level, so a chain of thousands of specs plans in a few rounds. The planner
    still checks every spec against its own signed metadata."""
    index: dict[str, SpecNode] = {}
    for mirror in reversed(observed.mirrors):  # the first mirror in manifest order wins
        index.update((dag_hash, entry.node) for dag_hash, entry in mirror.index.items())
    wanted = dict(needed)
    pending = list(needed.values())
    while pending:
        for dep in pending.pop().runtime_dependencies():
            node = index.get(dep.hash)
            skip = dep.hash in wanted or dep.hash in observed.verified
            if skip or dep.hash in observed.present or node is None or node.is_external:
                continue
            wanted[dep.hash] = node
            pending.append(node)
    return wanted


def _locked_mirror_first(
    mirrors: tuple[MirrorView, ...], dag_hash: str, lock: LockUse | None
) -> tuple[MirrorView, ...]:
    """The mirrors to fetch ``dag_hash`` from: the one the lock names first (the others
    still serve it when that one cannot)."""
    locked = lock.lock.node(dag_hash) if lock is not None and lock.lock is not None else None
    if locked is None:
        return mirrors
    return tuple(sorted(mirrors, key=lambda m: m.name != locked.mirror))


def _fetch(
    node: SpecNode,
    *,
    mirrors: tuple[MirrorView, ...],
    lock: LockUse | None,
    pool: TransportPool,
    trust: TrustPolicy,
    cache: BlobCache | None,
) -> VerifiedSpec:
    ordered = _locked_mirror_first(mirrors, node.hash, lock)
    return fetch_verified_spec(node, mirrors=ordered, pool=pool, trust=trust, cache=cache)


def observe_and_plan(
    manifest_file: ManifestFile,
    pool: TransportPool,
    *,
    cache: BlobCache | None = None,
    check_contents: bool = False,
    trust: TrustPolicy | None = None,
    force: bool = False,
    lock: LockUse | None = None,
) -> Plan:
    """Observe the install tree and the mirrors, fetching and verifying spec metadata as the
    planner asks for it, and return the plan. ``trust`` is the run's trust policy; without
    one, a policy of the manifest's keys is made for this call. ``lock`` is how the lock
    file is used (None: not at all)."""
    manifest = manifest_file.manifest
    syncs = any(m.specs for m in manifest.mirrors)
    if manifest.install is None and not manifest.sources and not syncs:
        raise PlanError(
            f"{manifest_file.path}: the manifest has no [install] table, so there is nothing "
            "to plan",
            hint="add [install] with root and specs",
        )
    install = manifest_file.manifest.install
    records, present = (
        observe_install_tree(manifest_file.install_root()) if install else ({}, frozenset())
    )
    mode: CheckMode = "contents" if check_contents else "fast"
    observed = Observed(
        install_root=str(manifest_file.install_root()) if install else "",
        records=records,
        present=present,
        drift=observe_prefix_drift(
            records, present, mode=mode, ignore_patterns=manifest.drift.ignore
        ),
        drift_mode=mode if install else None,
        mirrors=observe_mirrors(
            manifest_file, pool, cache.index_copy if cache is not None else lambda _url: None
        )
        if install
        or manifest_file.manifest.publish
        or any(m.specs for m in manifest_file.manifest.mirrors)
        else (),
        source_mirrors=observe_source_mirrors(manifest_file, check_contents=check_contents),
        mirror_permissions=observe_mirror_permissions(manifest_file),
        views={view.name: read_view_state(manifest_file.view_path(view)) for view in manifest.views}
        if install
        else {},
    )
    own_trust = trust is None
    policy = trust or trust_policy(manifest_file, read_url=pool.read_bytes)
    try:
        for _ in range(MAX_ROUNDS):
            result = make_plan(manifest_file, observed, force=force, lock=lock)
            if isinstance(result, Plan):
                return result
            if any(m.signed for m in observed.mirrors) and (
                result.specs or result.reverify or result.sidecars
            ):
                policy.load()  # a bad [[key]] fails the run here, not per mirror in a worker
            verified = dict(observed.verified)
            wanted = with_index_closure(result.specs, observed)
            # each fetch + gpg verification waits on I/O or a child process: overlap them
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=VERIFY_WORKERS) as workers:
                fetched = workers.map(
                    partial(
                        _fetch,
                        mirrors=observed.mirrors,
                        lock=lock,
                        pool=pool,
                        trust=policy,
                        cache=cache,
                    ),
                    wanted.values(),
                )
                verified.update(zip(wanted, fetched, strict=True))
                reverified = dict(observed.reverified)
                found = workers.map(
                    partial(
                        find_valid_signature,
                        mirrors=observed.mirrors,
                        pool=pool,
                        trust=policy,
                        cache=cache,
                    ),
                    result.reverify.values(),
                )
                reverified.update(zip(result.reverify, found, strict=True))
                views = {view.name: view for view in observed.mirrors}
                wanted_sidecars = sorted(result.sidecars)
                signers = workers.map(
                    partial(sidecar_signers, pool=pool, trust=policy),
                    [views[mirror] for mirror, _ in wanted_sidecars],
                    [views[mirror].index[h].node for mirror, h in wanted_sidecars],
                )
                sidecars = dict(observed.sidecar_signers)
                sidecars.update(
                    (sidecar_fact_key(mirror, dag_hash), found_signers)
                    for (mirror, dag_hash), found_signers in zip(
                        wanted_sidecars, signers, strict=True
                    )
                )
            exists = dict(observed.path_exists)
            for path in result.paths:
                exists[path] = Path(path).exists() or Path(path).is_symlink()
            observed = attrs.evolve(
                observed,
                verified=verified,
                path_exists=exists,
                reverified=reverified,
                sidecar_signers=sidecars,
            )
    finally:
        if own_trust:
            policy.close()
    raise PlanError("the dependency graph did not converge; is there a cycle in the specs?")


def lock_use(manifest_file: ManifestFile, *, locked: bool) -> LockUse | None:
    """How plan and apply use the lock file beside the manifest: its locked hashes where it
    satisfies the manifest (None when there is no lock file), or, ``locked``, nothing else."""
    path = lock_path(manifest_file.path)
    lock = read_lock(path)
    if lock is None and not locked:
        return None
    return LockUse(lock=lock, name=path.name, mode="locked" if locked else "use")


def needed_blobs(manifest_file: ManifestFile, pool: TransportPool) -> set[str]:
    """sha256 of every tarball the manifest's specs need: those the plan would install and
    those the installed specs of its closures came from (a wiped runner needs them again).
    ``cache gc`` never removes these."""
    plan = observe_and_plan(manifest_file, pool, lock=lock_use(manifest_file, locked=False))
    keep = {action.tarball_sha256 for action in plan.installs}
    records, _ = observe_install_tree(manifest_file.install_root())
    keep |= {records[h].tarball_sha256 for h in plan.prefixes if h in records}
    return keep
