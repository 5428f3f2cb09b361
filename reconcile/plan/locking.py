"""How a plan uses the lock file: the three ways, and the checks on sources.

- ``use`` (plan and apply): a selector the lock still satisfies means its locked hash; one
  it no longer satisfies is resolved anew, with a note naming it.
- ``locked`` (``--locked``, for CI): nothing is resolved anew; every selector the lock does
  not satisfy is an error naming it.
- ``write`` (``reconcile lock``): the selectors being updated (all with ``--update``, none
  without) and those the lock does not satisfy are resolved anew, the others keep their
  locked hash; the plan carries the resulting lock.

In every way a locked node's tarball must be the locked one (sha256 and size); the signed
metadata is verified as always, the lock only narrows what is accepted.
"""

from __future__ import annotations

from typing import Literal

import attrs

from reconcile.errors import StalePlanError
from reconcile.manifest.lockfile import LockedSource, LockFile
from reconcile.manifest.model import Manifest
from reconcile.plan.model import NoOp, Plan
from reconcile.redact import mask_credentials
from reconcile.reprs import fields_repr

LockMode = Literal["use", "locked", "write"]


@attrs.frozen(kw_only=True)
class LockUse:
    __repr__ = fields_repr

    lock: LockFile | None  # the lock as read; None when there is no lock file
    name: str  # how messages name the lock file
    mode: LockMode = "use"
    # write: the selectors to resolve anew even if the lock satisfies them (None: all)
    update: frozenset[str] | None = frozenset()
    pick_newest: bool = False  # write: an ambiguous selector takes its newest candidate

    def resolves_anew(self, selector: str) -> bool:
        """Whether ``reconcile lock`` was asked to resolve ``selector`` anew."""
        return self.mode == "write" and (self.update is None or selector in self.update)


def locked_sources(manifest: Manifest) -> list[LockedSource]:
    return [
        LockedSource(
            name=source.name,
            version=source.version,
            mirror=source.mirror,
            url=mask_credentials(source.url),
            sha256=source.sha256,
        )
        for source in manifest.sources
    ]


def source_findings(manifest: Manifest, use: LockUse) -> tuple[list[str], list[NoOp]]:
    """Sources the lock does not record as the manifest declares them: errors with
    ``--locked``, notes otherwise (the manifest's own sha256 still decides what is fetched)."""
    if use.mode == "write" or not manifest.sources:
        return [], []
    errors: list[str] = []
    notes: list[NoOp] = []
    for wanted in locked_sources(manifest):
        label = f"source {wanted.name}@{wanted.version} (mirror {wanted.mirror})"
        found = (
            use.lock.source(wanted.mirror, wanted.name, wanted.version)
            if use.lock is not None
            else None
        )
        if found is None:
            why = f"{use.name} does not record it"
        elif found != wanted:
            differ = [f for f in ("url", "sha256") if getattr(found, f) != getattr(wanted, f)]
            why = f"{use.name} records another {' and '.join(differ)}"
        else:
            continue
        if use.mode == "locked":
            errors.append(f"{label}: {why}")
        else:
            resource = f"lock:source:{wanted.mirror}/{wanted.name}@{wanted.version}"
            notes.append(stale_note(resource, why))
    return errors, notes


def stale_note(resource: str, why: str) -> NoOp:
    """A note that the lock no longer satisfies part of the manifest (shown with '!')."""
    return NoOp(
        resource=resource,
        reason=f"{why}; run 'reconcile lock' to record the manifest's",
        differs=True,
    )


def check_saved_against_lock(saved: Plan, use: LockUse, *, source: str) -> None:
    """``apply PLAN --locked``: every install (and re-staged repair) of the saved plan must
    be a node of the lock, with the locked tarball; ``StalePlanError`` naming each that is
    not. The re-check under the install root's lock then plans with ``--locked`` too."""
    installs = [*saved.installs, *(r.restage for r in saved.repairs if r.restage is not None)]
    problems = []
    for action in installs:
        locked = use.lock.node(action.hash) if use.lock is not None else None
        if locked is None:
            problems.append(f"{action.label}: {use.name} does not pin it")
        elif (locked.tarball_sha256, locked.tarball_size) != (
            action.tarball_sha256,
            action.tarball_bytes,
        ):
            problems.append(
                f"{action.label}: the plan fetches a tarball of {action.tarball_bytes} bytes "
                f"with sha256 {action.tarball_sha256}, {use.name} pins {locked.tarball_size} "
                f"bytes with sha256 {locked.tarball_sha256}"
            )
    if problems:
        raise StalePlanError(
            f"the saved plan {source} installs what {use.name} does not pin (--locked):\n"
            + "\n".join(f"  {p}" for p in problems),
            hint="nothing was changed; make the plan again with 'reconcile plan --locked --out "
            "PLAN', or update the lock file first",
        )
