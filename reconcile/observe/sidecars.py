"""Facts about the sidecar signatures a mirror already carries for a spec: which declared keys
have signed it, so that publishing can sign again with a key added to ``[[publish]] key``
(rotation) without publishing the spec again."""

from __future__ import annotations

from reconcile.buildcache.layout_v2 import sidecar_url
from reconcile.buildcache.layout_v3 import sidecar_url_v3
from reconcile.errors import TransportError, VerificationError
from reconcile.observe.facts import MirrorView
from reconcile.spack.spec import SpecNode
from reconcile.transport.registry import TransportPool
from reconcile.trust.policy import TrustPolicy
from reconcile.trust.sidecar import parse_sidecar


def sidecar_fact_key(mirror: str, dag_hash: str) -> str:
    """How ``Observed.sidecar_signers`` names one spec of one mirror."""
    return f"{mirror}/{dag_hash}"


def sidecar_signers(
    mirror: MirrorView, node: SpecNode, pool: TransportPool, trust: TrustPolicy
) -> frozenset[str]:
    """The identities of the declared keys with a valid signature in the spec's sidecar over
    the statement it holds (empty when there is no sidecar, or it is not one reconcile
    reads). Whether that statement matches the metadata is checked when the spec is read
    for an install, and before anything is signed again."""
    url = sidecar_url_v3(mirror.url, node) if mirror.layout == 3 else sidecar_url(mirror.url, node)
    try:
        sidecar = parse_sidecar(pool.for_url(mirror.url).read_bytes(url))
    except (TransportError, ValueError):
        return frozenset()
    try:
        verified = trust.verify_detached(
            sidecar.statement.encode(), sidecar.detached(), what=f"sidecar of {node.short()}"
        )
    except VerificationError:
        return frozenset()
    return frozenset(signer.identity for signer in verified.signers)
