"""Copying specs between mirrors (mirror ``specs``): fetched fresh, verified, then written.

Phase 1 fetches every spec's metadata (signature verified), its tarball (checked against the
signed sha256) and, for a verbatim layout 3 copy, every blob its manifest names, into a
private staging folder. Commit writes them into the target mirror, then its index and keys.

Layout 2 to layout 2 without ``sign_with`` copies the metadata file byte for byte, so the
original signature is kept; otherwise the verified spec is written anew by the target
layout's writer, signed with the mirror's ``sign_with`` gpg key (or unsigned when the source
is unsigned or an OCI registry and no gpg key is named). The source's sidecar is copied as it
is, into or out of an OCI registry too (there it is the ``<name>-<version>-<hash>.reconcile-sig``
artifact, tagged after the image it signs), and each ed25519 or sigstore key of ``sign_with``
adds its signature over the statement of the verified spec and the tarball written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from pathlib import Path
from typing import Any

import attrs

from reconcile.apply.context import ApplyResult, RunContext
from reconcile.buildcache.layout_oci import OCI_LAYOUT, fetch_spec_oci, sidecar_location
from reconcile.buildcache.layout_v2 import (
    FetchedSpec,
    fetch_spec,
    sidecar_url,
    spec_url,
    tarball_url,
)
from reconcile.buildcache.layout_v3 import (
    blob_url,
    fetch_spec_v3,
    sidecar_url_v3,
    spec_manifest_url,
)
from reconcile.buildcache.manifest_v3 import (
    TARBALL_MEDIA_TYPE,
    BlobRecord,
    check_blob,
    parse_manifest,
)
from reconcile.buildcache.pinned_keys import trust_policy
from reconcile.buildcache.writer_oci import push_package_oci, push_sidecar_oci, update_index_oci
from reconcile.buildcache.writer_v2 import (
    publish_key_v2,
    spec_key,
    tarball_key,
    write_index_v2,
    write_spec_v2,
)
from reconcile.buildcache.writer_v3 import (
    blob_key,
    publish_key_v3,
    spec_manifest_key,
    write_index_v3,
    write_spec_v3,
)
from reconcile.errors import NotFoundError, VerificationError
from reconcile.faults import crash_point
from reconcile.hashing import sha256_of
from reconcile.plan.model import SyncAction
from reconcile.publish.sidecars import sidecar_key, sign_stored_package, signed_sidecar
from reconcile.redact import mask_credentials
from reconcile.reprs import fields_repr
from reconcile.spack.spec import SpecNode, parse_node
from reconcile.transport.base import Transport
from reconcile.transport.bounds import Cap, signed_size_cap
from reconcile.transport.oci import OciTransport
from reconcile.transport.oci_reference import parse_oci_mirror
from reconcile.transport.registry import TransportPool
from reconcile.transport.store import MirrorStore
from reconcile.trust.clearsign import starts_clearsigned, unverified_text
from reconcile.trust.policy import TrustPolicy
from reconcile.trust.sign import GpgSigner
from reconcile.trust.signers import StatementSigner


@attrs.frozen(kw_only=True)
class VerifiedCopy:
    """One spec, verified and staged, ready to be written into the target mirror."""

    __repr__ = fields_repr

    action: SyncAction
    fetched: FetchedSpec
    tarball: Path  # private, checked against the signed sha256
    # a verbatim copy: the signed metadata file (layout 2) or spec manifest (layout 3) as is
    raw_metadata: bytes | None = None
    # a verbatim layout 3 copy: each blob of the manifest with its bytes (None: the tarball)
    blobs: tuple[tuple[BlobRecord, bytes | None], ...] = ()
    # reconcile's sidecar signatures, if the source has them: the statement they sign (DAG
    # hash, tarball sha256 and size, dependencies) is the same in the target, whatever layout
    sidecar: bytes | None = None

    @property
    def nodes(self) -> list[SpecNode]:
        """The nodes to list in the target's index (the spec and its externals)."""
        return list(self.fetched.document.nodes)


