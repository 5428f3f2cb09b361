"""The manifest of Spack's binary cache layout v3: ``{"version": 3, "data": [records]}``.

Every file of a v3 cache (spec metadata, tarball, index, key, key index) is a blob stored
under its own sha256; a manifest names the blobs of one entity, each with its size, media
type, compression and checksum. The checksum is also the blob's address, so it is checked
strictly here: it becomes a path component of the mirror.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import zlib
from collections.abc import Collection, Mapping
from typing import Any

import attrs

from reconcile import bounded_json
from reconcile.bounded_json import shown
from reconcile.errors import VerificationError
from reconcile.reprs import fields_repr

MANIFEST_VERSION = 3
BLOBS = "blobs"
SHA256 = "sha256"
GZIP = "gzip"
UNCOMPRESSED = "none"
COMPRESSIONS = frozenset({GZIP, UNCOMPRESSED})

TARBALL_MEDIA_TYPE = "application/vnd.spack.install.v2.tar+gzip"
# Spack 1.0 writes spec format v5; later releases v6. Both parse the same way here.
SPEC_MEDIA_TYPE_V5 = "application/vnd.spack.spec.v5+json"
SPEC_MEDIA_TYPE_V6 = "application/vnd.spack.spec.v6+json"
SPEC_MEDIA_TYPES = frozenset({SPEC_MEDIA_TYPE_V5, SPEC_MEDIA_TYPE_V6})
INDEX_MEDIA_TYPE = "application/vnd.spack.db.v8+json"
KEY_MEDIA_TYPE = "application/pgp-keys"
KEY_INDEX_MEDIA_TYPE = "application/vnd.spack.keyindex.v1+json"

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_FIELDS = ("contentLength", "mediaType", "compression", "checksumAlgorithm", "checksum")
_GZIP_LEVEL = 6  # Spack's choice for every blob it compresses


@attrs.frozen(kw_only=True)
class BlobRecord:
    """One element of a manifest's ``data``: where a blob is and how to check it."""

    __repr__ = fields_repr

    content_length: int  # bytes of the blob as stored (compressed, when compressed)
    media_type: str
    compression: str  # "gzip" or "none"
    checksum_algorithm: str  # always "sha256" (the only one reconcile accepts)
    checksum: str  # lower-case hex of the stored bytes: also the blob's address

    @property
    def path_components(self) -> tuple[str, str, str, str]:
        """``blobs/sha256/<first two hex digits>/<checksum>``, relative to the mirror."""
        return (BLOBS, self.checksum_algorithm, self.checksum[:2], self.checksum)

    def to_json(self) -> dict[str, Any]:
        return {
            "contentLength": self.content_length,
            "mediaType": self.media_type,
            "compression": self.compression,
            "checksumAlgorithm": self.checksum_algorithm,
            "checksum": self.checksum,
        }


@attrs.frozen(kw_only=True)
class BuildcacheManifest:
    __repr__ = fields_repr

    records: tuple[BlobRecord, ...]

    def only(self, media_types: Collection[str], *, source: str) -> BlobRecord:
        """The single record whose media type is one of ``media_types``; a manifest with
        none or several of them is refused (which one is meant would be a guess)."""
        found = [record for record in self.records if record.media_type in media_types]
        if len(found) == 1:
            return found[0]
        wanted = " or ".join(sorted(media_types))
        listed = ", ".join(record.media_type for record in self.records) or "nothing"
        problem = "no blob" if not found else f"{len(found)} blobs"
        raise malformed(source, f"{problem} of media type {wanted} (it lists {listed})")

    def to_json(self) -> dict[str, Any]:
        return {"version": MANIFEST_VERSION, "data": [r.to_json() for r in self.records]}


def record_for(data: bytes, *, media_type: str, compression: str) -> BlobRecord:
    """The record describing ``data`` stored as a blob as it is (already compressed when
    ``compression`` is gzip)."""
    return BlobRecord(
        content_length=len(data),
        media_type=media_type,
        compression=compression,
        checksum_algorithm=SHA256,
        checksum=hashlib.sha256(data).hexdigest(),
    )


def manifest_bytes(manifest: BuildcacheManifest) -> bytes:
    """As Spack writes manifests: no indent but a line break between tokens, since GnuPG's
    clear-signing breaks lines longer than about 20,000 characters."""
    return json.dumps(manifest.to_json(), indent=0, separators=(",", ":")).encode()


