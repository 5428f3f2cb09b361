"""Drift of an ``s3://`` binary mirror this manifest writes: the index against one listing
of the bucket prefix (ListObjectsV2, keys and sizes), without downloading any tarball.

Layout 3: every spec the index lists has its spec manifest; every blob a manifest names is
listed with the size (``contentLength``) the manifest records; no spec manifest or blob lies
there that the index or a manifest does not account for (a superseded index blob is told
apart by its first 12 bytes, one ranged GET). The manifests themselves are read (small
metadata), their signatures are not judged (every install does that).

Layout 2: the index records no tarball sizes and the spec files only a sha256, so the
listing shows that every indexed spec has its metadata and a non-empty tarball, and that
nothing else lies in ``build_cache/``; a tarball of the wrong size goes unseen until an
install hashes it. The note in the report says so.
"""

from __future__ import annotations

import json

from reconcile.buildcache.database import IndexEntry
from reconcile.buildcache.layout_v2 import (
    BUILD_CACHE,
    INDEX,
    INDEX_HASH,
    KEYS_FOLDER,
    read_index,
    spec_stem,
)
from reconcile.buildcache.layout_v3 import (
    LAYOUT_FOLDER,
    LAYOUT_JSON,
    SPEC_MANIFESTS,
    read_index_v3,
    spec_manifest_name,
)
from reconcile.buildcache.manifest_v3 import BLOBS, parse_manifest
from reconcile.drift.findings import ResourceAudit
from reconcile.drift.remote import RemoteAudit
from reconcile.errors import NotFoundError, ReconcileError
from reconcile.manifest.model import Mirror
from reconcile.observe.ignore import IgnoreRules
from reconcile.transport.bounds import metadata_cap
from reconcile.transport.s3 import S3Transport
from reconcile.transport.s3_store import S3MirrorStore
from reconcile.trust.clearsign import starts_clearsigned, unverified_text
from reconcile.trust.sidecar import SUFFIX as SIDECAR_SUFFIX

NOTE_V3 = (
    "listing (keys and sizes) against the index and the spec manifests' recorded sizes; "
    "tarballs are not downloaded, so contents are not hashed, even with --check-contents"
)
NOTE_V2 = (
    "listing (keys) against the index; layout 2 records no tarball sizes, so only presence "
    "and non-empty tarballs are checked; tarballs are not downloaded, so contents are not "
    "hashed, even with --check-contents"
)
NOTE_UNREAD = "the bucket prefix could not be listed: nothing was compared"
_DATABASE_START = b'{"database":'
_V3_LAYOUT = f"{LAYOUT_FOLDER}/{LAYOUT_JSON}"
_V2_INDEX = f"{BUILD_CACHE}/{INDEX}"


def audit_s3_mirror(mirror: Mirror, url: str, transport: S3Transport) -> ResourceAudit:
    store = S3MirrorStore(url, transport)
    audit = RemoteAudit(
        resource=f"mirror:{mirror.name}",
        url=url,
        ignore=IgnoreRules(mirror.drift_ignore),
        note=NOTE_UNREAD,
    )
    try:
        objects = store.sizes()
    except ReconcileError as exc:
        audit.add("error", "unreadable", "", f"the bucket prefix cannot be listed: {exc.message}")
        return audit.result()
    try:
        if _V3_LAYOUT in objects:
            audit.note = NOTE_V3
            _audit_v3(audit, store, objects, read_index_v3(transport, url))
        elif _V2_INDEX in objects:
            audit.note = NOTE_V2
            _audit_v2(audit, objects, read_index(transport, url), signed=mirror.signed)
        else:
            audit.note = NOTE_V3 if mirror.layout == 3 else NOTE_V2
            audit.add(
                "error",
                "mirror-index-missing",
                "",
                "the mirror has no binary cache index (nothing published yet?)",
            )
    except NotFoundError as exc:
        audit.add("error", "mirror-index-missing", "", exc.message)
    except ReconcileError as exc:
        audit.add("error", "mirror-file-corrupt", "", f"the index cannot be read: {exc.message}")
    return audit.result()


