"""Signing again what was published before, after a key was added to ``[[publish]] key``
or the entry's gpg key changed (rotation): the commit step after publications.

Phase 1: each spec's metadata is fetched fresh from the mirror and verified under the keys
that count now (so a new key only ever signs what a key already trusted vouches for), the
tarball's size is read, and the new keys' signers are found. When the entry's gpg key
re-signs Spack's metadata, the text it signs must carry a GnuPG signature by a key that
counts for the mirror (reconcile's statement covers the tarball and the DAG, not the whole
spec document), and it is the very bytes that were verified.

Commit, per spec: the gpg signer's public key is offered in the mirror, Spack's metadata is
clear-signed again by it (replaced atomically: the old key's signature is gone), then the
statement over the tarball is signed by each new ed25519 or sigstore key and merged into the
sidecar (other keys' signatures over the same statement kept); in an OCI registry, whose
images carry no GnuPG signature, the sidecar tag is moved to the merged sidecar. The tarball
is not touched.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from reconcile.apply.context import ApplyResult, RunContext
from reconcile.buildcache.layout_oci import OCI_LAYOUT
from reconcile.buildcache.pinned_keys import trust_policy
from reconcile.buildcache.writer_oci import push_sidecar_oci, read_sidecar_oci
from reconcile.errors import ApplyError, ReconcileError, VerificationError
from reconcile.observe.facts import MirrorView, VerifiedSpec
from reconcile.observe.mirrors import verified_from_mirror
from reconcile.pause import pause_point
from reconcile.plan.model import ResignAction
from reconcile.publish.metadata import clearsign_metadata_again, publish_public_key
from reconcile.publish.sidecars import sign_stored_package, signed_sidecar
from reconcile.reprs import fields_repr
from reconcile.spack.spec import parse_node
from reconcile.transport.oci import OciTransport
from reconcile.trust.policy import TrustPolicy
from reconcile.trust.signers import StatementSigner

if TYPE_CHECKING:
    from reconcile.trust.sign import GpgSigner


@attrs.frozen(kw_only=True)
class _Prepared:
    __repr__ = fields_repr

    verified: VerifiedSpec
    # the text a gpg key that counts signed, to clear-sign again (None: metadata untouched)
    signed_text: bytes | None
    gpg_signer: GpgSigner | None
    statement_signers: list[StatementSigner]


def _unvouched(action: ResignAction, message: str) -> VerificationError:
    """Metadata no gpg key that counts signed: the new gpg key must not sign it."""
    return VerificationError(
        f"{message}\n  {action.key} (gpg) clear-signs the whole spec document, so it needs a "
        "GnuPG signature by a key that counts (the sidecar's statement covers only the "
        "tarball and the dependency graph)",
        hint=f"declare the key that signed it beside {action.key} until every spec is signed "
        "again, or publish the spec anew (remove it from the mirror first)",
        reference="no-gnupg-signature-to-replace",
    )


class ResignStep:
    """Phase ``resign``."""

    def __init__(self, run: RunContext) -> None:
        self.run = run
        self.prepared: list[_Prepared] = []

    def _verify(self, action: ResignAction) -> tuple[VerifiedSpec, bytes | None]:
        """The spec verified under the keys that count and, when a gpg key re-signs, the
        text Spack's metadata signs, verified by a GnuPG key that counts."""
        manifest_file = self.run.manifest_file
        mirror = manifest_file.manifest.mirror(action.mirror)
        view = MirrorView(
            name=mirror.name,
            url=manifest_file.mirror_url(mirror),
            signed=True,
            index={},
            layout=action.layout,
        )
        trust = self.run.settings.trust or trust_policy(
            manifest_file, read_url=self.run.pool.read_bytes
        )
        try:
            try:
                node = parse_node(action.spec)
                verified = verified_from_mirror(node, view, self.run.pool, trust, None)
            except ReconcileError as exc:
                raise exc.add_context(
                    f"cannot sign {action.label} in mirror '{action.mirror}' again: what is "
                    "there does not verify under the keys that count, and a new key signs only "
                    "what a trusted one vouches for"
                ) from None
            if action.key is None:
                return verified, None
            pause_point("resign-verified", action.label)
            try:
                return verified, self._signed_text(action, view, verified, trust)
            except ReconcileError as exc:
                raise exc.add_context(
                    f"cannot clear-sign {action.label} in mirror '{action.mirror}' again with "
                    f"{action.key}"
                ) from None
        finally:
            if self.run.settings.trust is None:
                trust.close()

    def _signed_text(
        self, action: ResignAction, view: MirrorView, verified: VerifiedSpec, trust: TrustPolicy
    ) -> bytes:
        what = f"spec {action.label} from mirror '{action.mirror}'"
        # the very file that was verified (layout 2: a plain .spec.json when it is unsigned,
        # which envelope_signer refuses)
        document = self.run.pool.for_url(view.url).read_bytes(verified.fetched.url)
        if hashlib.sha256(document).hexdigest() != verified.fetched.metadata_sha256:
            raise VerificationError(
                f"the metadata of {action.label} changed while it was read",
                hint="run apply again once the mirror is no longer being written",
            )
        try:
            text, _ = trust.envelope_signer(document, what=what, mirror=action.mirror)
        except VerificationError as exc:
            raise _unvouched(action, exc.message) from None
        return text

    def prepare(self, workdir: Path) -> None:
        del workdir  # nothing is staged: what is signed comes from the verified metadata
        for action in self.run.plan.resignings:
            verified, signed_text = self._verify(action)
            if verified.fetched.document.tarball_sha256 is None:  # fetch_spec refuses this
                raise ApplyError(f"cannot sign {action.label} again: no tarball checksum")
            purpose = f"sign {action.label} again with"
            self.prepared.append(
                _Prepared(
                    verified=verified,
                    signed_text=signed_text,
                    gpg_signer=self.run.signer(action.fingerprint, purpose),
                    statement_signers=self.run.statement_signers(
                        tuple(k for k in action.keys if k != action.key), purpose
                    ),
                )
            )

    def commit(self, result: ApplyResult) -> ApplyResult:
        done = []
        offered: set[tuple[str, str]] = set()  # (mirror, fingerprint): public key published
        for action, prepared in zip(self.run.plan.resignings, self.prepared, strict=True):
            self.run.committed = True
            document = prepared.verified.fetched.document
            assert document.tarball_sha256 is not None  # checked in prepare
            url = self.run.pool.unmask(action.mirror, action.mirror_url)
            if action.layout == OCI_LAYOUT:
                self._sign_sidecar_tag(url, prepared)
            else:
                store = self.run.pool.store_for(url)
                signer = prepared.gpg_signer
                if signer is not None and prepared.signed_text is not None:
                    if (action.mirror, signer.fingerprint) not in offered:
                        publish_public_key(store, signer, layout=action.layout)
                        offered.add((action.mirror, signer.fingerprint))
                    clearsign_metadata_again(
                        store,
                        node=document.root,
                        layout=action.layout,
                        signed_text=prepared.signed_text,
                        signer=signer,
                    )
                sign_stored_package(
                    store,
                    node=document.root,
                    layout=action.layout,
                    tarball_sha256=document.tarball_sha256,
                    tarball_size=prepared.verified.tarball_bytes,
                    signers=prepared.statement_signers,
                )
            self.run.reporter.event(
                f"signed {action.label} in mirror '{action.mirror}' again with "
                f"{', '.join(action.keys)}"
            )
            done.append(f"{action.label} -> {action.mirror}")
        return attrs.evolve(result, resigned=tuple(done))

    def _sign_sidecar_tag(self, url: str, prepared: _Prepared) -> None:
        """An OCI registry: the sidecar tag is read, the new signatures merged in (those of
        other keys over the same statement kept), and the tag moved to the new sidecar."""
        transport = self.run.pool.for_url(url)
        assert isinstance(transport, OciTransport)
        document = prepared.verified.fetched.document
        assert document.tarball_sha256 is not None  # checked in prepare
        sidecar = signed_sidecar(
            read_sidecar_oci(transport, transport.repository.mirror_url(), document.root),
            node=document.root,
            tarball_sha256=document.tarball_sha256,
            tarball_size=prepared.verified.tarball_bytes,
            signers=prepared.statement_signers,
        )
        push_sidecar_oci(transport, document.root, sidecar)
