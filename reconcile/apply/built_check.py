"""The prefix a package was built in, as the plan assumed it, checked against its tarball.

Plan compares each new prefix with the one its package was built in (a warning, or a
refusal under ``[install] strict_relocation``), and learns that one from a cache root: the
blob's record when it says, else the cached tarball itself, else a cached dependent's
``hash_to_prefix``. A record in a shared root can be written by anyone sharing it, so what
plan assumed only spares it a read; it never decides. Here, once the verified bytes are
unpacked, the real ``.spack/binary_distribution`` decides again: a strict refusal the true
prefix calls for stops the spec before anything is committed, and a warning the plan missed
is given now.
"""

from __future__ import annotations

import attrs

from reconcile.apply.events import Reporter
from reconcile.buildcache.build_info import BuildInfo
from reconcile.errors import ApplyError
from reconcile.plan.model import InstallAction
from reconcile.plan.relocation import growth, longer_prefix_warning

RELOCATION_HINT = (
    "the plan's value came from a cache root's record of the tarball (which anyone who can "
    "write the root can change) or from a dependent's tarball; apply again to plan with the "
    "true value (the record now says it), and shorten the install root (or padded_length, or "
    "the projection) to the length given, or set [install] strict_relocation = false to let "
    "apply check each package's hard-coded strings"
)


def check_built_prefix(
    action: InstallAction,
    build_info: BuildInfo,
    *,
    strict: bool,
    install_root: str,
    reporter: Reporter,
) -> None:
    """Raise ``ApplyError`` when the true built prefix makes ``action`` a strict-relocation
    refusal the plan did not make; report a longer-prefix warning the plan did not give.
    Nothing happens when the plan knew the true prefix, or knew none (apply's string check
    decides then, as plan said)."""
    planned = action.built_prefix
    if planned is None or planned == build_info.old_prefix:
        return
    true = attrs.evolve(action, built_prefix=build_info.old_prefix)
    warning = longer_prefix_warning(true, install_root)
    if warning is None or growth(action) == growth(true):
        return  # the plan's verdict and limit stand
    mismatch = (
        f"the plan took the prefix {action.label} was built in to be {len(planned)} characters "
        f"long, but its verified tarball's .spack/binary_distribution says "
        f"{build_info.old_prefix} ({len(build_info.old_prefix)} characters)"
    )
    if strict:
        raise ApplyError(
            f"{mismatch}; {warning}, which [install] strict_relocation refuses",
            hint=RELOCATION_HINT,
            reference="prefix-longer-than-built",
        )
    reporter.event(f"warning: {mismatch}; {warning}")
