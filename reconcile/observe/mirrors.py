"""Facts about mirrors: their indexes, and verified spec metadata fetched fresh."""

from __future__ import annotations

from reconcile.buildcache.layout_v2 import fetch_spec, read_index, tarball_url
from reconcile.errors import NotFoundError, PlanError, TransportError, VerificationError
from reconcile.manifest.model import ManifestFile
from reconcile.observe.facts import MirrorView, VerifiedSpec
from reconcile.spack.spec import SpecNode
from reconcile.transport.registry import TransportPool
from reconcile.trust.verify import GpgVerifier


def observe_mirrors(manifest_file: ManifestFile, pool: TransportPool) -> tuple[MirrorView, ...]:
    """Each declared mirror with its index; an unreadable index is a recorded problem."""
    views = []
    for mirror in manifest_file.manifest.mirrors:
        url = manifest_file.mirror_url(mirror)
        try:
            index = read_index(pool.for_url(url), url)
            problem = None
        except (TransportError, VerificationError) as exc:
            index, problem = {}, exc.message
        views.append(
            MirrorView(
                name=mirror.name, url=url, signed=mirror.signed, index=index, problem=problem
            )
        )
    return tuple(views)


def fetch_verified_spec(
    node: SpecNode,
    mirrors: tuple[MirrorView, ...],
    pool: TransportPool,
    verifier: GpgVerifier | None,
) -> VerifiedSpec:
    """Fetch and verify ``node``'s metadata from the first mirror (in manifest order) whose
    index lists it. A verification failure is final: it is never papered over by trying the
    next mirror."""
    tried = []
    for mirror in mirrors:
        entry = mirror.index.get(node.hash)
        if entry is None or not entry.in_buildcache:
            continue
        transport = pool.for_url(mirror.url)
        if mirror.signed and verifier is None:
            raise VerificationError(
                f"mirror '{mirror.name}' requires signatures but the manifest trusts no key",
                hint="add a [[key]] with the signer's fingerprint, or set signed = false",
            )
        try:
            fetched = fetch_spec(
                transport,
                mirror.url,
                node,
                verifier=verifier if mirror.signed else None,
                mirror_name=mirror.name,
            )
        except NotFoundError as exc:
            tried.append(f"mirror '{mirror.name}': {exc.message}")
            continue
        url = tarball_url(mirror.url, fetched.document.root)
        try:
            size = transport.size(url)
        except NotFoundError as exc:
            tried.append(f"mirror '{mirror.name}': {exc.message}")
            continue
        return VerifiedSpec(
            fetched=fetched, mirror=mirror.name, tarball_url=url, tarball_bytes=size
        )
    detail = "\n".join(f"    {t}" for t in tried) or "    no mirror's index lists it"
    raise PlanError(
        f"cannot fetch {node.short()}:\n{detail}",
        hint="check that the mirrors are complete (spec metadata and tarball)",
    )
