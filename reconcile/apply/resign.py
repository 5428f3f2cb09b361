"""Signing again what was published before, after a key was added to ``[[publish]] key``
(rotation): the commit step after publications.

Phase 1: each spec's metadata is fetched fresh from the mirror and verified under the keys
that count now (so a new key only ever signs what a key already trusted vouches for), the
tarball's size is read, and the new keys' signers are found. Commit: the statement over that
tarball is signed by each new key and merged into the spec's sidecar (signatures of other
keys over the same statement kept). Tarballs and Spack's metadata are not touched.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from reconcile.apply.context import ApplyResult, RunContext
from reconcile.buildcache.pinned_keys import trust_policy
from reconcile.errors import ApplyError, ReconcileError
from reconcile.observe.facts import MirrorView, VerifiedSpec
from reconcile.observe.mirrors import verified_from_mirror
from reconcile.plan.model import ResignAction
from reconcile.publish.sidecars import sign_stored_package
from reconcile.spack.spec import parse_node
from reconcile.trust.signers import StatementSigner


class ResignStep:
    """Phase ``resign``."""

    def __init__(self, run: RunContext) -> None:
        self.run = run
        self.verified: list[VerifiedSpec] = []
        self.signers: list[list[StatementSigner]] = []

    def _verify(self, action: ResignAction) -> VerifiedSpec:
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
            return verified_from_mirror(parse_node(action.spec), view, self.run.pool, trust, None)
        except ReconcileError as exc:
            raise exc.add_context(
                f"cannot sign {action.label} in mirror '{action.mirror}' again: what is there "
                "does not verify under the keys that count, and a new key signs only what a "
                "trusted one vouches for"
            ) from None
        finally:
            if self.run.settings.trust is None:
                trust.close()

    def prepare(self, workdir: Path) -> None:
        del workdir  # nothing is staged: the statement is made from the verified metadata
        for action in self.run.plan.resignings:
            verified = self._verify(action)
            if verified.fetched.document.tarball_sha256 is None:  # fetch_spec refuses this
                raise ApplyError(f"cannot sign {action.label} again: no tarball checksum")
            self.verified.append(verified)
            self.signers.append(
                self.run.statement_signers(action.keys, f"sign {action.label} again with")
            )

    def commit(self, result: ApplyResult) -> ApplyResult:
        done = []
        for action, verified, signers in zip(
            self.run.plan.resignings, self.verified, self.signers, strict=True
        ):
            self.run.committed = True
            document = verified.fetched.document
            assert document.tarball_sha256 is not None  # checked in prepare
            store = self.run.pool.store_for(self.run.pool.unmask(action.mirror, action.mirror_url))
            sign_stored_package(
                store,
                node=document.root,
                layout=action.layout,
                tarball_sha256=document.tarball_sha256,
                tarball_size=verified.tarball_bytes,
                signers=signers,
            )
            self.run.reporter.event(
                f"signed {action.label} in mirror '{action.mirror}' again with "
                f"{', '.join(action.keys)}"
            )
            done.append(f"{action.label} -> {action.mirror}")
        return attrs.evolve(result, resigned=tuple(done))
