"""Drift of an ``oci://`` binary mirror this manifest writes (Spack's OCI format), from what
the registry says without sending content: the index tag's specs against the tags it lists,
and every blob an indexed image names (config and layers) against a HEAD of that blob.

Read: the tag list, the index (its manifest and blob) and each indexed spec's image manifest
(small JSON documents). Never read: tarballs or configs. A registry cannot list blobs, so an
unreferenced blob is not a finding (the registry's garbage collection removes those); tags
that are neither Spack's (``*.spack``) nor reconcile's sidecars (``*.reconcile-sig``) are
someone else's and left alone.
"""

from __future__ import annotations

from reconcile.buildcache.database import IndexEntry
from reconcile.buildcache.layout_oci import (
    INDEX_TAG,
    is_spec_tag,
    manifest_url,
    parse_image_manifest,
    read_index_oci,
    sidecar_tag,
    spec_tag,
)
from reconcile.drift.findings import ResourceAudit
from reconcile.drift.remote import RemoteAudit
from reconcile.errors import NotFoundError, ReconcileError
from reconcile.manifest.model import Mirror
from reconcile.observe.ignore import IgnoreRules
from reconcile.transport.bounds import metadata_cap
from reconcile.transport.oci import OciTransport
from reconcile.transport.oci_listing import blob_size, list_tags
from reconcile.transport.oci_reference import BLOBS, MANIFESTS
from reconcile.trust.sidecar import SUFFIX as SIDECAR_SUFFIX

NOTE = (
    "the registry's tags against the index, and each indexed image's blobs against a HEAD "
    "(sizes); tarballs are not downloaded, so contents are not hashed, even with "
    "--check-contents; registries cannot list blobs, so unreferenced blobs are not seen"
)


def audit_oci_mirror(mirror: Mirror, url: str, transport: OciTransport) -> ResourceAudit:
    audit = RemoteAudit(
        resource=f"mirror:{mirror.name}",
        url=url,
        ignore=IgnoreRules(mirror.drift_ignore),
        note=NOTE,
    )
    try:
        tags = set(list_tags(transport))
    except ReconcileError as exc:
        audit.note = "the registry's tags could not be listed: nothing was compared"
        audit.add("error", "unreadable", "", f"the tags cannot be listed: {exc.message}")
        return audit.result()
    if INDEX_TAG not in tags:
        audit.add(
            "error",
            "mirror-index-missing",
            f"{MANIFESTS}/{INDEX_TAG}",
            f"the registry has no {INDEX_TAG} tag (nothing published yet?)",
        )
        return audit.result()
    try:
        entries = read_index_oci(transport, url)
    except NotFoundError as exc:
        audit.add("error", "mirror-index-missing", f"{MANIFESTS}/{INDEX_TAG}", exc.message)
        return audit.result()
    except ReconcileError as exc:
        audit.add(
            "error",
            "mirror-file-corrupt",
            f"{MANIFESTS}/{INDEX_TAG}",
            f"the index cannot be read: {exc.message}",
        )
        return audit.result()
    try:
        expected = _audit_images(audit, transport, url, entries, tags)
    except ReconcileError as exc:
        audit.add("error", "unreadable", "", f"the registry stopped answering: {exc.message}")
        return audit.result()
    for tag in sorted(tags):
        ours = is_spec_tag(tag) or tag.endswith(SIDECAR_SUFFIX)
        if ours and tag not in expected:
            audit.add(
                "warning",
                "mirror-file-unlisted",
                f"{MANIFESTS}/{tag}",
                "the index does not list this image",
            )
    return audit.result()


def _audit_images(
    audit: RemoteAudit,
    transport: OciTransport,
    url: str,
    entries: dict[str, IndexEntry],
    tags: set[str],
) -> set[str]:
    """Each indexed spec's tag is there and the blobs its image names have the sizes it
    records; the tags expected."""
    expected: set[str] = set()
    headed: dict[str, int | None] = {}
    for entry in entries.values():
        if not entry.in_buildcache:
            continue
        node = entry.node
        tag = spec_tag(node)
        expected |= {tag, sidecar_tag(node)}
        audit.checked += 1
        short = f"{node.name}/{node.hash[:7]}"
        if tag not in tags:
            audit.add(
                "error",
                "mirror-file-missing",
                f"{MANIFESTS}/{tag}",
                f"the index lists {short}, the registry has no such tag",
            )
            continue
        location = manifest_url(url, tag)
        try:
            data = transport.read_bytes(location, cap=metadata_cap(transport.limits))
            image = parse_image_manifest(data, source=audit.where(f"{MANIFESTS}/{tag}"))
        except NotFoundError:
            audit.add(
                "error",
                "mirror-file-missing",
                f"{MANIFESTS}/{tag}",
                f"the index lists {short}, the registry lists its tag but has no manifest",
            )
            continue
        except ReconcileError as exc:
            audit.add(
                "error",
                "mirror-file-corrupt",
                f"{MANIFESTS}/{tag}",
                f"the image manifest cannot be read: {exc.message}",
            )
            continue
        named = [("the config", image.config)] + [
            (f"layer {i}", layer) for i, layer in enumerate(image.layers)
        ]
        for what, layer in named:
            if layer.sha256 not in headed:
                audit.checked += 1
                headed[layer.sha256] = blob_size(transport, layer.sha256)
            size = headed[layer.sha256]
            key = f"{BLOBS}/sha256:{layer.sha256}"
            if size is None:
                audit.add(
                    "error",
                    "mirror-file-missing",
                    key,
                    f"{what} of {short}'s image: the registry has no such blob",
                )
            elif size != layer.size:
                audit.add(
                    "error",
                    "mirror-file-corrupt",
                    key,
                    f"{what} of {short}'s image: {size} bytes, its manifest says {layer.size}",
                )
    return expected
