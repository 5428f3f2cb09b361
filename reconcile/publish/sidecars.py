"""Writing sidecar signatures for a published package: the statement over its tarball,
signed by each statement signer of the ``[[publish]]`` entry, next to its spec metadata."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from reconcile.atomic_write import atomic_write_bytes
from reconcile.buildcache.layout_v2 import BUILD_CACHE, spec_stem
from reconcile.buildcache.writer_v3 import spec_manifest_path
from reconcile.hashing import sha256_of
from reconcile.spack.spec import SpecNode
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


def sidecar_path(mirror_root: Path, node: SpecNode, *, layout: int) -> Path:
    """Where the package's sidecar goes (see ``layout_v2.sidecar_url``, ``sidecar_url_v3``)."""
    if layout == 2:
        return mirror_root / BUILD_CACHE / f"{spec_stem(node)}.spec.json{SUFFIX}"
    manifest = spec_manifest_path(mirror_root, node)
    return manifest.with_name(manifest.name + SUFFIX)


def _existing(path: Path) -> Sidecar | None:
    try:
        return parse_sidecar(path.read_bytes())
    except FileNotFoundError:
        return None
    except ValueError:
        return None  # a damaged sidecar is replaced, not merged


def sign_package(
    mirror_root: Path,
    *,
    node: SpecNode,
    layout: int,
    tarball: Path,
    signers: Sequence[StatementSigner],
) -> Path | None:
    """Sign the statement of ``node`` whose stored tarball is ``tarball`` with every signer and
    write the sidecar (keeping other keys' signatures over the same statement). None when
    there is no signer."""
    if not signers:
        return None
    statement = statement_for(
        node, tarball_sha256=sha256_of(tarball), tarball_size=tarball.stat().st_size
    )
    signatures = [
        SidecarSignature(scheme=signer.scheme, signature=signer.sign_statement(statement))
        for signer in signers
    ]
    path = sidecar_path(mirror_root, node, layout=layout)
    sidecar = render_sidecar(merged(_existing(path), statement, signatures))
    atomic_write_bytes(path, sidecar, root=mirror_root)  # no link in the mirror followed
    return path
