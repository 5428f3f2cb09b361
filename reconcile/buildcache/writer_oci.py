"""Writing Spack's OCI build cache, as ``spack buildcache push oci://...`` (Spack 1.1) does.

One image per spec, tagged ``<name>-<version>-<hash>.spack``: its config is Spack's default
image config plus the spec dictionary, ``buildcache_layout_version``,
``binary_cache_checksum``, ``archive_size`` and ``archive_compression``, with the
uncompressed tarball's digest in ``rootfs.diff_ids``; its layer is the ``.spack`` tarball.
Spack installs from the last layer; reconcile's images hold only the spec's own tarball
(Spack's also stack the dependencies' tarballs so that the image runs as a container).

Order: blobs first (each asked for with HEAD, so uploaded once; each step retried on a
network failure or a 5xx, 408, 429), then the image's tag; the
``index.spack`` tag is replaced last, after every image of the run is in place.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from reconcile.buildcache.database import add_entries
from reconcile.buildcache.layout_oci import (
    INDEX_TAG,
    LAYER_MEDIA_TYPES,
    manifest_url,
    parse_image_manifest,
    read_blob,
    sidecar_location,
    sidecar_tag,
    spec_tag,
)
from reconcile.buildcache.manifest_v3 import malformed
from reconcile.buildcache.reads import json_document
from reconcile.buildcache.writer_v2 import parse_checked
from reconcile.buildcache.writer_v3 import DATABASE_VERSION
from reconcile.errors import NotFoundError
from reconcile.hashing import sha256_of
from reconcile.reprs import fields_repr
from reconcile.spack.spec import SpecNode
from reconcile.transport.bounds import index_cap
from reconcile.transport.oci import OciTransport
from reconcile.transport.oci_upload import put_manifest, upload_blob

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
assert OCI_LAYER in LAYER_MEDIA_TYPES
# What Spack 1.x writes as buildcache_layout_version into OCI configs.
LAYOUT_VERSION = 3
# Spack's _oci_archspec_to_gooarch: targets of these families get Go's architecture names.
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64"}
_FAMILIES = {
    "x86_64": ("x86_64", "icelake", "skylake", "haswell", "zen", "core2", "nehalem", "sandy"),
    "aarch64": ("aarch64", "neoverse", "a64fx", "graviton", "m1", "m2", "thunderx"),
}


@attrs.frozen(kw_only=True)
class PushedImage:
    __repr__ = fields_repr

    tag: str
    tarball_sha256: str
    tarball_size: int
    uploaded: bool  # False when the registry had the tarball already


def _compact(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def goarch(target: str) -> str:
    """The image architecture Spack writes for a spec's target (amd64 for x86_64 ones)."""
    for family, prefixes in _FAMILIES.items():
        if target.startswith(prefixes):
            return _GOARCH[family]
    return target


def uncompressed_sha256(tarball: Path) -> str:
    """The ``diff_id`` of a gzip layer: the sha256 of the tar inside it."""
    digest = hashlib.sha256()
    with gzip.open(tarball, "rb") as stream:
        for piece in iter(lambda: stream.read(1 << 20), b""):
            digest.update(piece)
    return digest.hexdigest()


def image_config(
    spec_document: Mapping[str, Any], *, target: str, tarball_sha256: str, size: int, diff_id: str
) -> dict[str, Any]:
    return {
        "architecture": goarch(target),
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        "config": {"Env": ["PATH=/bin:/usr/bin"]},
        "spec": spec_document["spec"],
        "buildcache_layout_version": LAYOUT_VERSION,
        "binary_cache_checksum": {"hash_algorithm": "sha256", "hash": tarball_sha256},
        "archive_size": size,
        "archive_compression": "gzip",
    }


def push_package_oci(
    transport: OciTransport,
    *,
    spec_document: Mapping[str, Any],
    tarball: Path,
    mount_from: str | None = None,
) -> PushedImage:
    """Upload the tarball and the config (each unless the repository has it), then tag the
    image. ``mount_from`` names a repository of the same registry to mount the tarball from."""
    root = parse_checked(spec_document).root
    sha256, size = sha256_of(tarball), tarball.stat().st_size
    uploaded = upload_blob(transport, tarball, sha256, mount_from=mount_from)
    config = _compact(
        image_config(
            spec_document,
            target=root.target,
            tarball_sha256=sha256,
            size=size,
            diff_id=uncompressed_sha256(tarball),
        )
    )
    config_sha256 = hashlib.sha256(config).hexdigest()
    upload_blob(transport, config, config_sha256)
    manifest = {
        "mediaType": OCI_MANIFEST,
        "schemaVersion": 2,
        "config": {
            "mediaType": OCI_CONFIG,
            "digest": f"sha256:{config_sha256}",
            "size": len(config),
        },
        "layers": [{"mediaType": OCI_LAYER, "digest": f"sha256:{sha256}", "size": size}],
        "annotations": {
            "org.opencontainers.image.description": f"{root.name}@{root.version}/{root.hash}"
        },
    }
    tag = spec_tag(root)
    put_manifest(transport, tag, _compact(manifest), OCI_MANIFEST)
    return PushedImage(tag=tag, tarball_sha256=sha256, tarball_size=size, uploaded=uploaded)