def fetch_verified_copy(
    action: SyncAction,
    *,
    pool: TransportPool,
    trust: TrustPolicy,
    workdir: Path,
) -> VerifiedCopy:
    """Everything one spec's copy needs, verified; nothing is written to the target."""
    source_url = pool.unmask(action.source, action.source_url)
    transport = pool.for_url(source_url)
    node = parse_node(action.spec)
    verify_with = trust if action.source_signed else None
    fetched: FetchedSpec
    cap: Cap | None
    if action.source_layout == OCI_LAYOUT:
        fetched_v3 = fetch_spec_oci(
            transport, source_url, node, mirror_name=action.source, trust=verify_with
        )
        fetched, tarball = fetched_v3, fetched_v3.tarball_url
        cap = signed_size_cap(fetched_v3.tarball_size)
    elif action.source_layout == 3:
        fetched_v3 = fetch_spec_v3(
            transport, source_url, node, trust=verify_with, mirror_name=action.source
        )
        fetched, tarball = fetched_v3, fetched_v3.tarball_url
        cap = signed_size_cap(fetched_v3.tarball_size)
    else:
        fetched = fetch_spec(
            transport, source_url, node, trust=verify_with, mirror_name=action.source
        )
        tarball = tarball_url(source_url, fetched.document.root)
        cap = None  # layout 2 signs no size: the checksum below decides
    expected = fetched.document.tarball_sha256
    assert expected is not None
    local = workdir / f"{action.hash}.spack"
    transport.download(tarball, local, cap=cap)
    actual = sha256_of(local)
    if actual != expected:
        raise VerificationError(
            f"tarball of {action.label} from mirror '{action.source}' does not match its "
            f"signed metadata: sha256 {actual}, expected {expected}",
            hint="the source mirror's copy is corrupt or was tampered with; nothing was copied",
            reference="checksum-mismatch",
        )
    copy = VerifiedCopy(
        action=action,
        fetched=fetched,
        tarball=local,
        sidecar=_source_sidecar(transport, source_url, action, fetched.document.root),
    )
    rewritten = action.sign_with is not None or action.layout != action.source_layout
    if rewritten or action.layout == OCI_LAYOUT:
        return copy  # written anew by the target layout's writer
    root = fetched.document.root
    if action.layout == 2:
        raw = transport.read_bytes(spec_url(source_url, root, signed=action.source_signed))
        _check_unchanged(action, raw, fetched)
        return attrs.evolve(copy, raw_metadata=raw)
    raw = transport.read_bytes(spec_manifest_url(source_url, root))
    _check_unchanged(action, raw, fetched)
    return attrs.evolve(copy, raw_metadata=raw, blobs=_fetch_blobs(transport, source_url, raw))


def _fetch_blobs(
    transport: Transport, source_url: str, raw: bytes
) -> tuple[tuple[BlobRecord, bytes | None], ...]:
    """Every blob a verbatim spec manifest names, each checked against the manifest."""
    shown = mask_credentials(source_url)
    text = unverified_text(raw) if starts_clearsigned(raw) else raw  # verified just before
    blobs: list[tuple[BlobRecord, bytes | None]] = []
    for record in parse_manifest(text, source=shown).records:
        if record.media_type == TARBALL_MEDIA_TYPE:
            blobs.append((record, None))
            continue
        data = transport.read_bytes(
            blob_url(source_url, record), cap=signed_size_cap(record.content_length)
        )
        check_blob(data, record, source=shown)
        blobs.append((record, data))
    return tuple(blobs)


def _source_sidecar(
    transport: Transport, source_url: str, action: SyncAction, root: SpecNode
) -> bytes | None:
    """The source's sidecar (an OCI registry's: the blob its sidecar tag names), unverified:
    consumers check it against the statement they rebuild, which is the same in any layout
    (the tarball's bytes are copied as they are), so a copy can add no trust, and one that is
    missing is simply not copied."""
    if action.source_layout == OCI_LAYOUT:
        url = sidecar_location(transport, source_url, root)
    elif action.source_layout == 2:
        url = sidecar_url(source_url, root)
    else:
        url = sidecar_url_v3(source_url, root)
    try:
        return transport.read_bytes(url)
    except NotFoundError:
        return None


def write_copy(copy: VerifiedCopy, *, store: MirrorStore, signer: GpgSigner | None) -> None:
    """Write one verified copy into the target mirror (through its write seam)."""
    action, document = copy.action, copy.fetched.document
    if copy.raw_metadata is not None and action.layout == 2:
        store.put_file(tarball_key(document.root), copy.tarball)
        signed = copy.fetched.signer is not None
        store.put_bytes(spec_key(document.root, signed=signed), copy.raw_metadata)
    elif copy.raw_metadata is not None:
        for record, data in copy.blobs:
            if data is None:
                store.put_file(blob_key(record), copy.tarball)
            else:
                store.put_bytes(blob_key(record), data)
        store.put_bytes(spec_manifest_key(document.root), copy.raw_metadata)
    else:
        spec_only: dict[str, Any] = {"spec": dict(document.raw)["spec"]}
        writer = write_spec_v2 if action.layout == 2 else write_spec_v3
        writer(store, spec_document=spec_only, tarball=copy.tarball, signer=signer)
    if copy.sidecar is not None:
        store.put_bytes(sidecar_key(document.root, layout=action.layout), copy.sidecar)


def _check_unchanged(action: SyncAction, raw: bytes, fetched: FetchedSpec) -> None:
    if hashlib.sha256(raw).hexdigest() != fetched.metadata_sha256:
        raise VerificationError(
            f"{action.label}: the metadata of mirror '{action.source}' changed while it "
            "was being copied",
            hint="run apply again",
        )


def write_index(
    store: MirrorStore, layout: int, nodes: list[SpecNode], *, copied: Collection[str]
) -> None:
    """Index the synced specs (``copied``: their DAG hashes) with every node of their spec
    documents. Layout 2 lists the copied specs and their externals, as Spack 0.23 does;
    layout 3 lists every node, as Spack 1.x does."""
    if layout == 2:
        write_index_v2(store, [n for n in nodes if n.hash in copied or n.is_external])
    else:
        write_index_v3(store, nodes, in_buildcache=copied)


