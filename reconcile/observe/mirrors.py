"""Facts about mirrors: their indexes, and verified spec metadata fetched fresh.

Mirrors are tried in manifest order. One that does not answer is marked unreachable in the
pool and skipped for the rest of the run; one that answers without the file is passed over
for that file only. A verification failure is final: it is never papered over by trying
the next mirror.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from reconcile.buildcache.database import IndexEntry
from reconcile.buildcache.layout_v2 import (
    BUILD_CACHE,
    INDEX,
    FetchedSpec,
    fetch_spec,
    read_index,
    tarball_url,
)
from reconcile.buildcache.layouts import LAYOUT_FOLDER, LAYOUT_JSON, OCI_LAYOUT, is_v3
from reconcile.errors import (
    MirrorUnreachableError,
    NotFoundError,
    PlanError,
    TransportError,
    VerificationError,
)
from reconcile.manifest.model import ManifestFile
from reconcile.observe.facts import MirrorView, Reverification, VerifiedSpec
from reconcile.redact import mask_credentials
from reconcile.spack.spec import SpecNode
from reconcile.transport.base import Transport, join_url
from reconcile.transport.file import url_to_path
from reconcile.transport.oci_reference import is_oci_url
from reconcile.transport.registry import TransportPool
from reconcile.trust.policy import TrustPolicy

if TYPE_CHECKING:
    from reconcile.cache.store import BlobCache

# Where a mirror's index may be kept between runs for conditional requests (or None).
IndexCopyPath = Callable[[str], Path | None]


def observe_mirrors(
    manifest_file: ManifestFile,
    pool: TransportPool,
    index_copy: IndexCopyPath = lambda _url: None,
) -> tuple[MirrorView, ...]:
    """Each declared mirror with its index; an unreadable index is a recorded problem."""
    views = []
    for mirror in manifest_file.manifest.mirrors:
        url = manifest_file.mirror_url(mirror)
        layout = 2
        wrong_root = _root_problem(url)
        if wrong_root is not None:
            reason, missing = wrong_root
            views.append(
                MirrorView(
                    name=mirror.name,
                    url=url,
                    signed=mirror.signed,
                    index={},
                    problem=reason,
                    empty=missing,
                )
            )
            continue
        empty = False
        try:
            transport = pool.for_url(url)
            # each layout's reader is imported when a mirror has that layout
            if is_oci_url(url):
                from reconcile.buildcache.layout_oci import INDEX_TAG, read_index_oci
                from reconcile.buildcache.layout_oci import manifest_url as oci_manifest_url

                layout = OCI_LAYOUT
                copy = index_copy(oci_manifest_url(url, INDEX_TAG))
                index = read_index_oci(transport, url, local_copy=copy)
            elif is_v3(transport, url):
                from reconcile.buildcache.layout_v3 import index_manifest_url, read_index_v3

                layout = 3
                copy = index_copy(index_manifest_url(url))
                index = read_index_v3(transport, url, local_copy=copy)
            else:
                copy = index_copy(join_url(url, BUILD_CACHE, INDEX))
                index = _read_index_v2(transport, url, copy, declared=mirror.layout)
            problem = None
        except MirrorUnreachableError as exc:
            pool.mark_unreachable(mirror.name, exc)
            index, problem = {}, exc.message
        except NotFoundError as exc:
            index, problem, empty = {}, exc.message, True
        except (TransportError, VerificationError) as exc:
            index, problem = {}, exc.message
        views.append(
            MirrorView(
                name=mirror.name,
                url=url,
                signed=mirror.signed,
                index=index,
                problem=problem,
                layout=layout,
                empty=empty,
            )
        )
    return tuple(views)


def _read_index_v2(
    transport: Transport, url: str, copy: Path | None, *, declared: int
) -> dict[str, IndexEntry]:
    """The layout-2 index of a mirror without ``v3/layout.json``. When neither layout's
    index is there and the manifest says the mirror is layout 3 (the default), the mirror
    is empty in the layout it was declared with: saying "no layout v2 index" would send
    the reader looking for the wrong files."""
    try:
        return read_index(transport, url, local_copy=copy)
    except NotFoundError as exc:
        if declared != 3:
            raise
        raise NotFoundError(
            f"{mask_credentials(url)}: the mirror is empty (layout v3): it has no "
            f"{LAYOUT_FOLDER}/{LAYOUT_JSON}, and no layout-v2 {BUILD_CACHE}/{INDEX} either",
            hint=exc.hint,
        ) from exc


def _root_problem(url: str) -> tuple[str, bool] | None:
    """What is plainly wrong with a mirror's URL before asking it anything: a local folder
    that does not exist, or a URL that names the mirror's ``build_cache`` folder instead of
    the mirror itself (Spack's URLs name the folder that holds ``build_cache/``). The flag
    says whether the mirror is simply missing (a publish target that apply will create)."""
    path = urllib.parse.urlsplit(url).path.rstrip("/")
    if path.endswith(f"/{BUILD_CACHE}"):
        return (
            f"{mask_credentials(url)} ends in /{BUILD_CACHE}: a mirror's url names the folder "
            f"that holds {BUILD_CACHE}/, so remove the last component",
            False,
        )
    if url.startswith("file:"):
        try:
            folder = url_to_path(url)
        except (ValueError, TransportError):
            return None  # the transport reports it
        if not folder.exists():
            return (
                f"the folder {folder} does not exist: check the mirror's url in the manifest",
                True,
            )
        if not folder.is_dir():
            return f"{folder} is not a folder: a local mirror's url names a folder", False
    return None


def _cached_size(cache: BlobCache | None, sha256: str | None) -> int | None:
    if cache is None or sha256 is None:
        return None
    for copy in cache.copies(sha256):
        try:
            return copy.stat().st_size
        except OSError:
            continue
    return None


def _cached_built_prefixes(
    cache: BlobCache | None, fetched: FetchedSpec, node: SpecNode, pool: TransportPool
) -> dict[str, str]:
    """Where the package and its dependencies were built, by DAG hash, from a copy of its
    tarball in a cache root (empty when there is none that tells): what the copy's record
    says when apply has kept it there, else read from the copy itself. A record can be
    forged by whoever shares the root, so its value only spares the read: apply compares
    it with the unpacked ``binary_distribution`` before anything is committed
    (``apply.built_check``)."""
    sha256 = fetched.document.tarball_sha256
    copies = cache.copies(sha256) if cache is not None and sha256 is not None else []
    if not copies:
        return {}
    assert sha256 is not None and cache is not None
    for copy in copies:
        recorded = cache.recorded_built(copy, sha256, node.hash)
        if recorded is not None:
            return recorded
    # imported here: a plan with no cached tarball to read loads no archive or YAML code
    from reconcile.observe.built_prefix import built_prefixes

    for copy in copies:
        found = built_prefixes(copy, sha256=sha256, dag_hash=node.hash, limits=pool.limits)
        if found is not None:
            return found
    return {}


def verified_from_mirror(
    node: SpecNode,
    mirror: MirrorView,
    pool: TransportPool,
    trust: TrustPolicy,
    cache: BlobCache | None,
) -> VerifiedSpec:
    """``node``'s metadata from ``mirror``, fetched fresh and verified (transport and
    verification errors raised as they are)."""
    transport = pool.for_url(mirror.url)
    verify_with = trust if mirror.signed else None
    if mirror.layout == OCI_LAYOUT:
        from reconcile.buildcache.layout_oci import fetch_spec_oci

        fetched_v3 = fetch_spec_oci(
            transport, mirror.url, node, mirror_name=mirror.name, trust=verify_with
        )
        fetched: FetchedSpec = fetched_v3
        url, size = fetched_v3.tarball_url, fetched_v3.tarball_size
        cached = _cached_size(cache, fetched.document.tarball_sha256)
    elif mirror.layout == 3:
        from reconcile.buildcache.layout_v3 import fetch_spec_v3

        fetched_v3 = fetch_spec_v3(
            transport, mirror.url, node, trust=verify_with, mirror_name=mirror.name
        )
        fetched = fetched_v3
        url, size = fetched_v3.tarball_url, fetched_v3.tarball_size
        cached = _cached_size(cache, fetched.document.tarball_sha256)
    else:
        fetched = fetch_spec(
            transport, mirror.url, node, trust=verify_with, mirror_name=mirror.name
        )
        url = tarball_url(mirror.url, fetched.document.root)
        cached = _cached_size(cache, fetched.document.tarball_sha256)
        size = cached if cached is not None else transport.size(url)
    prefixes = _cached_built_prefixes(cache, fetched, node, pool)
    return VerifiedSpec(
        fetched=fetched,
        mirror=mirror.name,
        tarball_url=url,
        tarball_bytes=size,
        cached=cached is not None,
        built_prefix=prefixes.pop(node.hash, None),
        dependency_prefixes=prefixes,
    )


def fetch_verified_spec(
    node: SpecNode,
    mirrors: tuple[MirrorView, ...],
    pool: TransportPool,
    trust: TrustPolicy,
    cache: BlobCache | None = None,
) -> VerifiedSpec:
    """Fetch and verify ``node``'s metadata from the first mirror (in manifest order) whose
    index lists it and that answers. The tarball's size comes from a cache root's copy when
    there is one (no request for the tarball at all), else from the mirror."""
    tried = []
    for mirror in mirrors:
        entry = mirror.index.get(node.hash)
        if entry is None or not entry.in_buildcache:
            continue
        try:
            return verified_from_mirror(node, mirror, pool, trust, cache)
        except MirrorUnreachableError as exc:
            pool.mark_unreachable(mirror.name, exc)
            tried.append(f"mirror '{mirror.name}': {exc.message}")
            continue
        except VerificationError:
            raise
        except TransportError as exc:  # NotFoundError included: the next mirror may have it
            tried.append(f"mirror '{mirror.name}': {exc.message}")
            continue

    detail = "\n".join(f"    {t}" for t in tried) or "    no mirror's index lists it"
    raise PlanError(
        f"cannot fetch {node.short()}:\n{detail}",
        hint="check that the mirrors are reachable and complete (spec metadata and tarball)",
    )


def find_valid_signature(
    node: SpecNode,
    mirrors: tuple[MirrorView, ...],
    pool: TransportPool,
    trust: TrustPolicy,
    cache: BlobCache | None = None,
) -> Reverification:
    """An installed spec whose recorded signer no longer counts: its metadata from the first
    signed mirror (manifest order) listing it whose signatures satisfy the policy now. Unlike
    an install, a mirror that fails verification is not final here: the install is already
    there, and another mirror may carry a signature by a key that still counts."""
    tried = []
    for mirror in mirrors:
        entry = mirror.index.get(node.hash)
        if entry is None or not entry.in_buildcache:
            continue
        if not mirror.signed:
            tried.append(f"mirror '{mirror.name}': declared unsigned (signed = false)")
            continue
        try:
            verified = verified_from_mirror(node, mirror, pool, trust, cache)
        except MirrorUnreachableError as exc:
            pool.mark_unreachable(mirror.name, exc)
            tried.append(f"mirror '{mirror.name}': {exc.message}")
        except (TransportError, VerificationError) as exc:
            lines = exc.message.splitlines()
            tried.append(f"mirror '{mirror.name}': " + "\n      ".join(lines))
        else:
            if verified.fetched.signer is not None:
                return Reverification(verified=verified, tried=tuple(tried))
            tried.append(f"mirror '{mirror.name}': its metadata carries no signature")
    return Reverification(verified=None, tried=tuple(tried))
