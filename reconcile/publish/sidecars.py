"""Writing sidecar signatures for a published package: the statement over its tarball,
signed by each statement signer of the ``[[publish]]`` entry, next to its spec metadata."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from reconcile.buildcache.layout_v2 import BUILD_CACHE, spec_stem
from reconcile.buildcache.writer_v3 import spec_manifest_key
from reconcile.hashing import sha256_of
from reconcile.spack.spec import SpecNode
from reconcile.transport.store import MirrorStore, as_store
from reconcile.trust.sidecar import (
    SUFFIX,
    Sidecar,
    SidecarSignature,
    merged,
    parse_sidecar,
    render_sidecar,
)
from reconcile.trust.signers import StatementSigner
from reconcile.trust.statement import statement_for


def sidecar_key(node: SpecNode, *, layout: int) -> str:
    """Where the package's sidecar goes (see ``layout_v2.sidecar_url``, ``sidecar_url_v3``)."""
    if layout == 2:
        return f"{BUILD_CACHE}/{spec_stem(node)}.spec.json{SUFFIX}"
    return spec_manifest_key(node) + SUFFIX


def sidecar_path(mirror_root: Path, node: SpecNode, *, layout: int) -> Path:
    return mirror_root.joinpath(*sidecar_key(node, layout=layout).split("/"))


def _existing(data: bytes | None) -> Sidecar | None:
    if data is None:
        return None
    try:
        return parse_sidecar(data)
    except ValueError:
        return None  # a damaged sidecar is replaced, not merged


def sign_package(
    mirror: MirrorStore | Path,
    *,
    node: SpecNode,
    layout: int,
    tarball: Path,
    signers: Sequence[StatementSigner],
) -> Path | None:
    """``sign_stored_package`` for a tarball at hand (its checksum and size read from it)."""
    return sign_stored_package(
        mirror,
        node=node,
        layout=layout,
        tarball_sha256=sha256_of(tarball),
        tarball_size=tarball.stat().st_size,
        signers=signers,
    )


def sign_stored_package(
    mirror: MirrorStore | Path,
    *,
    node: SpecNode,
    layout: int,
    tarball_sha256: str,
    tarball_size: int,
    signers: Sequence[StatementSigner],
) -> Path | None:
    """Sign the statement of ``node`` whose stored tarball has ``tarball_sha256`` and
    ``tarball_size`` with every signer and write the sidecar through the mirror's write seam
    (keeping other keys' signatures over the same statement). None when there is no signer."""
    if not signers:
        return None
    statement = statement_for(node, tarball_sha256=tarball_sha256, tarball_size=tarball_size)
    signatures = [
        SidecarSignature(
            scheme=signer.scheme,
            signature=signer.sign_statement(statement),
            # ed25519 signatures carry their key's name; a Sigstore bundle does not
            key="" if signer.scheme == "ed25519" else signer.key_name,
        )
        for signer in signers
    ]
    store = as_store(mirror)
    key = sidecar_key(node, layout=layout)
    sidecar = render_sidecar(merged(_existing(store.read_bytes(key)), statement, signatures))
    store.put_bytes(key, sidecar)  # no link in a local mirror followed
    return store.local_path(key)


def signed_sidecar(
    existing: bytes | None,
    *,
    node: SpecNode,
    tarball_sha256: str,
    tarball_size: int,
    signers: Sequence[StatementSigner],
) -> bytes:
    """The sidecar that ``sign_stored_package`` would write, for mirrors outside the write
    seam (OCI registries): ``existing`` signatures over the same statement are kept."""
    statement = statement_for(node, tarball_sha256=tarball_sha256, tarball_size=tarball_size)
    signatures = [
        SidecarSignature(
            scheme=signer.scheme,
            signature=signer.sign_statement(statement),
            key="" if signer.scheme == "ed25519" else signer.key_name,
        )
        for signer in signers
    ]
    return render_sidecar(merged(_existing(existing), statement, signatures))