def parse_manifest(text: bytes, *, source: str) -> BuildcacheManifest:
    """Parse and validate a manifest (its signature, if any, already dealt with).

    ``source`` names the file in errors (a URL with credentials masked, or a path).
    ``VerificationError`` for anything that is not a layout-v3 manifest.
    """
    try:
        raw = bounded_json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise malformed(source, f"not valid JSON ({exc})") from exc
    except bounded_json.TooDeepError as exc:
        raise malformed(source, str(exc)) from exc
    if not isinstance(raw, Mapping) or "version" not in raw or "data" not in raw:
        raise malformed(source, "expected a manifest object {'version': 3, 'data': [...]}")
    version = raw["version"]
    if type(version) is not int or version != MANIFEST_VERSION:
        raise VerificationError(
            f"{source}: manifest layout version is {shown(version)}, expected {MANIFEST_VERSION}",
            hint="this reader understands binary cache layout v3 (Spack 1.x); the file was "
            "written by another Spack version or is damaged",
            reference="unsupported-layout",
        )
    data = raw["data"]
    if not isinstance(data, list) or not data:
        raise malformed(source, "'data' must be a non-empty list of blob records")
    records = tuple(_record(item, index, source) for index, item in enumerate(data))
    return BuildcacheManifest(records=records)


def _record(item: object, index: int, source: str) -> BlobRecord:
    where = f"data[{index}]"
    if not isinstance(item, Mapping):
        raise malformed(source, f"{where} is not an object")
    missing = [field for field in _FIELDS if field not in item]
    if missing:
        raise malformed(source, f"{where} lacks {', '.join(missing)}")
    length = item["contentLength"]
    if not isinstance(length, int) or isinstance(length, bool) or length < 0:
        raise malformed(source, f"{where}.contentLength is {shown(length)}, expected a byte count")
    media_type, compression = item["mediaType"], item["compression"]
    if not isinstance(media_type, str):
        raise malformed(source, f"{where}.mediaType is {shown(media_type)}, expected a string")
    if compression not in COMPRESSIONS:
        raise malformed(
            source, f"{where}.compression is {shown(compression)}, expected 'gzip' or 'none'"
        )
    algorithm, checksum = item["checksumAlgorithm"], item["checksum"]
    if algorithm != SHA256:
        raise malformed(
            source, f"{where}.checksumAlgorithm is {shown(algorithm)}, expected 'sha256'"
        )
    if not isinstance(checksum, str) or not _SHA256_HEX.fullmatch(checksum):
        raise malformed(
            source,
            f"{where}.checksum is {str(checksum)[:80]!r}, expected 64 lower-case hex digits",
        )
    return BlobRecord(
        content_length=length,
        media_type=media_type,
        compression=compression,
        checksum_algorithm=algorithm,
        checksum=checksum,
    )


def check_blob(data: bytes, record: BlobRecord, *, source: str) -> None:
    """Refuse a blob whose size or sha256 differs from its (verified) manifest record."""
    if len(data) != record.content_length:
        raise VerificationError(
            f"{source}: {len(data)} bytes, but the manifest says {record.content_length}",
            hint=BLOB_TAMPER_HINT,
        )
    actual = hashlib.sha256(data).hexdigest()
    if actual != record.checksum:
        raise VerificationError(
            f"{source}: sha256 is {actual}, but the manifest says {record.checksum}",
            hint=BLOB_TAMPER_HINT,
        )


BLOB_TAMPER_HINT = (
    "the blob was changed or damaged after its manifest was written: fetch it again, and "
    "if the error persists do not use this mirror until its owner pushes the package again"
)


def gzip_bytes(data: bytes) -> bytes:
    """Gzip as Spack compresses blobs, and reproducibly: no file name, mtime 0."""
    buffer = io.BytesIO()
    with gzip.GzipFile(
        filename="", mode="wb", compresslevel=_GZIP_LEVEL, mtime=0, fileobj=buffer
    ) as compressed:
        compressed.write(data)
    return buffer.getvalue()


def blob_content(data: bytes, record: BlobRecord, *, limit: int, source: str) -> bytes:
    """The content of a checked blob: decompressed when it is gzip, never more than
    ``limit`` bytes (a small blob must not expand into gigabytes)."""
    if record.compression == UNCOMPRESSED:
        return data
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        content = decompressor.decompress(data, limit + 1)
    except zlib.error as exc:
        raise malformed(source, f"not valid gzip data ({exc})") from exc
    if len(content) > limit:
        raise malformed(source, f"expands to more than {limit} bytes")
    if not decompressor.eof or decompressor.unused_data:
        raise malformed(source, "the gzip stream is truncated or followed by other data")
    return content


def malformed(source: str, reason: str) -> VerificationError:
    # Nothing from a file that is not what it claims to be is used: observers treat this
    # like a bad signature.
    return VerificationError(
        f"{source}: {reason}",
        hint="the mirror serves a damaged file; check the URL, or push the package again "
        "with Spack 1.x (or reconcile)",
        reference="malformed-metadata",
    )


def media_type_for_spec(spec_document: Mapping[str, Any]) -> str:
    """Always v5: every Spack 1.x release looks spec blobs up by exactly this media type
    (none writes v6), whatever the format of the document inside."""
    del spec_document
    return SPEC_MEDIA_TYPE_V5
