"""Reading Spack's binary cache layout v2 (``build_cache/``) through a transport."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs

from reconcile.buildcache.database import IndexEntry, database_entries
from reconcile.buildcache.reads import index_document, index_text, json_document, read_explained
from reconcile.buildcache.statements import verify_package
from reconcile.errors import NotFoundError, VerificationError
from reconcile.redact import mask_credentials
from reconcile.reprs import fields_repr
from reconcile.spack.spec import SpecDocument, SpecNode, parse_spec_document
from reconcile.transport.base import Transport, join_url
from reconcile.transport.bounds import index_cap
from reconcile.transport.urls import append_to_name
from reconcile.trust.clearsign import CLEARSIGN_HEADER, unverified_text
from reconcile.trust.policy import Opened, TrustPolicy
from reconcile.trust.sidecar import SUFFIX as SIDECAR_SUFFIX
from reconcile.trust.signers import normalize_fingerprint

BUILD_CACHE = "build_cache"
INDEX = "index.json"
INDEX_HASH = "index.json.hash"
KEYS_FOLDER = "_pgp"

# Names from a mirror become URL path components: a name must not add or climb folders.
_SAFE_COMPONENT = re.compile(r"[A-Za-z0-9_+=~-][A-Za-z0-9_.+=~-]*")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@attrs.frozen(kw_only=True)
class FetchedSpec:
    __repr__ = fields_repr

    document: SpecDocument
    signer: str | None  # fingerprint of the verified signer; None for an unsigned mirror
    metadata_sha256: str  # sha256 of the metadata file's bytes as fetched (plan fingerprints)
    url: str
    # when a transparency log recorded the signer's signature (sigstore; ``Signer.logged_at``)
    logged_at: str | None = None


def spec_stem(node: SpecNode) -> str:
    """``<arch>-<compiler>-<cver>-<name>-<version>-<hash>``."""
    return f"{node.arch}-{node.compiler}-{node.name}-{node.version}-{node.hash}"


def spec_url(mirror_url: str, node: SpecNode, *, signed: bool) -> str:
    """``build_cache/<stem>.spec.json.sig`` when signed, else ``build_cache/<stem>.spec.json``."""
    check_path_components(node)
    suffix = ".spec.json.sig" if signed else ".spec.json"
    return join_url(mirror_url, BUILD_CACHE, spec_stem(node) + suffix)


def sidecar_url(mirror_url: str, node: SpecNode) -> str:
    """``build_cache/<stem>.spec.json.reconcile-sig``: reconcile's detached signatures over the
    package's statement, beside its ``.spec.json.sig`` (Spack lists only names ending in
    ``spec.json`` or ``spec.json.sig``, so it never reads this file)."""
    check_path_components(node)
    return join_url(mirror_url, BUILD_CACHE, spec_stem(node) + ".spec.json" + SIDECAR_SUFFIX)


def tarball_url(mirror_url: str, node: SpecNode) -> str:
    """``build_cache/<arch>/<compiler>-<cver>/<name>-<version>/<stem>.spack``."""
    check_path_components(node)
    return join_url(
        mirror_url,
        BUILD_CACHE,
        node.arch,
        node.compiler,
        f"{node.name}-{node.version}",
        spec_stem(node) + ".spack",
    )


def key_url(mirror_url: str, fingerprint: str) -> str:
    """``build_cache/_pgp/<FINGERPRINT>.pub``: where Spack publishes a signer's public key."""
    fingerprint = normalize_fingerprint(fingerprint)
    if not re.fullmatch(r"[0-9A-F]{40}|[0-9A-F]{64}", fingerprint):
        raise ValueError(f"not a GnuPG fingerprint: {fingerprint!r}")
    return join_url(mirror_url, BUILD_CACHE, KEYS_FOLDER, f"{fingerprint}.pub")


def read_mirror_key(read_url: Callable[[str], bytes], mirror_url: str, fingerprint: str) -> bytes:
    """The armored key the mirror publishes under ``fingerprint`` (at ``key_url``).

    Unchecked: the caller compares the key's real fingerprint with the pinned one.
    """
    return read_url(key_url(mirror_url, fingerprint))


NO_INDEX_HINT = (
    "check the mirror URL; if it is a Spack binary cache, regenerate its index with "
    "`spack buildcache update-index <mirror>`"
)


