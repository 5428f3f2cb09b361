"""Reading Spack's binary cache layout v2 (``build_cache/``) through a transport."""

from __future__ import annotations

import attrs

from reconcile.spack.spec import SpecDocument, SpecNode
from reconcile.transport.base import Transport
from reconcile.trust.verify import GpgVerifier


@attrs.frozen(kw_only=True)
class IndexEntry:
    node: SpecNode
    in_buildcache: bool


@attrs.frozen(kw_only=True)
class FetchedSpec:
    document: SpecDocument
    signer: str | None  # fingerprint of the verified signer; None for an unsigned mirror
    metadata_sha256: str  # sha256 of the metadata file's bytes as fetched (plan fingerprints)
    url: str


def spec_stem(node: SpecNode) -> str:
    """``<arch>-<compiler>-<cver>-<name>-<version>-<hash>``."""
    return f"{node.arch}-{node.compiler}-{node.name}-{node.version}-{node.hash}"


def spec_url(mirror_url: str, node: SpecNode, *, signed: bool) -> str:
    raise NotImplementedError


def tarball_url(mirror_url: str, node: SpecNode) -> str:
    raise NotImplementedError


def read_index(transport: Transport, mirror_url: str) -> dict[str, IndexEntry]:
    """The mirror's ``index.json`` by DAG hash (externals included, ``in_buildcache`` false).
    Checks ``index.json.hash`` when present; ``NotFoundError`` when the mirror has no index."""
    raise NotImplementedError


def fetch_spec(
    transport: Transport, mirror_url: str, node: SpecNode, *, verifier: GpgVerifier | None
) -> FetchedSpec:
    """Fetch (always fresh) and verify a spec's metadata. With a verifier, only
    ``.spec.json.sig`` is accepted and the verified text is parsed; ``verifier=None`` means the
    mirror is declared unsigned."""
    raise NotImplementedError