# reconcile's sidecar, as the single layer of the artifact tagged <...>.reconcile-sig
SIDECAR_MEDIA_TYPE = "application/vnd.reconcile.sidecar.v1+json"


def read_sidecar_oci(transport: OciTransport, mirror_url: str, node: SpecNode) -> bytes | None:
    """The sidecar the registry holds for ``node``, unverified (signatures over the same
    statement are merged into the new one; readers verify), or None."""
    location = sidecar_location(transport, mirror_url, node)
    try:
        return transport.read_bytes(location)
    except NotFoundError:
        return None


def push_sidecar_oci(transport: OciTransport, node: SpecNode, sidecar: bytes) -> str:
    """Tag ``sidecar`` as ``<name>-<version>-<hash>.reconcile-sig`` (after the image it
    signs is in place: a reader finds either no sidecar or a complete one)."""
    sha256 = hashlib.sha256(sidecar).hexdigest()
    upload_blob(transport, sidecar, sha256)
    empty = b"{}"
    empty_sha256 = hashlib.sha256(empty).hexdigest()
    upload_blob(transport, empty, empty_sha256)
    manifest = {
        "mediaType": OCI_MANIFEST,
        "schemaVersion": 2,
        "config": {"mediaType": OCI_CONFIG, "digest": f"sha256:{empty_sha256}", "size": 2},
        "layers": [
            {"mediaType": SIDECAR_MEDIA_TYPE, "digest": f"sha256:{sha256}", "size": len(sidecar)}
        ],
    }
    tag = sidecar_tag(node)
    put_manifest(transport, tag, _compact(manifest), OCI_MANIFEST)
    return tag


def _current_index(transport: OciTransport, mirror_url: str) -> dict[str, Any]:
    url = manifest_url(mirror_url, INDEX_TAG)
    try:
        data = transport.read_bytes(url)
    except NotFoundError:
        return {"database": {"version": DATABASE_VERSION, "installs": {}}}
    manifest = parse_image_manifest(data, source=url)
    layer = manifest.layers[0]
    blob_location = transport.repository.blob_url(f"sha256:{layer.sha256}")
    blob = read_blob(
        transport,
        blob_location,
        layer,
        what="the index blob",
        limit=index_cap(transport.limits).bytes,
    )
    document = json_document(blob, source=blob_location, malformed=malformed)
    database = document.get("database") if isinstance(document, dict) else None
    if not isinstance(database, dict) or not isinstance(database.get("installs"), dict):
        raise malformed(blob_location, "the index is not a Spack database")
    assert isinstance(document, dict)
    return document


def update_index_oci(
    transport: OciTransport,
    mirror_url: str,
    nodes: Iterable[SpecNode],
    *,
    in_buildcache: Collection[str],
) -> None:
    """Add ``nodes`` to the index under ``index.spack`` (read, extended, written as a new
    blob, then the tag moved): the database Spack 1.x writes, every node of each spec listed
    and ``in_buildcache`` for those whose image is here. Registries have no locks: two
    writers at once can lose one's entries (``spack buildcache update-index`` rebuilds it)."""
    index = _current_index(transport, mirror_url)
    database = index["database"]
    database["version"] = DATABASE_VERSION
    add_entries(database["installs"], nodes, in_buildcache=in_buildcache, spack_1x=True)
    blob = _compact(index)
    blob_sha256 = hashlib.sha256(blob).hexdigest()
    upload_blob(transport, blob, blob_sha256)
    empty = b"{}"
    empty_sha256 = hashlib.sha256(empty).hexdigest()
    upload_blob(transport, empty, empty_sha256)
    manifest = {
        "mediaType": OCI_MANIFEST,
        "schemaVersion": 2,
        "config": {"mediaType": OCI_CONFIG, "digest": f"sha256:{empty_sha256}", "size": 2},
        "layers": [{"mediaType": OCI_LAYER, "digest": f"sha256:{blob_sha256}", "size": len(blob)}],
    }
    put_manifest(transport, INDEX_TAG, _compact(manifest), OCI_MANIFEST)