def read_index(
    transport: Transport, mirror_url: str, *, local_copy: Path | None = None
) -> dict[str, IndexEntry]:
    """The mirror's ``index.json`` by DAG hash (externals included, ``in_buildcache`` false).
    Checks ``index.json.hash`` when present; ``NotFoundError`` when the mirror has no index.
    With ``local_copy``, a transport that can revalidate does not download an unchanged
    index again (the index is not signed; what it names is verified when fetched)."""
    url = join_url(mirror_url, BUILD_CACHE, INDEX)
    shown = mask_credentials(url)
    data = read_explained(
        transport,
        url,
        local_copy=local_copy,
        missing=f"{shown}: the mirror has no binary cache index (layout v2)",
        hint=NO_INDEX_HINT,
        cap=index_cap(transport.limits),
    )
    try:
        _check_index_hash(transport, url, data)
    except VerificationError:
        if local_copy is None:
            raise
        # The kept copy may be what is wrong (damaged, or tampered with in a shared cache
        # root): fetch the index itself once more before blaming the mirror.
        data = transport.read_bytes(url, cap=index_cap(transport.limits))
        _check_index_hash(transport, url, data)
    text = index_text(data, source=shown, malformed=_malformed)
    del data  # a large index is held as text or as bytes, not both
    document = index_document(text, source=shown, malformed=_malformed)
    del text
    return database_entries(document, source=shown)


def fetch_spec(
    transport: Transport,
    mirror_url: str,
    node: SpecNode,
    *,
    trust: TrustPolicy | None,
    mirror_name: str | None = None,
) -> FetchedSpec:
    """Fetch (always fresh) and verify a spec's metadata. With a trust policy, only
    ``.spec.json.sig`` is accepted and the verified text is parsed; ``trust=None`` means the
    mirror is declared unsigned.

    ``mirror_name`` (the manifest's name for the mirror) makes messages and hints concrete.
    """
    where = f"mirror '{mirror_name}'" if mirror_name else f"mirror {mask_credentials(mirror_url)}"
    what = f"spec {node.short()} from {where}"
    signed_url = spec_url(mirror_url, node, signed=True)
    plain_url = spec_url(mirror_url, node, signed=False)
    signer: str | None = None
    logged_at: str | None = None
    opened: Opened | None = None
    if trust is not None:
        url = signed_url
        try:
            # a file that does not start clear-signed is refused by the check below without
            # the rest of it being read
            data = transport.read_bytes(url, expect_prefix=CLEARSIGN_HEADER)
        except NotFoundError:
            if not _exists(transport, plain_url):
                raise _spec_missing(what, signed_url, plain_url) from None
            if not trust.wants_statement(mirror_name):
                raise VerificationError(
                    f"{what}: the spec on that mirror is unsigned "
                    f"({mask_credentials(plain_url)}), while the manifest requires signatures",
                    hint=f"set signed = false on {where} to accept unsigned binaries from it",
                ) from None
            # Not clear-signed: reconcile's sidecar signatures alone can vouch for it.
            url, data = plain_url, transport.read_bytes(plain_url)
            opened = Opened(
                payload=data,
                signers=(),
                problems=(f"no GnuPG signature: {mask_credentials(plain_url)} is not signed",),
            )
        if opened is None:
            opened = trust.open_envelope(data, mirror=mirror_name, what=what)
        text = opened.payload
    else:
        url, data, text = _fetch_unsigned(transport, signed_url, plain_url, what=what)
    document = _parse_spec(text, mask_credentials(url))
    _check_spec_matches(document, node, what=what)
    if trust is not None and opened is not None:
        if trust.wants_statement(mirror_name):
            verified = verify_package(
                trust,
                transport,
                opened=opened,
                node=document.root,
                tarball_sha256=document.tarball_sha256 or "",
                tarball_size=transport.size(tarball_url(mirror_url, node)),
                sidecar_url=sidecar_url(mirror_url, node),
                what=what,
                mirror=mirror_name,
            )
            signer, logged_at = verified.signers[0].identity, verified.signers[0].logged_at()
        else:
            signer = opened.signers[0].identity
    return FetchedSpec(
        document=document,
        signer=signer,
        logged_at=logged_at,
        metadata_sha256=hashlib.sha256(data).hexdigest(),
        url=url,
    )


