"""Reading Spack's binary cache layout v3 (``v3/manifests/`` and ``blobs/``) through a
transport.

Trust chain: the spec manifest is clear-signed; it names the sha256 of the spec blob and of
the tarball blob; each blob is checked against it before it is used (the spec blob before
it is even decompressed). The index and the keys are not signed: what the index lists is
verified when fetched, and a key is trusted only when the manifest pins its fingerprint.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from reconcile.bounded_json import shown as shown_value
from reconcile.buildcache.database import IndexEntry, database_entries
from reconcile.buildcache.layout_v2 import (
    NO_INDEX_HINT,
    FetchedSpec,
    check_path_components,
)
from reconcile.buildcache.layouts import LAYOUT_FOLDER as LAYOUT_FOLDER
from reconcile.buildcache.layouts import LAYOUT_JSON as LAYOUT_JSON
from reconcile.buildcache.layouts import is_v3 as is_v3
from reconcile.buildcache.layouts import layout_url as layout_url
from reconcile.buildcache.manifest_v3 import (
    GZIP,
    INDEX_MEDIA_TYPE,
    KEY_INDEX_MEDIA_TYPE,
    KEY_MEDIA_TYPE,
    SPEC_MEDIA_TYPES,
    TARBALL_MEDIA_TYPE,
    BlobRecord,
    BuildcacheManifest,
    blob_content,
    check_blob,
    malformed,
    parse_manifest,
)
from reconcile.buildcache.reads import index_document, index_text, json_document, read_explained
from reconcile.buildcache.statements import verify_package
from reconcile.errors import VerificationError
from reconcile.redact import mask_credentials
from reconcile.reprs import fields_repr
from reconcile.spack.spec import SpecDocument, SpecNode, parse_spec_document
from reconcile.transport.base import Transport, join_url
from reconcile.transport.bounds import index_cap
from reconcile.trust.clearsign import starts_clearsigned, unverified_text
from reconcile.trust.policy import Opened, TrustPolicy
from reconcile.trust.sidecar import SUFFIX as SIDECAR_SUFFIX
from reconcile.trust.verify import normalize_fingerprint

MANIFESTS = "manifests"
SPEC_MANIFESTS = (LAYOUT_FOLDER, MANIFESTS, "spec")
INDEX_MANIFESTS = (LAYOUT_FOLDER, MANIFESTS, "index")
KEY_MANIFESTS = (LAYOUT_FOLDER, MANIFESTS, "key")
INDEX_MANIFEST = "index.manifest.json"
KEY_INDEX_MANIFEST = "keys.manifest.json"
# The newest spec layout this reader understands (Spack refuses newer ones the same way).
MAX_SPEC_LAYOUT_VERSION = 3

# Limits on what a blob may expand to: far above any real file, far below a memory bomb.
MAX_SPEC_BYTES = 64 << 20
MAX_INDEX_BYTES = 1 << 30
MAX_KEY_BYTES = 16 << 20

_FINGERPRINT = re.compile(r"[0-9A-F]{40}|[0-9A-F]{64}")


@attrs.frozen(kw_only=True)
class FetchedSpecV3(FetchedSpec):
    """A verified v3 spec. ``document.tarball_sha256`` holds the manifest's tarball checksum
    (v3 spec documents carry none), so code written for v2 works unchanged."""

    __repr__ = fields_repr

    tarball_url: str  # the content-addressed tarball blob
    tarball_sha256: str
    tarball_size: int  # from the manifest; checked again when the blob is downloaded


# --- where things are ----------------------------------------------------------------------


def spec_manifest_name(node: SpecNode) -> str:
    """``<name>-<version>-<hash>.spec.manifest.json``."""
    check_path_components(node)
    return f"{node.name}-{node.version}-{node.hash}.spec.manifest.json"


def spec_manifest_url(mirror_url: str, node: SpecNode) -> str:
    """``v3/manifests/spec/<name>/<name>-<version>-<hash>.spec.manifest.json``."""
    return join_url(mirror_url, *SPEC_MANIFESTS, node.name, spec_manifest_name(node))


def sidecar_url_v3(mirror_url: str, node: SpecNode) -> str:
    """``<spec manifest URL>.reconcile-sig``: reconcile's detached signatures over the
    package's statement. Spack 1.x lists manifests by ``*.manifest.json`` patterns and prunes
    only ``blobs/``, so it neither reads nor removes this file."""
    return spec_manifest_url(mirror_url, node) + SIDECAR_SUFFIX


def index_manifest_url(mirror_url: str) -> str:
    return join_url(mirror_url, *INDEX_MANIFESTS, INDEX_MANIFEST)


def key_manifest_url(mirror_url: str, fingerprint: str) -> str:
    """``v3/manifests/key/<FINGERPRINT>.key.manifest.json``."""
    fingerprint = normalize_fingerprint(fingerprint)
    if not _FINGERPRINT.fullmatch(fingerprint):
        raise ValueError(f"not a GnuPG fingerprint: {fingerprint!r}")
    return join_url(mirror_url, *KEY_MANIFESTS, f"{fingerprint}.key.manifest.json")


def key_index_manifest_url(mirror_url: str) -> str:
    return join_url(mirror_url, *KEY_MANIFESTS, KEY_INDEX_MANIFEST)


def blob_url(mirror_url: str, record: BlobRecord) -> str:
    """``blobs/sha256/<first two hex digits>/<sha256>``."""
    return join_url(mirror_url, *record.path_components)


# --- the layout, the index -----------------------------------------------------------------


def read_index_v3(
    transport: Transport, mirror_url: str, *, local_copy: Path | None = None
) -> dict[str, IndexEntry]:
    """The mirror's index (a Spack database) by DAG hash, externals included.

    The index manifest is always read fresh; the index blob it names is checked against
    the manifest's checksum. With ``local_copy``, a copy there whose checksum matches is
    used without downloading anything (the blob is content-addressed), and a transport that
    can revalidate keeps the downloaded blob there. ``NotFoundError`` when the mirror has no
    v3 index.
    """
    url = index_manifest_url(mirror_url)
    shown = mask_credentials(url)
    data = read_explained(
        transport,
        url,
        missing=f"{shown}: the mirror has no binary cache index (layout v3)",
        hint=NO_INDEX_HINT,
    )
    # Spack never signs the index; a signature, if some tool added one, proves nothing here.
    manifest = parse_manifest(_signed_text_unverified(data, shown), source=shown)
    record = manifest.only({INDEX_MEDIA_TYPE}, source=shown)
    url_of_blob = blob_url(mirror_url, record)
    shown_blob = mask_credentials(url_of_blob)
    blob = _index_blob(transport, url_of_blob, record, local_copy)
    content = blob_content(blob, record, limit=MAX_INDEX_BYTES, source=shown_blob)
    text = index_text(content, source=shown_blob, malformed=malformed)
    del blob, content  # a large index is held as text or as bytes, not both
    document = index_document(text, source=shown_blob, malformed=malformed)
    del text
    return database_entries(document, source=shown_blob)


def _index_blob(
    transport: Transport, url: str, record: BlobRecord, local_copy: Path | None
) -> bytes:
    if local_copy is not None:
        try:
            kept = local_copy.read_bytes()
        except OSError:
            kept = None
        if kept is not None and hashlib.sha256(kept).hexdigest() == record.checksum:
            return kept
    blob = read_explained(
        transport,
        url,
        local_copy=local_copy,
        missing=f"{mask_credentials(url)}: the index blob named by the index manifest is missing",
        hint="the index changed while it was read, or the mirror is incomplete: retry, "
        "and if it persists regenerate the index with `spack buildcache update-index`",
        cap=index_cap(transport.limits),
    )
    check_blob(blob, record, source=mask_credentials(url))
    return blob


# --- spec metadata -------------------------------------------------------------------------


def fetch_spec_v3(
    transport: Transport,
    mirror_url: str,
    node: SpecNode,
    *,
    trust: TrustPolicy | None,
    mirror_name: str | None = None,
) -> FetchedSpecV3:
    """Fetch (always fresh) and verify a spec's manifest and spec blob.

    With a trust policy only a clear-signed manifest is accepted, and the verified text is
    parsed; ``trust=None`` means the mirror is declared unsigned (a plain manifest, or
    the text of a signed one with its signature ignored). ``mirror_name`` (the manifest's
    name for the mirror) makes messages and hints concrete.
    """
    where = f"mirror '{mirror_name}'" if mirror_name else f"mirror {mask_credentials(mirror_url)}"
    what = f"spec {node.short()} from {where}"
    url = spec_manifest_url(mirror_url, node)
    shown = mask_credentials(url)
    data = read_explained(
        transport,
        url,
        missing=f"{what}: {shown} does not exist",
        hint="the mirror's index lists a spec whose manifest is gone; regenerate the index "
        "with `spack buildcache update-index <mirror>`, or use another mirror",
    )
    signer: str | None = None
    logged_at: str | None = None
    opened: Opened | None = None
    if trust is not None:
        if starts_clearsigned(data):
            opened = trust.open_envelope(data, mirror=mirror_name, what=what)
        elif trust.wants_statement(mirror_name):
            # Not clear-signed: reconcile's sidecar signatures alone can vouch for it.
            opened = Opened(
                payload=data,
                signers=(),
                problems=(f"no GnuPG signature: the spec manifest {shown} is not signed",),
            )
        else:
            raise VerificationError(
                f"{what}: the spec manifest {shown} is not signed, while the manifest "
                "requires signatures",
                hint=f"set signed = false on {where} to accept unsigned binaries from it",
            )
        text = opened.payload
    else:
        text = _signed_text_unverified(data, shown)
    manifest = parse_manifest(text, source=shown)
    tarball = _tarball_record(manifest, shown)
    document = _fetch_spec_document(transport, mirror_url, manifest, shown=shown, what=what)
    _check_spec_matches(document, node, tarball, what=what)
    if trust is not None and opened is not None:
        if trust.wants_statement(mirror_name):
            verified = verify_package(
                trust,
                transport,
                opened=opened,
                node=document.root,
                tarball_sha256=tarball.checksum,
                tarball_size=tarball.content_length,
                sidecar_url=sidecar_url_v3(mirror_url, node),
                what=what,
                mirror=mirror_name,
            )
            signer, logged_at = verified.signers[0].identity, verified.signers[0].logged_at()
        else:
            signer = opened.signers[0].identity
    return FetchedSpecV3(
        document=attrs.evolve(document, tarball_sha256=tarball.checksum),
        signer=signer,
        logged_at=logged_at,
        metadata_sha256=hashlib.sha256(data).hexdigest(),
        url=url,
        tarball_url=blob_url(mirror_url, tarball),
        tarball_sha256=tarball.checksum,
        tarball_size=tarball.content_length,
    )


def _tarball_record(manifest: BuildcacheManifest, shown: str) -> BlobRecord:
    record = manifest.only({TARBALL_MEDIA_TYPE}, source=shown)
    if record.compression != GZIP:
        raise malformed(
            shown,
            f"the tarball blob is {TARBALL_MEDIA_TYPE} but its compression is "
            f"{record.compression!r}, expected 'gzip'",
        )
    return record


def _fetch_spec_document(
    transport: Transport,
    mirror_url: str,
    manifest: BuildcacheManifest,
    *,
    shown: str,
    what: str,
) -> SpecDocument:
    """The spec blob: size and sha256 checked against the manifest before it is
    decompressed (with a limit) and parsed."""
    record = manifest.only(SPEC_MEDIA_TYPES, source=shown)
    url = blob_url(mirror_url, record)
    shown_blob = mask_credentials(url)
    if record.content_length > MAX_SPEC_BYTES:
        raise malformed(
            shown,
            f"the spec blob is {record.content_length} bytes, over the limit of {MAX_SPEC_BYTES}",
        )
    blob = read_explained(
        transport,
        url,
        missing=f"{what}: the spec blob {shown_blob} named by its manifest does not exist",
        hint="the mirror is incomplete: push the package again, or use another mirror",
    )
    check_blob(blob, record, source=f"{what}: spec blob {shown_blob}")
    content = blob_content(blob, record, limit=MAX_SPEC_BYTES, source=shown_blob)
    raw = json_document(content, source=shown_blob, malformed=malformed)
    if not isinstance(raw, Mapping):
        raise malformed(shown_blob, "expected a JSON object")
    return spec_document_from(raw, source=shown_blob)


def spec_document_from(raw: Mapping[str, Any], *, source: str) -> SpecDocument:
    """A spec object read from ``source`` (a spec blob, an OCI image config), parsed: its
    ``buildcache_layout_version`` must be one this reader knows."""
    layout = raw.get("buildcache_layout_version", 0)
    if not isinstance(layout, int) or isinstance(layout, bool) or layout > MAX_SPEC_LAYOUT_VERSION:
        raise malformed(
            source,
            f"buildcache_layout_version is {shown_value(layout)}, expected at most "
            f"{MAX_SPEC_LAYOUT_VERSION}",
        )
    try:
        return parse_spec_document(raw)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise malformed(source, str(exc)) from exc


def _check_spec_matches(
    document: SpecDocument, node: SpecNode, tarball: BlobRecord, *, what: str
) -> None:
    if document.root.hash != node.hash:
        raise VerificationError(
            f"{what}: the metadata describes {document.root.short()} instead "
            f"(hash {document.root.hash}, expected {node.hash}): a substituted spec",
            hint="do not use this mirror until its owner fixes it; the manifest under this "
            "spec's name belongs to another spec",
            reference="identity-mismatch",
        )
    # v3 specs carry no tarball checksum; one that does must agree with its manifest.
    named = document.tarball_sha256
    if named is not None and named != tarball.checksum:
        raise VerificationError(
            f"{what}: the spec blob names tarball sha256 {named[:64]}, but its manifest says "
            f"{tarball.checksum}",
            hint="the mirror's files contradict each other: push the package again",
        )


# --- keys ----------------------------------------------------------------------------------


def read_mirror_key_v3(
    read_url: Callable[[str], bytes], mirror_url: str, fingerprint: str
) -> bytes:
    """The armored key the mirror publishes under ``fingerprint``: its key manifest, then the
    key blob it names (checked against the manifest).

    Unchecked as a key: the caller compares the key's real fingerprint with the pinned one.
    """
    url = key_manifest_url(mirror_url, fingerprint)
    record = _single_record(read_url, url, KEY_MEDIA_TYPE)
    return _read_blob(read_url, mirror_url, record, limit=MAX_KEY_BYTES)


def read_key_index_v3(read_url: Callable[[str], bytes], mirror_url: str) -> tuple[str, ...]:
    """The fingerprints listed in ``v3/manifests/key/keys.manifest.json`` (``{"keys":
    {FPR: {}}}``); listing a key does not make it trusted."""
    url = key_index_manifest_url(mirror_url)
    record = _single_record(read_url, url, KEY_INDEX_MEDIA_TYPE)
    content = _read_blob(read_url, mirror_url, record, limit=MAX_KEY_BYTES)
    shown = mask_credentials(blob_url(mirror_url, record))
    document = json_document(content, source=shown, malformed=malformed)
    keys = document.get("keys") if isinstance(document, Mapping) else None
    if not isinstance(keys, Mapping):
        raise malformed(shown, "expected a key index {'keys': {<FINGERPRINT>: {}}}")
    return tuple(normalize_fingerprint(str(fingerprint)) for fingerprint in keys)


def _single_record(read_url: Callable[[str], bytes], url: str, media_type: str) -> BlobRecord:
    shown = mask_credentials(url)
    manifest = parse_manifest(_signed_text_unverified(read_url(url), shown), source=shown)
    return manifest.only({media_type}, source=shown)


def _read_blob(
    read_url: Callable[[str], bytes], mirror_url: str, record: BlobRecord, *, limit: int
) -> bytes:
    url = blob_url(mirror_url, record)
    shown = mask_credentials(url)
    if record.content_length > limit:
        raise malformed(shown, f"{record.content_length} bytes, over the limit of {limit}")
    blob = read_url(url)
    check_blob(blob, record, source=shown)
    return blob_content(blob, record, limit=limit, source=shown)


# --- helpers -------------------------------------------------------------------------------


def _signed_text_unverified(data: bytes, shown: str) -> bytes:
    """The JSON of a manifest whose signature is not checked: the file itself, or the text
    of a clear-signed one (for unsigned mirrors and for files Spack never signs)."""
    if not starts_clearsigned(data):
        return data
    try:
        return unverified_text(data)
    except ValueError as exc:
        raise malformed(shown, f"not a clear-signed manifest: {exc}") from exc
