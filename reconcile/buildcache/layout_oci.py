"""Reading Spack's OCI build caches (``oci://host/repository``) through a transport.

What Spack 1.x pushes (``spack buildcache push oci://...``): one image per spec, tagged
``<name>-<version>-<hash>.spack``, whose manifest's layers are the ``.spack`` tarballs of
the spec's link/run closure (dependencies first, the spec's own last) and whose config blob
is an image config carrying the spec (``spec``, ``buildcache_layout_version``,
``binary_cache_checksum`` ...); and an ``index.spack`` tag whose single layer is the index
(a Spack database). Nothing is signed: Spack does not sign OCI caches.

Trust chain, such as it is: the manifest is read fresh; the config blob and the tarball are
content-addressed by sha256 digests it names, and each is checked against its digest (the
config before it is parsed, the tarball before it is unpacked). A mirror declared this way
is an unsigned mirror (``signed = false``): whoever can push to the repository decides
what is installed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

from reconcile.bounded_json import shown as shown_value
from reconcile.buildcache.database import IndexEntry, database_entries
from reconcile.buildcache.layout_v2 import NO_INDEX_HINT
from reconcile.buildcache.layout_v3 import FetchedSpecV3, spec_document_from
from reconcile.buildcache.layouts import OCI_LAYOUT as OCI_LAYOUT
from reconcile.buildcache.layouts import describe_layout as describe_layout
from reconcile.buildcache.manifest_v3 import malformed
from reconcile.buildcache.reads import json_document, read_explained
from reconcile.buildcache.statements import verify_package
from reconcile.errors import NotFoundError, TransportError, VerificationError
from reconcile.redact import mask_credentials
from reconcile.reprs import fields_repr
from reconcile.spack.spec import SpecDocument, SpecNode
from reconcile.transport.base import Transport
from reconcile.transport.bounds import index_cap, signed_size_cap
from reconcile.transport.oci_reference import digest_of, parse_oci_mirror, valid_tag
from reconcile.trust.policy import Opened, TrustPolicy
from reconcile.trust.sidecar import SUFFIX as SIDECAR_SUFFIX

INDEX_TAG = "index.spack"
TAG_SUFFIX = ".spack"
LAYER_MEDIA_TYPES = frozenset(
    {
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
    }
)
MANIFEST_MEDIA_TYPES = frozenset(
    {
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    }
)

OCI_TAMPER_HINT = (
    "the registry serves content that differs from the digest its manifest names: do not use "
    "this mirror until its owner pushes the package again"
)


def sidecar_tag(node: SpecNode) -> str:
    """``<name>-<version>-<hash>.reconcile-sig``: the artifact holding reconcile's sidecar
    signatures. Spack indexes only tags ending in ``.spack``, so it ignores these."""
    return valid_tag(f"{node.name}-{node.version}-{node.hash}{SIDECAR_SUFFIX}")


def spec_tag(node: SpecNode) -> str:
    """``<name>-<version>-<hash>.spack``, made a valid tag as Spack makes it."""
    return valid_tag(f"{node.name}-{node.version}-{node.hash}{TAG_SUFFIX}")


def manifest_url(mirror_url: str, tag: str) -> str:
    return parse_oci_mirror(mirror_url).manifest_url(tag)


def blob_url(mirror_url: str, sha256: str) -> str:
    return parse_oci_mirror(mirror_url).blob_url(f"sha256:{sha256}")


def is_spec_tag(tag: str) -> bool:
    return tag.endswith(TAG_SUFFIX) and tag != INDEX_TAG


@attrs.frozen(kw_only=True)
class Layer:
    __repr__ = fields_repr

    sha256: str
    size: int


@attrs.frozen(kw_only=True)
class ImageManifest:
    __repr__ = fields_repr

    config: Layer
    layers: tuple[Layer, ...]
    raw: bytes  # as fetched (plan fingerprints)


def _layer(record: object, source: str, what: str) -> Layer:
    if not isinstance(record, Mapping):
        raise malformed(source, f"{what} is not an object")
    size = record.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise malformed(source, f"{what} has size {shown_value(size)}, expected bytes")
    try:
        sha256 = digest_of(record.get("digest"), source=f"{source}: {what}")
    except TransportError as exc:
        raise malformed(source, exc.message) from None
    return Layer(sha256=sha256, size=size)


def parse_image_manifest(data: bytes, *, source: str) -> ImageManifest:
    """An image manifest (OCI or Docker v2) with its config and layers; anything else (an
    image index, a manifest without layers) is refused."""
    document = json_document(data, source=source, malformed=malformed)
    if not isinstance(document, Mapping):
        raise malformed(source, "expected an image manifest (a JSON object)")
    media_type = document.get("mediaType")
    if media_type is not None and media_type not in MANIFEST_MEDIA_TYPES:
        raise malformed(
            source,
            f"media type {shown_value(media_type)}, expected an image manifest "
            f"({', '.join(sorted(MANIFEST_MEDIA_TYPES))})",
        )
    if document.get("schemaVersion") != 2:
        raise malformed(
            source, f"schemaVersion {shown_value(document.get('schemaVersion'))}, expected 2"
        )
    layers = document.get("layers")
    if not isinstance(layers, Sequence) or isinstance(layers, str) or not layers:
        raise malformed(source, "expected a non-empty list of layers")
    return ImageManifest(
        config=_layer(document.get("config"), source, "the config"),
        layers=tuple(_layer(layer, source, f"layer {i}") for i, layer in enumerate(layers)),
        raw=data,
    )


def _read_manifest(transport: Transport, url: str, *, missing: str, hint: str) -> ImageManifest:
    data = read_explained(transport, url, missing=missing, hint=hint)
    return parse_image_manifest(data, source=mask_credentials(url))


def read_blob(transport: Transport, url: str, layer: Layer, *, what: str, limit: int) -> bytes:
    """A blob checked against its digest and size (the read stops one byte past the size)."""
    shown = mask_credentials(url)
    if layer.size > limit:
        raise malformed(shown, f"{what} is {layer.size:,} bytes, over the limit of {limit:,}")
    data = read_explained(
        transport,
        url,
        missing=f"{shown}: {what} named by its manifest does not exist",
        hint="the registry lost a blob an image names (garbage collection, or a failed push): "
        "push the package again",
        cap=signed_size_cap(layer.size),
    )
    check_digest(data, layer, source=f"{what} {shown}")
    return data


def check_digest(data: bytes, layer: Layer, *, source: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if len(data) != layer.size or actual != layer.sha256:
        raise VerificationError(
            f"{source}: {len(data):,} bytes with sha256 {actual}, but the manifest names "
            f"{layer.size:,} bytes with sha256 {layer.sha256}",
            hint=OCI_TAMPER_HINT,
            reference="identity-mismatch",
        )


# --- the index -----------------------------------------------------------------------------


def read_index_oci(
    transport: Transport, mirror_url: str, *, local_copy: Path | None = None
) -> dict[str, IndexEntry]:
    """The index under the ``index.spack`` tag, by DAG hash. The manifest is always read
    fresh; with ``local_copy``, a kept index whose sha256 matches its layer's digest is used
    without downloading it again. ``NotFoundError`` when the repository has no index."""
    url = manifest_url(mirror_url, INDEX_TAG)
    shown = mask_credentials(url)
    manifest = _read_manifest(
        transport,
        url,
        missing=f"{shown}: the registry has no binary cache index (tag {INDEX_TAG})",
        hint=NO_INDEX_HINT,
    )
    layer = manifest.layers[0]
    location = blob_url(mirror_url, layer.sha256)
    data = _kept_copy(local_copy, layer)
    if data is None:
        cap = index_cap(transport.limits)
        data = read_blob(transport, location, layer, what="the index blob", limit=cap.bytes)
        _keep(local_copy, data)
    document = json_document(data, source=mask_credentials(location), malformed=malformed)
    return database_entries(document, source=mask_credentials(location))


def _kept_copy(local_copy: Path | None, layer: Layer) -> bytes | None:
    if local_copy is None:
        return None
    try:
        kept = local_copy.read_bytes()
    except OSError:
        return None
    return kept if hashlib.sha256(kept).hexdigest() == layer.sha256 else None


def _keep(local_copy: Path | None, data: bytes) -> None:
    if local_copy is None:
        return
    try:
        local_copy.parent.mkdir(parents=True, exist_ok=True)
        partial = local_copy.with_name(local_copy.name + ".part")
        partial.write_bytes(data)
        partial.replace(local_copy)
    except OSError:
        pass  # only an optimisation: the next run downloads it again


# --- spec metadata -------------------------------------------------------------------------


def sidecar_location(transport: Transport, mirror_url: str, node: SpecNode) -> str:
    """Where ``node``'s sidecar bytes are: the blob its sidecar tag names, or (no such tag)
    the tag's own URL, which then answers "not found" to the reader."""
    url = manifest_url(mirror_url, sidecar_tag(node))
    try:
        data = transport.read_bytes(url)
    except NotFoundError:
        return url
    manifest = parse_image_manifest(data, source=mask_credentials(url))
    return blob_url(mirror_url, manifest.layers[0].sha256)