def _fetch_unsigned(
    transport: Transport, signed_url: str, plain_url: str, *, what: str
) -> tuple[str, bytes, bytes]:
    """URL, fetched bytes and spec text for a mirror declared unsigned: the plain
    ``.spec.json``, else the text of ``.spec.json.sig`` with its signature ignored on purpose."""
    try:
        data = transport.read_bytes(plain_url)
    except NotFoundError:
        pass
    else:
        return plain_url, data, data
    try:
        data = transport.read_bytes(signed_url)
    except NotFoundError:
        raise _spec_missing(what, signed_url, plain_url) from None
    try:
        return signed_url, data, unverified_text(data)
    except ValueError as exc:
        raise _malformed(mask_credentials(signed_url), f"not a clear-signed spec: {exc}") from exc


def _check_index_hash(transport: Transport, index_url: str, data: bytes) -> None:
    hash_url = append_to_name(index_url, ".hash")  # before a mirror URL's query
    try:
        expected = transport.read_bytes(hash_url).decode("ascii", "replace").strip().lower()
    except NotFoundError:
        return
    actual = hashlib.sha256(data).hexdigest()
    if expected != actual:
        raise VerificationError(
            f"{mask_credentials(index_url)}: sha256 is {actual}, but {INDEX_HASH} says "
            f"{expected[:64]!r}",
            hint="the index changed while it was read or is damaged: retry, and if it persists "
            "regenerate it with `spack buildcache update-index <mirror>`",
        )


def _parse_spec(text: bytes, shown: str) -> SpecDocument:
    raw = json_document(text, source=shown, malformed=_malformed)
    if not isinstance(raw, Mapping):
        raise _malformed(shown, "expected a JSON object")
    try:
        return parse_spec_document(raw)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise _malformed(shown, str(exc)) from exc


def _check_spec_matches(document: SpecDocument, node: SpecNode, *, what: str) -> None:
    if document.root.hash != node.hash:
        raise VerificationError(
            f"{what}: the metadata describes {document.root.short()} instead "
            f"(hash {document.root.hash}, expected {node.hash}): a substituted spec",
            hint="do not use this mirror until its owner fixes it; the file under this spec's "
            "name belongs to another spec",
            reference="identity-mismatch",
        )
    checksum = document.tarball_sha256
    if checksum is None:
        raise VerificationError(
            f"{what}: the metadata carries no binary_cache_checksum, so the tarball cannot be "
            "checked",
            hint="layout v2 specs must record the tarball's sha256; push the spec again with "
            "a current Spack",
        )
    if not _SHA256_HEX.fullmatch(checksum):
        raise VerificationError(
            f"{what}: binary_cache_checksum is not a sha256 hex digest: {checksum[:80]!r}",
            hint="the metadata is damaged; push the spec again",
        )


def unsafe_path_component(node: SpecNode) -> str | None:
    """The first of the spec's fields that would be unsafe in a mirror path, if any.

    Names, versions, hashes and architectures become file and folder names in the layout,
    so each must be one plain path component.
    """
    parts = [node.platform, node.platform_os, node.target, node.name, node.version, node.hash]
    parts += [node.compiler_name or "none", node.compiler_version or "none"]
    return next((part for part in parts if not _SAFE_COMPONENT.fullmatch(part)), None)


def check_path_components(node: SpecNode) -> None:
    part = unsafe_path_component(node)
    if part is not None:
        raise VerificationError(
            f"spec {node.name}@{node.version} names an unusable path component {part!r}",
            hint="names, versions, hashes and architectures from a mirror may hold only "
            "letters, digits and . _ + = ~ -; the mirror's index is damaged or hostile",
        )


def _exists(transport: Transport, url: str) -> bool:
    try:
        transport.size(url)
    except NotFoundError:
        return False
    return True


def _spec_missing(what: str, signed_url: str, plain_url: str) -> NotFoundError:
    return NotFoundError(
        f"{what}: neither {mask_credentials(signed_url)} nor {mask_credentials(plain_url)} exists",
        hint="the mirror's index lists a spec whose metadata is gone; regenerate the index "
        "with `spack buildcache update-index <mirror>`, or use another mirror",
    )


def _malformed(shown: str, reason: str) -> VerificationError:
    # A verification failure in the wide sense: nothing from a file that is not the Spack
    # document it claims to be is used (observers treat it like a bad signature).
    return VerificationError(
        f"{shown}: {reason}",
        hint="the mirror serves a damaged file; check the URL, or regenerate the file with Spack",
        reference="malformed-metadata",
    )
