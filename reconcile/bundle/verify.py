"""Verifying an unpacked bundle with nothing but what it holds: every spec's signature by a
key its manifest pins, every tarball's sha256 against the signed metadata, every source's
sha256 against the manifest."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from reconcile.buildcache.database import IndexEntry
from reconcile.buildcache.layout_v2 import (
    FetchedSpec,
    fetch_spec,
    read_index,
    sidecar_url,
    tarball_url,
)
from reconcile.buildcache.layout_v3 import (
    blob_url,
    fetch_spec_v3,
    is_v3,
    read_index_v3,
    sidecar_url_v3,
)
from reconcile.buildcache.manifest_v3 import parse_manifest
from reconcile.buildcache.pinned_keys import trust_policy
from reconcile.bundle.errors import BundleError
from reconcile.hashing import digest_file
from reconcile.manifest.load import load_manifest
from reconcile.manifest.model import ManifestFile
from reconcile.reprs import fields_repr
from reconcile.sources.layout import source_paths
from reconcile.spack.spec import SpecNode
from reconcile.transport.file import FileTransport, url_to_path
from reconcile.trust.clearsign import unverified_text
from reconcile.trust.policy import TrustPolicy

MANIFEST_NAME = "reconcile.toml"
MIRROR_FOLDER = "mirror"
_HINT = "do not use this bundle; export a new one from a mirror you trust"


def _inside(root: Path, path: Path, what: str) -> Path:
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise BundleError(
            f"the bundle's manifest points {what} at {resolved}, outside the bundle {root}",
            hint=_HINT,
        )
    return resolved


def _check_layout(loaded: ManifestFile, root: Path) -> Path:
    """The bundle's manifest may name only files inside the bundle."""
    mirrors = loaded.manifest.mirrors
    if len(mirrors) != 1 or "://" in mirrors[0].url:
        raise BundleError(
            f"{loaded.path}: expected a single mirror given by a relative path, found "
            f"{[m.url for m in mirrors]}",
            hint=_HINT,
        )
    for key in loaded.manifest.keys:
        held = key.trusted_root if key.kind == "sigstore" else key.file
        if held is None:
            raise BundleError(f"key '{key.name}' is not a file in the bundle", hint=_HINT)
        _inside(root, loaded.resolve(held), f"key '{key.name}'")
    return _inside(root, loaded.resolve(mirrors[0].url), "its mirror")


def _check_tarball(path: Path, expected: str, what: str) -> None:
    actual = digest_file(path).sha256
    if actual != expected:
        raise BundleError(
            f"{what}: tarball {path} has sha256 {actual}, but its signed metadata says {expected}",
            hint=_HINT,
        )


@attrs.frozen(kw_only=True)
class BundledSpec:
    """One verified spec's files, as keys relative to the bundle's mirror folder: what a
    destination writes for it (``content`` first, then the signed ``metadata``)."""

    __repr__ = fields_repr

    node: SpecNode
    metadata: str  # the signed spec file (layout 2) or spec manifest (layout 3)
    content: tuple[str, ...]  # the tarball (layout 2), or every blob the manifest names
    sidecar: str | None = None  # reconcile's sidecar signatures, when the bundle has them
    tarball: str  # the tarball among ``content``
    document: Mapping[str, Any] = attrs.field(eq=False)  # the verified spec document


def _key(path: Path, mirror_root: Path) -> str:
    return path.relative_to(mirror_root).as_posix()


def _verify_specs(
    transport: FileTransport, mirror_root: Path, trust: TrustPolicy | None
) -> tuple[int, tuple[IndexEntry, ...], tuple[BundledSpec, ...]]:
    """Every spec the bundle's index lists: metadata verified, tarball checksum checked."""
    url = mirror_root.as_uri()
    bundled: list[BundledSpec] = []
    v3 = is_v3(transport, url)
    index = read_index_v3(transport, url) if v3 else read_index(transport, url)
    for entry in sorted(index.values(), key=lambda e: e.node.hash):
        if not entry.in_buildcache:
            continue
        what = f"spec {entry.node.short()}"
        if v3:
            fetched_v3 = fetch_spec_v3(transport, url, entry.node, trust=trust)
            tarball, expected = url_to_path(fetched_v3.tarball_url), fetched_v3.tarball_sha256
            metadata = url_to_path(fetched_v3.url)
            records = parse_manifest(unverified_text(metadata.read_bytes()), source=what).records
            content = tuple(
                _key(url_to_path(blob_url(url, record)), mirror_root) for record in records
            )
            document = fetched_v3.document.raw
        else:
            fetched: FetchedSpec = fetch_spec(transport, url, entry.node, trust=trust)
            tarball = url_to_path(tarball_url(url, entry.node))
            expected = fetched.document.tarball_sha256 or ""
            metadata = url_to_path(fetched.url)
            content = (_key(tarball, mirror_root),)
            document = fetched.document.raw
        _check_tarball(tarball, expected, what)
        sidecar = url_to_path(
            sidecar_url_v3(url, entry.node) if v3 else sidecar_url(url, entry.node)
        )
        bundled.append(
            BundledSpec(
                node=entry.node,
                metadata=_key(metadata, mirror_root),
                content=content,
                sidecar=_key(sidecar, mirror_root) if sidecar.is_file() else None,
                tarball=_key(tarball, mirror_root),
                document=document,
            )
        )
    entries = tuple(sorted(index.values(), key=lambda e: e.node.hash))
    return 3 if v3 else 2, entries, tuple(bundled)


@attrs.frozen(kw_only=True)
class BundleCheck:
    __repr__ = fields_repr

    specs: int  # how many specs were verified
    signed: bool  # False: the bundle's manifest declares its mirror unsigned (checksums only)
    fingerprints: tuple[str, ...]  # the keys its manifest pins, to compare out of band
    layout: int = 2  # the binary cache layout of the bundle's mirror
    mirror_root: Path | None = None  # the verified mirror folder (inside the unpacked bundle)
    index: tuple[IndexEntry, ...] = ()  # the bundle index's entries, externals included
    bundled: tuple[BundledSpec, ...] = ()  # every verified spec and its files


def verify_bundle_tree(root: Path) -> BundleCheck:
    """Check the unpacked bundle at ``root``."""
    loaded = load_manifest(root / MANIFEST_NAME)
    mirror_root = _check_layout(loaded, root)
    mirror = loaded.manifest.mirrors[0]
    transport = FileTransport()
    with trust_policy(loaded, read_url=transport.read_bytes) as trust:
        pinned = trust.public_keys("gpg")
        if mirror.signed and not trust.load():
            raise BundleError(
                f"{loaded.path}: the mirror is signed but the manifest pins no key", hint=_HINT
            )
        layout, index, bundled = _verify_specs(
            transport, mirror_root, trust if mirror.signed else None
        )
    for source in loaded.manifest.sources:
        archive = mirror_root / source_paths(source).archive
        actual = digest_file(archive).sha256 if archive.is_file() else "missing"
        if actual != source.sha256:
            raise BundleError(
                f"source {source.name}@{source.version}: {archive} has sha256 {actual}, "
                f"expected {source.sha256}",
                hint=_HINT,
            )
    return BundleCheck(
        specs=len(bundled),
        signed=mirror.signed,
        fingerprints=tuple(sorted(pinned)),
        layout=layout,
        mirror_root=mirror_root,
        index=index,
        bundled=bundled,
    )