def fetch_spec_oci(
    transport: Transport,
    mirror_url: str,
    node: SpecNode,
    *,
    mirror_name: str | None = None,
    trust: TrustPolicy | None = None,
) -> FetchedSpecV3:
    """Fetch (always fresh) the image manifest tagged for ``node`` and its config blob, and
    check that they describe ``node`` and name the tarball layer consistently. With a trust
    policy (a mirror declared signed), the package's sidecar signatures decide: OCI images
    carry no GnuPG signature, so only ed25519 or Sigstore keys can count."""
    where = f"mirror '{mirror_name}'" if mirror_name else f"mirror {mask_credentials(mirror_url)}"
    what = f"spec {node.short()} from {where}"
    url = manifest_url(mirror_url, spec_tag(node))
    shown = mask_credentials(url)
    manifest = _read_manifest(
        transport,
        url,
        missing=f"{what}: the registry has no image {shown}",
        hint="the index lists a spec whose image is gone; push it again (spack buildcache "
        "push, or reconcile), then update the index (spack buildcache update-index)",
    )
    config_url = blob_url(mirror_url, manifest.config.sha256)
    config = read_blob(
        transport,
        config_url,
        manifest.config,
        what="the image config",
        limit=transport.limits.max_metadata_bytes,
    )
    document = _spec_document(config, source=mask_credentials(config_url))
    tarball = manifest.layers[-1]
    _check_spec_matches(document, node, tarball, what=what)
    signer = None
    if trust is not None:
        signer = _verified_signer(
            trust, transport, mirror_url, document, tarball, what=what, mirror=mirror_name
        )
    return FetchedSpecV3(
        document=attrs.evolve(document, tarball_sha256=tarball.sha256),
        signer=signer,
        metadata_sha256=hashlib.sha256(manifest.raw + config).hexdigest(),
        url=url,
        tarball_url=blob_url(mirror_url, tarball.sha256),
        tarball_sha256=tarball.sha256,
        tarball_size=tarball.size,
    )


