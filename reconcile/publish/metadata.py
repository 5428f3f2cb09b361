"""Clear-signing Spack's metadata of a published package again, with another gpg key
(rotation): the same signed text, a new GnuPG signature, written where Spack reads it.

Layout 2: ``build_cache/<stem>.spec.json.sig`` (Spack 0.23's ``sign_specfile``: ``gpg
--clearsign --armor`` over the spec JSON). Layout 3: the spec manifest
``v3/manifests/spec/<name>/<name>-<version>-<hash>.spec.manifest.json`` (Spack 1.x's
``push_manifest`` clear-signs the manifest; its blobs, the index and the key manifests are
not signed). Nothing else changes: the text is byte for byte what the old signature covered,
so the tarball, the spec blob and the index stay valid. The signer's public key is published
first, so a crash never leaves metadata signed by a key the mirror does not offer.
"""

from __future__ import annotations

from reconcile.buildcache.writer_v2 import mirror_errors, publish_key_v2, spec_key
from reconcile.buildcache.writer_v3 import publish_key_v3, spec_manifest_key
from reconcile.spack.spec import SpecNode
from reconcile.transport.store import MirrorStore
from reconcile.trust.sign import GpgSigner


def metadata_key(node: SpecNode, *, layout: int) -> str:
    """The clear-signed file Spack verifies for ``node`` in ``layout``."""
    return spec_manifest_key(node) if layout == 3 else spec_key(node, signed=True)


def publish_public_key(store: MirrorStore, signer: GpgSigner, *, layout: int) -> None:
    """Offer the signer's public key where ``spack buildcache keys`` finds it."""
    if layout == 3:
        publish_key_v3(store, signer.public_key())
    else:
        publish_key_v2(store, signer.public_key())


def clearsign_metadata_again(
    store: MirrorStore, *, node: SpecNode, layout: int, signed_text: bytes, signer: GpgSigner
) -> None:
    """Replace the package's clear-signed metadata (atomically) by ``signed_text`` — the text
    a trusted key's signature was just verified over — clear-signed by ``signer``."""
    content = signer.clearsign(signed_text)
    folders = "v3/ and blobs/ must be folders" if layout == 3 else "build_cache/ must be a folder"
    with mirror_errors(store, folders=folders):
        store.put_bytes(metadata_key(node, layout=layout), content)
        if layout == 2:
            # a plain .spec.json left beside it would be an unsigned second opinion
            store.delete(spec_key(node, signed=False))
