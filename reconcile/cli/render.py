"""Human output: plans read like a diff, then one summary line."""

from __future__ import annotations

from reconcile.buildcache.layouts import OCI_LAYOUT, describe_layout
from reconcile.plan.model import InstallAction, Plan
from reconcile.plan.relocation import longer_prefix_warning


def human_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def render_plan(plan: Plan, *, verbose: bool = False) -> str:
    lines = []
    for action in plan.installs:
        lines.append(
            f"+ install {action.label} (from {action.mirror}, {human_bytes(action.tarball_bytes)})"
        )
        lines.append(f"    at {action.prefix}")
        lines.append(f"    because {action.reason}")
        lines.extend(_relocation_lines(action, plan.install_root, verbose=verbose))
    for repair in plan.repairs:
        lines.append(f"~ repair {repair.label} ({_paths(repair.differing)} differ)")
        lines.append(f"    at {repair.prefix}")
        how = "re-staged from its verified tarball" if repair.restage else "fixed in place"
        lines.append(f"    because it {repair.reason}; {how}")
    for check in plan.reverifications:
        lines.append(f"~ reverify {check.label} (from {check.mirror}, signed by {check.signer})")
        lines.append(f"    at {check.prefix} (left as it is)")
        lines.append(f"    because {check.reason}")
    for removal in plan.removals:
        lines.append(f"- remove {removal.label}")
        lines.append(f"    at {removal.prefix}")
        lines.append(f"    because {removal.reason}")
    for view in plan.views:
        number = f"generation {view.current}" if view.current is not None else "nothing"
        lines.append(
            f"~ view {view.view}: a new generation of {len(view.contents.specs)} spec(s) "
            f"({view.contents.link}), replacing {number}"
        )
        lines.append(f"    at {view.path}")
        lines.append(f"    because {view.reason}")
    for publication in plan.publications:
        signed = f"signed by {publication.key}" if publication.key else "unsigned"
        lines.append(
            f"+ publish {publication.label} to {publication.mirror} "
            f"({describe_layout(publication.layout)}, {signed})"
        )
        lines.append(f"    because {publication.reason}")
    for resign in plan.resignings:
        added = [k for k in resign.keys if k != resign.key]
        if resign.key is None:
            how = f"adds {', '.join(added)}; tarball and metadata untouched"
        else:
            how = f"metadata clear-signed again by {resign.key}"
            how += f", adds {', '.join(added)}" if added else ""
            how += "; tarball untouched"
        lines.append(f"~ resign {resign.label} in {resign.mirror} ({how})")
        lines.append(f"    because {resign.reason}")
    for sync in plan.syncs:
        if sync.sign_with:
            how = f"re-signed by {sync.sign_with}"
        elif sync.layout == OCI_LAYOUT:
            how = "as an OCI image without GnuPG signature, sidecar copied"
        elif sync.source_layout == OCI_LAYOUT:
            how = "metadata unsigned, sidecar copied"
        elif not sync.source_signed:
            how = "unsigned"
        else:
            how = "signature kept"
        if sync.statement_keys:
            how += f", sidecar signed by {', '.join(sync.statement_keys)}"
        lines.append(f"+ sync {sync.label} to {sync.mirror} (from {sync.source}, {how})")
        lines.append(f"    because {sync.reason}")
    for step in plan.source_actions:
        verb = {"fetch": "+ fetch source", "record": "~ record source", "link": "~ link source"}
        lines.append(f"{verb[step.operation]} {step.label} in {step.mirror} ({step.archive})")
        if step.operation == "fetch":
            lines.append(f"    from {step.shown_url}")
        lines.append(f"    because {step.reason}")
    for mirror_change in plan.mirror_permission_changes:
        lines.append(f"~ permissions {mirror_change.label} ({mirror_change.root})")
        lines.append(f"    because {mirror_change.reason}")
        if mirror_change.examples:
            more = mirror_change.changes - len(mirror_change.examples)
            shown = ", ".join(mirror_change.examples) + (f" and {more} more" if more else "")
            lines.append(f"    for example {shown}")
    for change in plan.permission_changes:
        lines.append(f"~ permissions {change.label} at {change.prefix}")
        lines.append(f"    because {change.reason}")
    for noop in plan.noops:
        if noop.differs and not verbose:
            lines.append(f"! {noop.resource}: {noop.reason}")
        elif noop.resource.startswith("mirror:") and not verbose:
            # "!" marks a mirror that was skipped; an empty publish target is only news.
            mark = "!" if noop.reason.startswith("skipped") else " "
            lines.append(f"{mark} {noop.resource}: {noop.reason}")
    if verbose:
        for noop in plan.noops:
            lines.append(f"  {noop.resource}: {noop.reason}")
    lines.append(summary_line(plan))
    return "\n".join(lines)


