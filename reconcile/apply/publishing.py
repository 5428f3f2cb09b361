"""Publications: installed prefixes packed into mirrors (Spack's layout 2 or 3).

Phase 1 checks every prefix installed before this run against its install record (what is
published must be what was verified) and finds the signer of each; a prefix this run installs
was verified when it was staged. At commit each prefix is checked against its record once
more, right before it is packed, so a change made in between is refused too.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from reconcile.apply.context import ApplyResult, RunContext
from reconcile.buildcache.layout_oci import OCI_LAYOUT
from reconcile.buildcache.writer_oci import update_index_oci
from reconcile.errors import ApplyError
from reconcile.plan.model import PublishAction
from reconcile.publish.prefix import changed_entries, publish_prefix, publish_prefix_oci
from reconcile.spack.spec import SpecNode
from reconcile.state.records import read_record, scan_prefix
from reconcile.transport.oci import OciTransport
from reconcile.trust.sign import GpgSigner
from reconcile.trust.signers import StatementSigner


class PublishStep:
    def __init__(self, run: RunContext) -> None:
        self.run = run
        self.root = run.manifest_file.install_root()
        self.signers: dict[str, GpgSigner | None] = {}
        self.statement_signers: dict[str, list[StatementSigner]] = {}

    def _check_unchanged(self, action: PublishAction) -> None:
        record = read_record(self.root, action.hash)
        prefix = Path(action.prefix)
        if record is None:
            raise ApplyError(
                f"cannot publish {action.label}: it has no install record",
                hint="install it with reconcile first (add it to install.specs)",
            )
        changed = changed_entries(record, scan_prefix(prefix))
        if changed:
            raise ApplyError(
                f"refusing to publish {action.label}: {prefix} changed since it was installed "
                f"({len(changed)} difference{'s' if len(changed) != 1 else ''}, e.g. "
                f"{', '.join(changed[:3])})",
                hint="reinstall it (remove the prefix and its record, then apply) and publish "
                "again",
                reference="prefix-drifted",
            )

    def prepare(self, workdir: Path) -> None:
        del workdir  # packed at commit, from the checked prefix
        installing = {action.hash for action in self.run.plan.installs}
        for action in self.run.plan.publications:
            if action.hash not in installing:
                self._check_unchanged(action)
            self.signers[action.id] = self.run.signer(
                action.fingerprint, f"sign {action.label} with"
            )
            self.statement_signers[action.id] = self.run.statement_signers(
                action.statement_keys, f"sign {action.label} with"
            )

    def commit(self, result: ApplyResult) -> ApplyResult:
        published = []
        # OCI mirrors: every image first, then each index once (the index tag moves last)
        indexes: dict[str, tuple[OciTransport, list[SpecNode], set[str]]] = {}
        for action in self.run.plan.publications:
            self._check_unchanged(action)
            url = self.run.pool.unmask(action.mirror, action.mirror_url)
            if action.layout == OCI_LAYOUT:
                transport = self.run.pool.for_url(url)
                assert isinstance(transport, OciTransport)
                nodes, pushed = publish_prefix_oci(
                    transport,
                    prefix=Path(action.prefix),
                    buildpath=action.buildpath,
                    hash_to_prefix=action.hash_to_prefix,
                    statement_signers=self.statement_signers[action.id],
                )
                _, listed, hashes = indexes.setdefault(url, (transport, [], set()))
                listed.extend(nodes)
                hashes.add(action.hash)
                self.run.reporter.event(
                    f"pushed {action.label} to mirror '{action.mirror}' as {pushed.tag}"
                )
                published.append(f"{action.label} -> {action.mirror}")
                continue
            store = self.run.pool.store_for(url)
            publish_prefix(
                store,
                prefix=Path(action.prefix),
                layout=action.layout,
                buildpath=action.buildpath,
                hash_to_prefix=action.hash_to_prefix,
                signer=self.signers[action.id],
                statement_signers=self.statement_signers[action.id],
            )
            self.run.reporter.event(f"published {action.label} to mirror '{action.mirror}'")
            published.append(f"{action.label} -> {action.mirror}")
        for url, (registry, indexed, hashes) in indexes.items():
            update_index_oci(registry, url, indexed, in_buildcache=hashes)
        return attrs.evolve(result, published=tuple(published))