class SyncStep:
    """Phase ``sync``: copy specs into the mirrors whose ``specs`` name them, then update
    their indexes and publish the keys their metadata is signed with."""

    def __init__(self, run: RunContext) -> None:
        self.run = run
        self.copies: list[VerifiedCopy] = []
        self.signers: dict[str, GpgSigner | None] = {}
        self.statement_signers: dict[str, list[StatementSigner]] = {}
        self.pinned: dict[str, bytes] = {}

    def prepare(self, workdir: Path) -> None:
        run, syncs = self.run, self.run.plan.syncs
        workdir.mkdir(mode=0o700)
        trust = run.settings.trust or trust_policy(run.manifest_file, read_url=run.pool.read_bytes)
        try:
            self.pinned = trust.public_keys("gpg")
            for mirror in dict.fromkeys(a.mirror for a in syncs):
                first = next(a for a in syncs if a.mirror == mirror)
                self.signers[mirror] = run.signer(
                    first.fingerprint, f"re-sign specs for mirror '{mirror}'"
                )
                self.statement_signers[mirror] = run.statement_signers(
                    first.statement_keys, f"sign specs for mirror '{mirror}'"
                )
            for action in syncs:
                self.copies.append(
                    fetch_verified_copy(action, pool=run.pool, trust=trust, workdir=workdir)
                )
                run.reporter.event(f"verified {action.label} from '{action.source}' for sync")
        finally:
            if run.settings.trust is None:
                trust.close()

    def commit(self, result: ApplyResult) -> ApplyResult:
        manifest_file = self.run.manifest_file
        copied: list[str] = []
        for mirror, signer in self.signers.items():
            copies = [c for c in self.copies if c.action.mirror == mirror]
            url = manifest_file.mirror_url(manifest_file.manifest.mirror(mirror))
            if copies and copies[0].action.layout == OCI_LAYOUT:
                copied += self._push_into_registry(mirror, url, copies)
                continue
            store = self.run.pool.store_for(url)
            nodes: list[SpecNode] = []
            for copy in copies:
                size = copy.tarball.stat().st_size  # the bytes written as the tarball
                write_copy(copy, store=store, signer=signer)
                document = copy.fetched.document
                assert document.tarball_sha256 is not None  # the tarball was checked against it
                sign_stored_package(
                    store,
                    node=document.root,
                    layout=copy.action.layout,
                    tarball_sha256=document.tarball_sha256,
                    tarball_size=size,
                    signers=self.statement_signers[mirror],
                )
                nodes += copy.nodes
                self.run.reporter.event(
                    f"synced {copy.action.label} to mirror '{mirror}' from '{copy.action.source}'"
                )
                copied.append(f"{copy.action.label} -> {mirror}")
            layout = copies[0].action.layout
            crash_point("sync-before-index")
            write_index(store, layout, nodes, copied={c.action.hash for c in copies})
            keys = [signer.public_key()] if signer is not None else list(self.pinned.values())
            for armored in keys:
                (publish_key_v2 if layout == 2 else publish_key_v3)(store, armored)
        return attrs.evolve(result, synced=tuple(copied))

    def _push_into_registry(self, mirror: str, url: str, copies: list[VerifiedCopy]) -> list[str]:
        """Every image first (blobs mounted from a source repository of the same registry
        when possible), each followed by its sidecar tag (the source's sidecar, with the
        signatures of ``sign_with``'s statement keys merged in), then the index."""
        transport = self.run.pool.for_url(url)
        assert isinstance(transport, OciTransport)
        copied, nodes = [], []
        for copy in copies:
            action, document = copy.action, copy.fetched.document
            pushed = push_package_oci(
                transport,
                spec_document={"spec": dict(document.raw)["spec"]},
                tarball=copy.tarball,
                mount_from=self._mountable(transport, action),
            )
            signers = self.statement_signers[mirror]
            if signers:
                sidecar: bytes | None = signed_sidecar(
                    copy.sidecar,
                    node=document.root,
                    tarball_sha256=pushed.tarball_sha256,
                    tarball_size=pushed.tarball_size,
                    signers=signers,
                )
            else:
                sidecar = copy.sidecar
            if sidecar is not None:
                push_sidecar_oci(transport, document.root, sidecar)
            nodes += copy.nodes
            self.run.reporter.event(
                f"synced {action.label} to mirror '{mirror}' from '{action.source}'"
            )
            copied.append(f"{action.label} -> {mirror}")
        crash_point("sync-before-index")
        update_index_oci(transport, url, nodes, in_buildcache={c.action.hash for c in copies})
        return copied

    def _mountable(self, transport: OciTransport, action: SyncAction) -> str | None:
        """The source repository, when it is on the same registry (a cross-repository
        mount then copies the tarball without sending it)."""
        if action.source_layout != OCI_LAYOUT:
            return None
        source = parse_oci_mirror(self.run.pool.unmask(action.source, action.source_url))
        same = (source.scheme, source.host) == (
            transport.repository.scheme,
            transport.repository.host,
        )
        return source.repository if same else None
