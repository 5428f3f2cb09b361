"""Publishing one installed prefix as a binary package, in Spack's layout 2 or 3."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from reconcile.buildcache.writer_oci import (
    PushedImage,
    push_package_oci,
    push_sidecar_oci,
    read_sidecar_oci,
)
from reconcile.buildcache.writer_v2 import pack_prefix, parse_checked, write_package_v2
from reconcile.buildcache.writer_v3 import write_package_v3
from reconcile.errors import ReconcileError
from reconcile.publish.sidecars import sign_stored_package, signed_sidecar
from reconcile.spack.spec import SpecNode
from reconcile.state.records import InstallRecord, RecordEntry
from reconcile.transport.oci import OciTransport
from reconcile.transport.store import MirrorStore, as_store
from reconcile.trust.sign import GpgSigner
from reconcile.trust.signers import StatementSigner


def changed_entries(record: InstallRecord, now: tuple[RecordEntry, ...]) -> list[str]:
    """Paths whose type, mode, size, content or link target differ from the record, and
    paths added or removed since (sorted)."""
    before = record.entries_by_path()
    after = {entry.path: entry for entry in now}
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


def spec_document_of(prefix: Path) -> Mapping[str, Any]:
    """The Spack spec inside the prefix (``.spack/spec.json``): what gets published."""
    path = prefix / ".spack" / "spec.json"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ReconcileError(
            f"cannot publish {prefix}: it has no .spack/spec.json",
            hint="only prefixes installed from Spack binary caches can be published",
            reference="not-a-spack-prefix",
        ) from exc
    except (OSError, ValueError) as exc:
        raise ReconcileError(
            f"cannot publish {prefix}: {path} is unreadable ({exc})",
            reference="not-a-spack-prefix",
        ) from exc
    if not isinstance(document, dict):
        raise ReconcileError(f"cannot publish {prefix}: {path} is not a JSON object")
    return document


def publish_prefix(
    mirror: MirrorStore | Path,
    *,
    prefix: Path,
    layout: int,
    buildpath: str,
    hash_to_prefix: Mapping[str, str],
    signer: GpgSigner | None,
    statement_signers: Sequence[StatementSigner] = (),
) -> None:
    """Write the package in ``layout``: Spack's metadata clear-signed by ``signer`` (GnuPG),
    then a sidecar with each statement signer's signature over its statement."""
    document = spec_document_of(prefix)
    store = as_store(mirror)
    if layout == 2:
        published = write_package_v2(
            store,
            prefix=prefix,
            spec_document=document,
            buildpath=buildpath,
            hash_to_prefix=hash_to_prefix,
            signer=signer,
        )
        checksum, size = published.tarball_sha256, published.tarball_size
    else:
        published_v3 = write_package_v3(
            store,
            prefix=prefix,
            spec_document=document,
            buildpath=buildpath,
            hash_to_prefix=hash_to_prefix,
            signer=signer,
        )
        checksum, size = published_v3.tarball_sha256, published_v3.tarball_size
    sign_stored_package(
        store,
        node=parse_checked(document).root,
        layout=layout,
        tarball_sha256=checksum,
        tarball_size=size,
        signers=statement_signers,
    )


def publish_prefix_oci(
    transport: OciTransport,
    *,
    prefix: Path,
    buildpath: str,
    hash_to_prefix: Mapping[str, str],
    statement_signers: Sequence[StatementSigner] = (),
) -> tuple[tuple[SpecNode, ...], PushedImage]:
    """Pack the prefix privately and push it as Spack's OCI image (which carries no GnuPG
    signature), then, with statement signers, its sidecar as a ``.reconcile-sig`` tag.
    Returns the spec's nodes (for the index, which the caller updates once every image is
    in) and what was pushed."""
    document = spec_document_of(prefix)
    parsed = parse_checked(document)
    root = parsed.root
    with tempfile.TemporaryDirectory(prefix="reconcile-pack-") as private:
        tarball = Path(private) / f"{root.hash}.spack"
        pack_prefix(
            prefix, tarball, own_hash=root.hash, buildpath=buildpath, hash_to_prefix=hash_to_prefix
        )
        pushed = push_package_oci(transport, spec_document=document, tarball=tarball)
    if statement_signers:
        mirror_url = transport.repository.mirror_url()
        sidecar = signed_sidecar(
            read_sidecar_oci(transport, mirror_url, root),
            node=root,
            tarball_sha256=pushed.tarball_sha256,
            tarball_size=pushed.tarball_size,
            signers=statement_signers,
        )
        push_sidecar_oci(transport, root, sidecar)
    return parsed.nodes, pushed
