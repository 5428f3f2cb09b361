"""Facts about the signatures a mirror already carries for a spec a ``[[publish]]`` entry
published: which declared keys have signed it, where publishing puts each key's signature
(a gpg key in Spack's clear-signed metadata, an ed25519 or sigstore key in the sidecar), so
that publishing can sign again with a key added to ``[[publish]] key`` (rotation) without
publishing the spec again."""

from __future__ import annotations

from reconcile.buildcache.layout_v2 import sidecar_url, spec_url
from reconcile.buildcache.layouts import OCI_LAYOUT
from reconcile.errors import ReconcileError, TransportError, VerificationError
from reconcile.observe.facts import MirrorView
from reconcile.spack.spec import SpecNode
from reconcile.transport.registry import TransportPool
from reconcile.trust.clearsign import CLEARSIGN_HEADER
from reconcile.trust.policy import ENVELOPE_SCHEME, TrustPolicy
from reconcile.trust.sidecar import parse_sidecar


def sidecar_fact_key(mirror: str, dag_hash: str) -> str:
    """How ``Observed.sidecar_signers`` names one spec of one mirror."""
    return f"{mirror}/{dag_hash}"


def sidecar_signers(
    mirror: MirrorView, node: SpecNode, pool: TransportPool, trust: TrustPolicy
) -> frozenset[str]:
    """The identities of the declared keys that have signed the spec: the gpg key whose
    clear-signature over Spack's metadata verifies, and each key with a valid signature in
    the spec's sidecar over the statement it holds (empty when nothing verifies). Whether
    that statement matches the metadata is checked when the spec is read for an install,
    and before anything is signed again."""
    return _metadata_signer(mirror, node, pool, trust) | _statement_signers(
        mirror, node, pool, trust
    )


def _metadata_signer(
    mirror: MirrorView, node: SpecNode, pool: TransportPool, trust: TrustPolicy
) -> frozenset[str]:
    if mirror.layout == OCI_LAYOUT:
        return frozenset()  # an OCI image carries no GnuPG signature
    if not any(key.scheme == ENVELOPE_SCHEME for key in trust.load()):
        return frozenset()  # no gpg key declared: nothing could have signed it
    from reconcile.buildcache.layout_v3 import spec_manifest_url  # only [[publish]] asks

    url = (
        spec_manifest_url(mirror.url, node)
        if mirror.layout == 3
        else spec_url(mirror.url, node, signed=True)
    )
    try:
        document = pool.for_url(mirror.url).read_bytes(url, expect_prefix=CLEARSIGN_HEADER)
        _, signer = trust.envelope_signer(document, what=f"metadata of {node.short()}")
    except (TransportError, VerificationError):
        return frozenset()
    return frozenset({signer.identity})


def _statement_signers(
    mirror: MirrorView, node: SpecNode, pool: TransportPool, trust: TrustPolicy
) -> frozenset[str]:
    from reconcile.buildcache.layout_v3 import sidecar_url_v3  # only [[publish]] asks

    transport = pool.for_url(mirror.url)
    try:
        if mirror.layout == OCI_LAYOUT:  # the blob the sidecar tag names
            # imported here: a plan without a registry never loads the OCI reader
            from reconcile.buildcache.layout_oci import sidecar_location

            url = sidecar_location(transport, mirror.url, node)
        elif mirror.layout == 3:
            url = sidecar_url_v3(mirror.url, node)
        else:
            url = sidecar_url(mirror.url, node)
        sidecar = parse_sidecar(transport.read_bytes(url))
    except (ReconcileError, ValueError):  # missing, unreadable, a malformed tag
        return frozenset()
    try:
        verified = trust.verify_detached(
            sidecar.statement.encode(), sidecar.detached(), what=f"sidecar of {node.short()}"
        )
    except VerificationError:
        return frozenset()
    # a gpg signature counts where Spack checks it (the metadata), never in a sidecar
    return frozenset(s.identity for s in verified.signers if s.scheme != ENVELOPE_SCHEME)
