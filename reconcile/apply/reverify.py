"""Re-verification of installs whose recorded signer no longer counts (a revoked or removed
key): the commit step after permission changes.

Phase 1: each install still has the record it was planned from (same prefix, tarball and
signer), and its signed metadata is fetched fresh from the planned mirror and verified under
the manifest's keys as they are now; it must name the recorded tarball. Commit: the record,
read again, is rewritten to name the new signer and when it was verified. The prefix itself
is never touched: its files are the tarball's, which a key that counts vouches for again.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from reconcile.apply.context import ApplyResult, RunContext
from reconcile.buildcache.pinned_keys import trust_policy
from reconcile.errors import ApplyError, ReconcileError
from reconcile.observe.facts import MirrorView
from reconcile.observe.mirrors import verified_from_mirror
from reconcile.plan.model import ReverifyAction
from reconcile.spack.spec import parse_node
from reconcile.state.records import InstallRecord, read_record, utc_timestamp, write_record


class ReverifyStep:
    """Phase ``reverify``."""

    def __init__(self, run: RunContext) -> None:
        self.run = run
        self.root = run.manifest_file.install_root()
        self.signers: list[tuple[str, str | None]] = []  # signer, log time

    def _record(self, action: ReverifyAction) -> InstallRecord:
        record = read_record(self.root, action.hash)
        same = (
            record is not None
            and record.prefix == action.prefix
            and record.tarball_sha256 == action.tarball_sha256
            and record.signer == action.old_signer
        )
        if record is None or not same:
            raise ApplyError(
                f"cannot re-verify {action.label}: its install record is gone or changed since "
                "the plan",
                hint="run plan again",
            )
        return record

    def prepare(self, workdir: Path) -> None:
        del workdir  # nothing is staged: only signed metadata is read
        manifest_file = self.run.manifest_file
        trust = self.run.settings.trust or trust_policy(
            manifest_file, read_url=self.run.pool.read_bytes
        )
        try:
            for action in self.run.plan.reverifications:
                record = self._record(action)
                mirror = manifest_file.manifest.mirror(action.mirror)
                view = MirrorView(
                    name=mirror.name,
                    url=manifest_file.mirror_url(mirror),
                    signed=True,
                    index={},
                    layout=action.layout,
                )
                try:
                    verified = verified_from_mirror(
                        parse_node(record.spec), view, self.run.pool, trust, None
                    )
                except ReconcileError as exc:
                    raise exc.add_context(f"cannot re-verify {action.label}") from None
                fetched = verified.fetched
                if fetched.document.tarball_sha256 != record.tarball_sha256 or not fetched.signer:
                    raise ApplyError(
                        f"cannot re-verify {action.label}: mirror '{action.mirror}' now signs "
                        f"another tarball ({fetched.document.tarball_sha256}) than the one "
                        f"installed ({record.tarball_sha256})",
                        hint="run plan again: the install is then planned as a reinstall",
                    )
                self.signers.append((fetched.signer, fetched.logged_at))
        finally:
            if self.run.settings.trust is None:
                trust.close()

    def commit(self, result: ApplyResult) -> ApplyResult:
        done = []
        for action, (signer, logged_at) in zip(
            self.run.plan.reverifications, self.signers, strict=True
        ):
            self.run.committed = True
            # read again: an earlier step of this run (permissions) may have rewritten it
            record = self._record(action)
            write_record(
                self.root,
                attrs.evolve(
                    record, signer=signer, verified_at=utc_timestamp(), logged_at=logged_at
                ),
            )
            self.run.reporter.event(
                f"re-verified {action.label} from mirror '{action.mirror}': signed by {signer} "
                f"(was {action.old_signer})"
            )
            done.append(action.label)
        return attrs.evolve(result, reverified=tuple(done))