def _relocation_lines(action: InstallAction, install_root: str, *, verbose: bool) -> list[str]:
    """A warning when the new prefix is longer than the one the package was built in; with
    ``verbose``, what plan knows of that prefix (never "fits" when it does not know)."""
    warning = longer_prefix_warning(action, install_root)
    if warning is not None:
        return [f"    ! warning: {warning}"]
    if not verbose:
        return []
    if action.built_prefix is None:
        return [
            "    built in a prefix known only from its tarball: apply checks that its "
            "hard-coded strings fit before committing anything"
        ]
    return [f"    built in {action.built_prefix} ({len(action.built_prefix)} characters)"]


def unknown_relocation_note(plan: Plan) -> str | None:
    """Under ``strict_relocation``: the specs plan could not check (their tarballs are not
    in a cache root), which apply checks instead."""
    unknown = [a for a in plan.installs if a.built_prefix is None]
    if not unknown:
        return None
    return (
        f"note: strict_relocation: the prefix{'es' if len(unknown) != 1 else ''} "
        f"{len(unknown)} spec{'s' if len(unknown) != 1 else ''} were built in are recorded "
        "only inside their tarballs, so plan cannot compare "
        f"{'them' if len(unknown) != 1 else 'it'} with the new ones; apply checks every "
        "hard-coded string after download and refuses before committing anything"
    )


def _paths(count: int) -> str:
    return f"{count} file{'' if count == 1 else 's'}"


def _how_checked(plan: Plan) -> str:
    if plan.checked == "contents":
        return "; contents check: every file of every prefix hashed"
    if plan.checked == "fast":
        return "; fast check of every prefix: size and mtime"
    return ""


def _what_matches(plan: Plan) -> str:
    """What "no changes" is about: the install tree only when the plan looked at one."""
    if any(noop.resource.startswith("spec:") for noop in plan.noops):
        return "the install tree matches the manifest"
    return "everything the manifest declares is in place"


def _unchanged(plan: Plan) -> str:
    """How many resources need nothing, and (for externals, which are never installed) why
    they count: the quickstart's glibc is one."""
    externals = sum(1 for noop in plan.noops if noop.reason.startswith("external at "))
    why = f", {externals} of them external" if externals else ""
    return f"{len(plan.noops)} unchanged{why}; plan -v lists them"


def _to_fetch(plan: Plan) -> str:
    """Tarball bytes are known from signed metadata; source archives' sizes are not
    asked for while planning, so they are counted, not sized."""
    fetches = sum(1 for action in plan.source_actions if action.operation == "fetch")
    sources = f" and {fetches} source archive(s)" if fetches else ""
    return f"{human_bytes(plan.bytes_to_fetch)} of tarballs{sources} to fetch"


def summary_line(plan: Plan) -> str:
    differing = len(plan.differing)
    if plan.is_empty and not differing:
        up_to_date = len(plan.noops)
        return (
            f"No changes: {_what_matches(plan)} "
            f"({up_to_date} resource{'s' if up_to_date != 1 else ''} up to date"
            f"{_how_checked(plan)})."
        )
    if plan.is_empty:
        return (
            f"Nothing to do, but {differing} resource{'s' if differing != 1 else ''} "
            f"differ{'s' if differing == 1 else ''} and {'is' if differing == 1 else 'are'} "
            f"kept as {'it is' if differing == 1 else 'they are'} (marked '!' above)"
            f"{_how_checked(plan)}."
        )
    changes = f"{len(plan.installs)} to install"
    if plan.repairs:
        changes += f", {len(plan.repairs)} to repair"
    if plan.reverifications:
        changes += f", {len(plan.reverifications)} to re-verify"
    if plan.removals:
        changes += f", {len(plan.removals)} to remove"
    if plan.permission_changes:
        changes += f", {len(plan.permission_changes)} to change"
    if plan.views:
        changes += f", {len(plan.views)} view(s) to switch"
    if plan.publications:
        changes += f", {len(plan.publications)} to publish"
    if plan.resignings:
        changes += f", {len(plan.resignings)} to sign again"
    if plan.syncs:
        changes += f", {len(plan.syncs)} to sync"
    if plan.mirror_permission_changes:
        changes += f", {len(plan.mirror_permission_changes)} mirror(s) to fix permissions of"
    if plan.source_actions:
        changes += f", {len(plan.source_actions)} source mirror change(s)"
    kept = f" ({differing} differ and are kept)" if differing else ""
    return f"Plan: {changes}, {_to_fetch(plan)}; {_unchanged(plan)}{kept}{_how_checked(plan)}."
