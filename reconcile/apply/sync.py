"""Copying specs between mirrors (mirror ``specs``): fetched fresh, verified, then written.

Layout 2 to layout 2 without ``sign_with`` copies the metadata file byte for byte, so the
original signature is kept; otherwise the verified spec is written anew by the target
layout's writer, signed with the mirror's ``sign_with`` key (or unsigned when the source is
unsigned and no key is named).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Collection
from pathlib import Path

from reconcile.atomic_write import atomic_output, atomic_write_bytes
from reconcile.buildcache.layout_v2 import FetchedSpec, fetch_spec, spec_url, tarball_url
from reconcile.buildcache.layout_v3 import blob_url, fetch_spec_v3, spec_manifest_url
from reconcile.buildcache.manifest_v3 import TARBALL_MEDIA_TYPE, check_blob, parse_manifest
from reconcile.buildcache.writer_v2 import spec_path, tarball_path, write_index_v2, write_spec_v2
from reconcile.buildcache.writer_v3 import (
    blob_path,
    ensure_layout_json,
    spec_manifest_path,
    write_index_v3,
    write_spec_v3,
)
from reconcile.errors import VerificationError
from reconcile.hashing import sha256_of
from reconcile.plan.model import SyncAction
from reconcile.redact import mask_credentials
from reconcile.spack.spec import SpecNode, parse_node
from reconcile.transport.base import Transport
from reconcile.transport.registry import TransportPool
from reconcile.trust.clearsign import starts_clearsigned, unverified_text
from reconcile.trust.policy import TrustPolicy
from reconcile.trust.sign import GpgSigner


def copy_spec(
    action: SyncAction,
    *,
    pool: TransportPool,
    trust: TrustPolicy,
    signer: GpgSigner | None,
    target_root: Path,
    workdir: Path,
) -> list[SpecNode]:
    """Copy one spec; returns the nodes to list in the target's index (it and its
    externals)."""
    source_url = pool.unmask(action.source, action.source_url)
    transport = pool.for_url(source_url)
    node = parse_node(action.spec)
    verify_with = trust if action.source_signed else None
    fetched: FetchedSpec
    if action.source_layout == 3:
        fetched_v3 = fetch_spec_v3(
            transport, source_url, node, trust=verify_with, mirror_name=action.source
        )
        fetched, tarball = fetched_v3, fetched_v3.tarball_url
    else:
        fetched = fetch_spec(
            transport, source_url, node, trust=verify_with, mirror_name=action.source
        )
        tarball = tarball_url(source_url, fetched.document.root)
    expected = fetched.document.tarball_sha256
    assert expected is not None
    local = workdir / f"{action.hash}.spack"
    transport.download(tarball, local)
    actual = sha256_of(local)
    if actual != expected:
        raise VerificationError(
            f"tarball of {action.label} from mirror '{action.source}' does not match its "
            f"signed metadata: sha256 {actual}, expected {expected}",
            hint="the source mirror's copy is corrupt or was tampered with; nothing was copied",
            reference="checksum-mismatch",
        )
    document = fetched.document
    if action.layout == 2 and action.source_layout == 2 and action.sign_with is None:
        metadata_url = spec_url(source_url, document.root, signed=action.source_signed)
        raw = transport.read_bytes(metadata_url)
        _check_unchanged(action, raw, fetched)
        target = tarball_path(target_root, document.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        _move_into_place(local, target)
        meta = spec_path(target_root, document.root, signed=fetched.signer is not None)
        meta.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(meta, raw)
    elif action.layout == 3 and action.source_layout == 3 and action.sign_with is None:
        _copy_v3_verbatim(action, transport, source_url, fetched, local, target_root)
    else:
        spec_only = {"spec": dict(document.raw)["spec"]}
        if action.layout == 2:
            write_spec_v2(target_root, spec_document=spec_only, tarball=local, signer=signer)
        else:
            write_spec_v3(target_root, spec_document=spec_only, tarball=local, signer=signer)
    return list(document.nodes)


def _copy_v3_verbatim(
    action: SyncAction,
    transport: Transport,
    source_url: str,
    fetched: FetchedSpec,
    tarball: Path,
    target_root: Path,
) -> None:
    """The spec manifest byte for byte (its signature kept) and every blob it names, each
    checked against the manifest before it is written."""
    root = fetched.document.root
    shown = mask_credentials(source_url)
    raw = transport.read_bytes(spec_manifest_url(source_url, root))
    _check_unchanged(action, raw, fetched)
    text = unverified_text(raw) if starts_clearsigned(raw) else raw  # verified just before
    manifest = parse_manifest(text, source=shown)
    for record in manifest.records:
        target = blob_path(target_root, record)
        if record.media_type == TARBALL_MEDIA_TYPE:
            target.parent.mkdir(parents=True, exist_ok=True)
            _move_into_place(tarball, target)
            continue
        data = transport.read_bytes(blob_url(source_url, record))
        check_blob(data, record, source=shown)
        atomic_write_bytes(target, data)
    atomic_write_bytes(spec_manifest_path(target_root, root), raw)
    ensure_layout_json(target_root)


def _check_unchanged(action: SyncAction, raw: bytes, fetched: FetchedSpec) -> None:
    if hashlib.sha256(raw).hexdigest() != fetched.metadata_sha256:
        raise VerificationError(
            f"{action.label}: the metadata of mirror '{action.source}' changed while it "
            "was being copied",
            hint="run apply again",
        )


def write_index(
    target_root: Path, layout: int, nodes: list[SpecNode], *, copied: Collection[str]
) -> None:
    """Index the synced specs (``copied``: their DAG hashes) with every node of their spec
    documents. Layout 2 lists the copied specs and their externals, as Spack 0.23 does;
    layout 3 lists every node, as Spack 1.x does."""
    if layout == 2:
        write_index_v2(target_root, [n for n in nodes if n.hash in copied or n.is_external])
    else:
        write_index_v3(target_root, nodes, in_buildcache=copied)


def _move_into_place(source: Path, target: Path) -> None:
    """Rename when on one filesystem, else copy to a temporary file there and rename."""
    if source.stat().st_dev == target.parent.stat().st_dev:
        source.replace(target)
        return
    with source.open("rb") as reader, atomic_output(target) as writer:
        shutil.copyfileobj(reader, writer, 1 << 20)
