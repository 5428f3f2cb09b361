"""Writing Spack's binary cache layout v3 (``v3/manifests/`` and ``blobs/``) into a mirror
folder, as Spack 1.x pushes it (FORMATS.md, Spack's ``url_buildcache``).

Blobs are content-addressed and written before the manifest that names them, and every
file is replaced atomically through the mirror's write seam (``transport/store.py``: a
folder or a bucket), so a reader never finds a manifest whose blobs are missing. The
read-modify-write of the index and of the key index holds the store's lock on their folder
(local folders: concurrent publishers on one host do not lose entries). Nothing written
carries a time: publishing the same spec twice gives byte-identical blobs and (unsigned)
manifests.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import tempfile
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from reconcile.buildcache.database import add_entries
from reconcile.buildcache.layout_v3 import (
    INDEX_MANIFEST,
    INDEX_MANIFESTS,
    KEY_INDEX_MANIFEST,
    KEY_MANIFESTS,
    LAYOUT_FOLDER,
    LAYOUT_JSON,
    MAX_INDEX_BYTES,
    MAX_KEY_BYTES,
    SPEC_MANIFESTS,
    spec_manifest_name,
)
from reconcile.buildcache.manifest_v3 import (
    GZIP,
    INDEX_MEDIA_TYPE,
    KEY_INDEX_MEDIA_TYPE,
    KEY_MEDIA_TYPE,
    SHA256,
    TARBALL_MEDIA_TYPE,
    UNCOMPRESSED,
    BlobRecord,
    BuildcacheManifest,
    blob_content,
    check_blob,
    gzip_bytes,
    manifest_bytes,
    media_type_for_spec,
    parse_manifest,
    record_for,
)
from reconcile.buildcache.writer_v2 import (
    compact_json_bytes,
    mirror_errors,
    pack_prefix,
    parse_checked,
    single_key_fingerprint,
)
from reconcile.errors import ReconcileError, VerificationError
from reconcile.faults import crash_point
from reconcile.hashing import digest_file, sha256_of
from reconcile.reprs import fields_repr
from reconcile.spack.spec import SpecNode
from reconcile.transport.store import LocalMirrorStore, MirrorStore, as_store
from reconcile.trust.clearsign import starts_clearsigned, unverified_text
from reconcile.trust.sign import GpgSigner

# What Spack 1.x still writes into spec blobs (its OCI caches read it).
SPEC_BUILDCACHE_LAYOUT_VERSION = 2
DATABASE_VERSION = "8"  # matches the index media type application/vnd.spack.db.v8+json
# Spack writes json.dump({"signing": "gpg"}) with the default separators.
LAYOUT_JSON_BYTES = json.dumps({"signing": "gpg"}).encode()
_GZIP_MAGIC = b"\x1f\x8b"


@attrs.frozen(kw_only=True)
class PublishedSpecV3:
    __repr__ = fields_repr

    manifest: Path  # v3/manifests/spec/<name>/<name>-<version>-<hash>.spec.manifest.json
    tarball: Path  # the tarball blob
    tarball_sha256: str
    tarball_size: int
    spec_blob: Path  # the gzip-compressed spec JSON
    spec_sha256: str  # of the compressed spec blob (its address)


def blob_key(record: BlobRecord) -> str:
    """``blobs/sha256/<first two hex digits>/<sha256>``."""
    return "/".join(record.path_components)


def spec_manifest_key(node: SpecNode) -> str:
    return "/".join((*SPEC_MANIFESTS, node.name, spec_manifest_name(node)))


INDEX_MANIFEST_KEY = "/".join((*INDEX_MANIFESTS, INDEX_MANIFEST))
KEY_INDEX_MANIFEST_KEY = "/".join((*KEY_MANIFESTS, KEY_INDEX_MANIFEST))
LAYOUT_JSON_KEY = f"{LAYOUT_FOLDER}/{LAYOUT_JSON}"


def key_manifest_key(fingerprint: str) -> str:
    return "/".join((*KEY_MANIFESTS, f"{fingerprint}.key.manifest.json"))


def blob_path(mirror_root: Path, record: BlobRecord) -> Path:
    return mirror_root.joinpath(*record.path_components)


def spec_manifest_path(mirror_root: Path, node: SpecNode) -> Path:
    return mirror_root.joinpath(*spec_manifest_key(node).split("/"))


def index_manifest_path(mirror_root: Path) -> Path:
    return mirror_root.joinpath(*INDEX_MANIFEST_KEY.split("/"))


def key_manifest_path(mirror_root: Path, fingerprint: str) -> Path:
    return mirror_root.joinpath(*key_manifest_key(fingerprint).split("/"))


def key_index_manifest_path(mirror_root: Path) -> Path:
    return mirror_root.joinpath(*KEY_INDEX_MANIFEST_KEY.split("/"))


def spec_blob_bytes(spec_document: Mapping[str, Any]) -> bytes:
    """The spec blob: the spec dictionary plus ``buildcache_layout_version: 2``, compact
    JSON (Spack does not sign it, so long lines are harmless), gzip-compressed."""
    document = {
        key: value
        for key, value in spec_document.items()
        if key not in ("buildcache_layout_version", "binary_cache_checksum")
    }
    document["buildcache_layout_version"] = SPEC_BUILDCACHE_LAYOUT_VERSION
    return gzip_bytes(compact_json_bytes(document))


def write_spec_v3(
    mirror: MirrorStore | Path,
    *,
    spec_document: Mapping[str, Any],
    tarball: Path,
    signer: GpgSigner | None,
) -> PublishedSpecV3:
    """Put ``tarball`` (a layout-v2 ``.spack`` file: one gzip-compressed tar) and the spec's
    metadata into the mirror: the tarball blob, the spec blob, then the spec manifest naming
    both (clear-signed with a signer). ``v3/layout.json`` comes with the index
    (``write_index_v3``), after it: a reader never finds a layout-3 mirror without an index
    (Spack 1.1 writes it just before the index, which leaves that window open).

    Blobs an earlier push left are kept: a reader holding the old manifest can still fetch
    them, and another manifest may name the same content.
    """
    document = parse_checked(spec_document)
    _check_tarball(tarball)
    store = as_store(mirror)
    with _v3_errors(store):
        tarball_record = _store_file_blob(store, tarball)
        crash_point("publish-tarball-written")
        spec_blob = spec_blob_bytes(spec_document)
        spec_record = record_for(
            spec_blob, media_type=media_type_for_spec(spec_document), compression=GZIP
        )
        _store_blob(store, spec_record, spec_blob)
    text = manifest_bytes(BuildcacheManifest(records=(tarball_record, spec_record)))
    content = signer.clearsign(text) if signer is not None else text
    manifest = spec_manifest_key(document.root)
    with _v3_errors(store):
        store.put_bytes(manifest, content)
    return PublishedSpecV3(
        manifest=store.local_path(manifest),
        tarball=store.local_path(blob_key(tarball_record)),
        tarball_sha256=tarball_record.checksum,
        tarball_size=tarball_record.content_length,
        spec_blob=store.local_path(blob_key(spec_record)),
        spec_sha256=spec_record.checksum,
    )


def write_index_v3(
    mirror: MirrorStore | Path,
    nodes: Iterable[SpecNode],
    *,
    in_buildcache: Collection[str] | None = None,
) -> None:
    """Add or replace ``nodes`` in the mirror's index: the current index (read through its
    manifest) plus these entries becomes a new index blob, then the index manifest is
    replaced to name it.

    Nodes are listed as Spack 1.x lists them (every node of a published spec, build-only
    dependencies and externals included, in spec format 5): ``in_buildcache`` names those
    whose tarball is in this mirror (every non-external node when None). ``ref_count`` is
    recomputed over the whole index, over every edge type.
    """
    store = as_store(mirror)
    manifest_file = INDEX_MANIFEST_KEY
    with _v3_errors(store), store.locked(posixpath.dirname(manifest_file)):
        index = _current_document(
            store,
            manifest_file,
            INDEX_MEDIA_TYPE,
            limit=MAX_INDEX_BYTES,
            expected="a Spack database {'database': {...}}",
        )
        database = index.setdefault("database", {"version": DATABASE_VERSION, "installs": {}})
        if not isinstance(database, dict) or not isinstance(database.get("installs"), dict):
            raise _damaged(store, manifest_file, "its index blob is not a Spack database")
        installs: dict[str, Any] = database["installs"]
        add_entries(installs, nodes, in_buildcache=in_buildcache, spack_1x=True)
        _write_single_blob_manifest(
            store,
            manifest_file,
            compact_json_bytes(index),
            media_type=INDEX_MEDIA_TYPE,
        )
        ensure_layout_json(store)


def publish_key_v3(mirror: MirrorStore | Path, armored: bytes) -> str:
    """Publish one signer's armored public key: the key blob, ``<FPR>.key.manifest.json``,
    and the key index ``keys.manifest.json`` listing it; returns the fingerprint. Readers
    trust the key only if the manifest pins it."""
    fingerprint = single_key_fingerprint(armored)
    store = as_store(mirror)
    key_index_file = KEY_INDEX_MANIFEST_KEY
    with _v3_errors(store), store.locked(posixpath.dirname(key_index_file)):
        _write_single_blob_manifest(
            store,
            key_manifest_key(fingerprint),
            armored,
            media_type=KEY_MEDIA_TYPE,
        )
        key_index = _current_document(
            store,
            key_index_file,
            KEY_INDEX_MEDIA_TYPE,
            limit=MAX_KEY_BYTES,
            expected="a key index {'keys': {...}}",
        )
        keys = key_index.setdefault("keys", {})
        if not isinstance(keys, dict):
            raise _damaged(store, key_index_file, "'keys' in its blob is not an object")
        keys.setdefault(fingerprint, {})
        _write_single_blob_manifest(
            store,
            key_index_file,
            compact_json_bytes(key_index),
            media_type=KEY_INDEX_MEDIA_TYPE,
        )
        ensure_layout_json(store)
    return fingerprint


# --- blobs ---------------------------------------------------------------------------------


def write_package_v3(
    mirror: MirrorStore | Path,
    *,
    prefix: Path,
    spec_document: Mapping[str, Any],
    buildpath: str,
    hash_to_prefix: Mapping[str, str],
    signer: GpgSigner | None,
    publish_key: bool = True,
) -> PublishedSpecV3:
    """Publish the installed ``prefix`` in layout 3 (see ``writer_v2.write_package_v2``
    for ``buildpath`` and ``hash_to_prefix``): tarball and spec blobs, the spec manifest,
    the index, and, with a signer, the signer's public key."""
    document = parse_checked(spec_document)
    root = document.root
    store = as_store(mirror)
    with tempfile.TemporaryDirectory(prefix="reconcile-pack-") as private:
        tarball = Path(private) / f"{root.hash}.spack"  # packed privately, then put
        pack_prefix(
            prefix, tarball, own_hash=root.hash, buildpath=buildpath, hash_to_prefix=hash_to_prefix
        )
        published = write_spec_v3(
            store, spec_document=spec_document, tarball=tarball, signer=signer
        )
    crash_point("publish-before-index")
    write_index_v3(store, document.nodes, in_buildcache={root.hash})
    if signer is not None and publish_key:
        publish_key_v3(store, signer.public_key())
    return published