def _verified_signer(
    trust: TrustPolicy,
    transport: Transport,
    mirror_url: str,
    document: SpecDocument,
    tarball: Layer,
    *,
    what: str,
    mirror: str | None,
) -> str:
    if not trust.wants_statement(mirror):
        raise VerificationError(
            f"{what}: the mirror is declared signed, but OCI images carry no GnuPG signature "
            "and no ed25519 or Sigstore key counts for it",
            hint="trust an ed25519 or Sigstore key for this mirror (its signatures travel as "
            "<name>-<version>-<hash>.reconcile-sig tags), or set signed = false",
        )
    opened = Opened(
        payload=b"", signers=(), problems=("no GnuPG signature: OCI images carry none",)
    )
    verified = verify_package(
        trust,
        transport,
        opened=opened,
        node=document.root,
        tarball_sha256=tarball.sha256,
        tarball_size=tarball.size,
        sidecar_url=sidecar_location(transport, mirror_url, document.root),
        what=what,
        mirror=mirror,
    )
    return verified.signers[0].identity


def _spec_document(config: bytes, *, source: str) -> SpecDocument:
    raw = json_document(config, source=source, malformed=malformed)
    if not isinstance(raw, Mapping) or "spec" not in raw:
        raise malformed(source, "expected an image config that carries a Spack spec ('spec')")
    return spec_document_from(raw, source=source)


def _check_spec_matches(
    document: SpecDocument, node: SpecNode, tarball: Layer, *, what: str
) -> None:
    if document.root.hash != node.hash:
        raise VerificationError(
            f"{what}: the image config describes {document.root.short()} instead "
            f"(hash {document.root.hash}, expected {node.hash}): a substituted spec",
            hint="do not use this mirror until its owner fixes it; the image under this "
            "spec's tag belongs to another spec",
            reference="identity-mismatch",
        )
    named = document.tarball_sha256
    if named is not None and named != tarball.sha256:
        raise VerificationError(
            f"{what}: the image config names tarball sha256 {named[:64]}, but the image's "
            f"last layer is {tarball.sha256}",
            hint=OCI_TAMPER_HINT,
            reference="identity-mismatch",
        )