def _audit_v2(
    audit: RemoteAudit, objects: dict[str, int], entries: dict[str, IndexEntry], *, signed: bool
) -> None:
    listed = {f"{BUILD_CACHE}/{INDEX}", f"{BUILD_CACHE}/{INDEX_HASH}"}
    for entry in entries.values():
        if not entry.in_buildcache:
            continue
        node = entry.node
        stem = spec_stem(node)
        spec = f"{BUILD_CACHE}/{stem}" + (".spec.json.sig" if signed else ".spec.json")
        tarball = (
            f"{BUILD_CACHE}/{node.arch}/{node.compiler}/{node.name}-{node.version}/{stem}.spack"
        )
        listed |= {spec, tarball, f"{BUILD_CACHE}/{stem}.spec.json{SIDECAR_SUFFIX}"}
        short = f"{node.name}/{node.hash[:7]}"
        for key, what in ((spec, "the metadata"), (tarball, "the tarball")):
            audit.checked += 1
            size = objects.get(key)
            if size is None:
                audit.add(
                    "error",
                    "mirror-file-missing",
                    key,
                    f"the index lists {what} of {short}, the bucket has no such object",
                )
            elif size == 0:
                audit.add("error", "mirror-file-corrupt", key, f"{what} of {short} is empty")
    for key in objects:
        inside = key.startswith(f"{BUILD_CACHE}/")
        if inside and key not in listed and not key.startswith(f"{BUILD_CACHE}/{KEYS_FOLDER}/"):
            audit.add("warning", "mirror-file-unlisted", key, "the index does not list this object")


def _audit_v3(
    audit: RemoteAudit,
    store: S3MirrorStore,
    objects: dict[str, int],
    entries: dict[str, IndexEntry],
) -> None:
    spec_folder = "/".join(SPEC_MANIFESTS) + "/"
    expected: set[str] = set()
    for entry in entries.values():
        if not entry.in_buildcache:
            continue
        node = entry.node
        key = f"{spec_folder}{node.name}/{spec_manifest_name(node)}"
        expected.add(key)
        audit.checked += 1
        if key not in objects:
            audit.add(
                "error",
                "mirror-file-missing",
                key,
                f"the index lists the manifest of {node.name}/{node.hash[:7]}, the bucket has "
                "no such object",
            )
    referenced: set[str] = set()
    manifests = f"{LAYOUT_FOLDER}/manifests/"
    for key in sorted(objects):
        if not key.startswith(manifests):
            continue
        if key.endswith(SIDECAR_SUFFIX) and key.removesuffix(SIDECAR_SUFFIX) in expected:
            continue
        if key.startswith(spec_folder) and key not in expected:
            audit.add("warning", "mirror-file-unlisted", key, "the index does not list this spec")
            continue
        if not key.endswith(".manifest.json"):
            audit.add("warning", "mirror-file-unlisted", key, "not a manifest of the layout")
            continue
        _check_manifest(audit, store, objects, key, referenced)
    for key, size in sorted(objects.items()):
        if key.startswith(f"{BLOBS}/") and key not in referenced:
            if size >= len(_DATABASE_START) and _superseded_index(store, key):
                continue
            audit.add("warning", "mirror-file-unlisted", key, "no manifest names this blob")


def _check_manifest(
    audit: RemoteAudit,
    store: S3MirrorStore,
    objects: dict[str, int],
    key: str,
    referenced: set[str],
) -> None:
    """The blobs a manifest names are listed, with the sizes it records."""
    source = audit.where(key)
    try:
        data = store.transport.read_bytes(
            store.object_url(key), cap=metadata_cap(store.transport.limits)
        )
        text = unverified_text(data) if starts_clearsigned(data) else data
        manifest = parse_manifest(json.dumps(json.loads(text)).encode(), source=source)
    except NotFoundError:
        return  # gone since the listing: the index comparison above reports it if it matters
    except (ValueError, ReconcileError) as exc:
        detail = exc.message if isinstance(exc, ReconcileError) else str(exc)
        audit.add("error", "mirror-file-corrupt", key, f"the manifest cannot be read ({detail})")
        return
    for record in manifest.records:
        blob = "/".join(record.path_components)
        referenced.add(blob)
        audit.checked += 1
        size = objects.get(blob)
        what = f"a blob named by {key.rsplit('/', 1)[-1]}"
        if size is None:
            audit.add(
                "error", "mirror-file-missing", blob, f"{what}: the bucket has no such object"
            )
        elif size != record.content_length:
            audit.add(
                "error",
                "mirror-file-corrupt",
                blob,
                f"{what}: {size} bytes, its manifest says {record.content_length}",
            )


def _superseded_index(store: S3MirrorStore, key: str) -> bool:
    """Updating a layout 3 index leaves the old blob (as Spack does): not drift."""
    try:
        return store.read_head(key, len(_DATABASE_START)) == _DATABASE_START
    except ReconcileError:
        return False