def _check_tarball(tarball: Path) -> None:
    try:
        with tarball.open("rb") as stream:
            magic = stream.read(len(_GZIP_MAGIC))
    except OSError as exc:
        raise ReconcileError(
            f"cannot read the tarball {tarball}: {exc.strerror or exc}",
            hint="write it first (reconcile.buildcache.pack.write_tarball)",
            reference="tarball-missing",
        ) from exc
    if magic != _GZIP_MAGIC:
        raise ReconcileError(
            f"{tarball} is not gzip-compressed: a v3 tarball blob is {TARBALL_MEDIA_TYPE}",
            hint="pass a .spack file written by Spack or reconcile.buildcache.pack",
            reference="bad-tarball",
        )


def _holds(store: MirrorStore, record: BlobRecord) -> bool:
    """Whether a local mirror already holds exactly the blob (a damaged copy is replaced).
    A remote store is written again: checking would download the blob."""
    if not isinstance(store, LocalMirrorStore):
        return False
    path = store.local_path(blob_key(record))
    try:
        if path.stat().st_size != record.content_length:
            return False
        return sha256_of(path) == record.checksum
    except OSError:
        return False


def _store_file_blob(store: MirrorStore, source: Path) -> BlobRecord:
    found = digest_file(source)
    checksum, size = found.sha256, found.size
    record = BlobRecord(
        content_length=size,
        media_type=TARBALL_MEDIA_TYPE,
        compression=GZIP,
        checksum_algorithm=SHA256,
        checksum=checksum,
    )
    if _holds(store, record):
        return record
    key = blob_key(record)
    if store.put_file(key, source) != checksum:
        # A blob's name must be its content's checksum: what was written is not that blob.
        store.delete(key)
        raise ReconcileError(
            f"{source} changed while it was published",
            hint="do not modify the tarball while publishing it; publish again",
            reference="tarball-changed",
        )
    return record


