"""What every commit step of one apply shares: the plan, the pool, the settings, the result
so far, and the failures that wait for the end of the run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import attrs

from reconcile.apply.events import Reporter
from reconcile.buildcache.pinned_keys import ed25519_trusted_key
from reconcile.errors import ApplyError, ReconcileError
from reconcile.manifest.model import ManifestFile
from reconcile.plan.model import Plan
from reconcile.reprs import fields_repr
from reconcile.transport.registry import TransportPool
from reconcile.trust.policy import TrustPolicy
from reconcile.trust.signers import StatementSigner

if TYPE_CHECKING:  # the signer is imported by a run that publishes, not by every apply
    from reconcile.cache.store import BlobCache
    from reconcile.trust.sign import GpgSigner

# Gives the signer for a key fingerprint (from the signing keystore) when publishing.
SignerFor = Callable[[str], "GpgSigner"]
# Gives the statement signer for a [[key]] name and its declared public key (ed25519).
StatementSignerFor = Callable[[str, str], StatementSigner]


@attrs.frozen(kw_only=True)
class ApplySettings:
    __repr__ = fields_repr

    jobs: int = 1
    cache: BlobCache | None = None
    signer_for: SignerFor | None = None
    statement_signer_for: StatementSignerFor | None = None
    trust: TrustPolicy | None = None  # the run's trust policy; None: one made for the syncs
    lock_timeout: float = 0.0  # seconds to wait for another run's install root lock
    # a saved (or confirmed) plan is checked again, holding the lock, by this: it returns the
    # plan to run (its actions that are not done yet) or raises StalePlanError
    recheck: Callable[[Plan], Plan] | None = None


@attrs.frozen(kw_only=True)
class SpecSource:
    """Where one installed spec's tarball came from."""

    __repr__ = fields_repr

    label: str
    mirror: str  # the mirror it was (or would have been) downloaded from
    from_cache: bool
    bytes: int


@attrs.frozen(kw_only=True)
class ApplyResult:
    __repr__ = fields_repr

    installed: tuple[str, ...]  # labels, in commit order
    bytes_fetched: int  # bytes downloaded: tarballs from mirrors, and source archives
    repaired: tuple[str, ...] = ()  # labels of drifted prefixes brought back to their records
    skipped: tuple[str, ...] = ()  # labels of a saved plan's actions found done already
    permissions_changed: tuple[str, ...] = ()
    # labels of installs whose records now name a signer that counts (the old one did not)
    reverified: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()  # labels of prefixes removed (install.prune)
    published: tuple[str, ...] = ()  # "label -> mirror"
    # "label -> mirror": published before, signed again by keys added to [[publish]] key
    resigned: tuple[str, ...] = ()
    mirrors_fixed: tuple[str, ...] = ()  # mirrors whose permissions were enforced
    synced: tuple[str, ...] = ()  # "label -> mirror"
    views: tuple[str, ...] = ()  # "view 'name' switched to generation N"
    sources_fetched: int = 0  # source archives downloaded into source mirrors
    sources_linked: int = 0
    sources_recorded: int = 0  # archives already there, hashed and recorded as verified
    source_bytes_fetched: int = 0  # of the bytes_fetched, those of source archives
    sources: tuple[SpecSource, ...] = ()
    # bytes received from each mirror by the pool (metadata included: plan and apply), and
    # tarball bytes each mirror did not have to send because a cache root had them
    bytes_by_mirror: dict[str, int] = attrs.field(factory=dict)
    cache_bytes_by_mirror: dict[str, int] = attrs.field(factory=dict)


@attrs.define(kw_only=True)
class RunContext:
    __repr__ = fields_repr

    plan: Plan
    manifest_file: ManifestFile
    pool: TransportPool
    reporter: Reporter
    settings: ApplySettings
    # set by the first change a commit step makes: until then a failure leaves nothing
    committed: bool = False
    # failures that fail the run but not the steps after them (a source that could not be
    # downloaded); raised once every step has committed
    deferred: list[ReconcileError] = attrs.Factory(list)
    # prefixes that an interrupted repair left missing and that this run's recovery put
    # back (finished) before committing: the plan's reinstall of them is not needed
    recovered: frozenset[str] = frozenset()
    # sigstore statement signers by [[key]] name: one certificate serves the whole run
    sigstore_signers: dict[str, StatementSigner] = attrs.Factory(dict)

    def signer(self, fingerprint: str | None, purpose: str) -> GpgSigner | None:
        """The signer for ``fingerprint`` (None signs nothing): looked up before any commit."""
        if fingerprint is None:
            return None
        if self.settings.signer_for is None:
            raise ApplyError(f"no signing keystore to {purpose}")
        return self.settings.signer_for(fingerprint)

    def statement_signers(self, names: tuple[str, ...], purpose: str) -> list[StatementSigner]:
        """The signers of the ed25519 and sigstore [[key]] entries ``names``, each checked to
        hold the secret of the public key the manifest declares (sigstore: an identity token
        of the environment): looked up before any commit."""
        if not names:
            return []
        if self.settings.statement_signer_for is None:
            raise ApplyError(f"no ed25519 keystore to {purpose}")
        keys = {key.name: key for key in self.manifest_file.manifest.keys}
        signers: list[StatementSigner] = []
        for name in names:
            key = keys[name]
            if key.kind == "sigstore":
                if name not in self.sigstore_signers:
                    from reconcile.buildcache.sigstore_keys import sigstore_statement_signer

                    self.sigstore_signers[name] = sigstore_statement_signer(self.manifest_file, key)
                signers.append(self.sigstore_signers[name])
                continue
            material = ed25519_trusted_key(self.manifest_file, key).material.decode()
            signers.append(self.settings.statement_signer_for(name, material))
        return signers


class CommitStep(Protocol):
    """One phase of ``COMMIT_ORDER``: ``prepare`` fetches and verifies everything its actions
    need (phase 1, before anything is committed); ``commit`` makes the changes."""

    def prepare(self, workdir: Path) -> None: ...

    def commit(self, result: ApplyResult) -> ApplyResult: ...