def _store_blob(store: MirrorStore, record: BlobRecord, data: bytes) -> None:
    if not _holds(store, record):
        store.put_bytes(blob_key(record), data)


def _write_single_blob_manifest(
    store: MirrorStore, manifest_file: str, data: bytes, *, media_type: str
) -> None:
    """An uncompressed blob, then the manifest naming it (replaced atomically)."""
    record = record_for(data, media_type=media_type, compression=UNCOMPRESSED)
    _store_blob(store, record, data)
    store.put_bytes(manifest_file, manifest_bytes(BuildcacheManifest(records=(record,))))


def _current_document(
    store: MirrorStore, manifest_file: str, media_type: str, *, limit: int, expected: str
) -> dict[str, Any]:
    """The JSON object in the blob ``manifest_file`` names, checked; ``{}`` when there is no
    manifest yet."""
    data = store.read_bytes(manifest_file)
    if data is None:
        return {}
    source = str(store.local_path(manifest_file))
    try:
        if starts_clearsigned(data):
            data = unverified_text(data)
        record = parse_manifest(data, source=source).only({media_type}, source=source)
        blob_file = str(store.local_path(blob_key(record)))
        blob = store.read_bytes(blob_key(record))
        if blob is None:
            raise _damaged(store, manifest_file, f"the blob it names ({blob_file}) is missing")
        check_blob(blob, record, source=blob_file)
        loaded = json.loads(blob_content(blob, record, limit=limit, source=blob_file))
    except ValueError as exc:  # not clear-signed, not JSON
        raise _damaged(store, manifest_file, str(exc)) from exc
    except VerificationError as exc:
        raise _damaged(store, manifest_file, exc.message) from exc
    if not isinstance(loaded, dict):
        raise _damaged(
            store,
            manifest_file,
            f"its blob holds a JSON {type(loaded).__name__}, expected {expected}",
        )
    return loaded


def _damaged(store: MirrorStore, manifest_file: str, reason: str) -> ReconcileError:
    return ReconcileError(
        f"{store.local_path(manifest_file)}: {reason}",
        hint="move the damaged manifest away; publishing again writes a fresh one from the "
        "entries published from now on (or run `spack buildcache update-index`)",
        reference="malformed-metadata",
    )


def ensure_layout_json(mirror: MirrorStore | Path) -> None:
    store = as_store(mirror)
    if not store.exists(LAYOUT_JSON_KEY):
        store.put_bytes(LAYOUT_JSON_KEY, LAYOUT_JSON_BYTES)


def _v3_errors(store: MirrorStore) -> contextlib.AbstractContextManager[None]:
    return mirror_errors(store, folders="v3/ and blobs/ must be folders")
