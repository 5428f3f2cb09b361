"""Human output: plans read like a diff, then one summary line."""

from __future__ import annotations

from typing import Any

from reconcile.apply.executor import ApplyResult
from reconcile.plan.model import Plan


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
    for change in plan.permission_changes:
        lines.append(f"~ permissions {change.label} at {change.prefix}")
        lines.append(f"    because {change.reason}")
    for noop in plan.noops:
        if noop.resource.startswith("mirror:") and not verbose:
            lines.append(f"! {noop.resource}: {noop.reason}")
    if verbose:
        for noop in plan.noops:
            lines.append(f"  {noop.resource}: {noop.reason}")
    lines.append(summary_line(plan))
    return "\n".join(lines)


def summary_line(plan: Plan) -> str:
    if plan.is_empty:
        return (
            f"No changes: the install tree matches the manifest "
            f"({len(plan.noops)} resource{'s' if len(plan.noops) != 1 else ''} up to date)."
        )
    changes = f"{len(plan.installs)} to install"
    if plan.permission_changes:
        changes += f", {len(plan.permission_changes)} to change"
    return (
        f"Plan: {changes}, {human_bytes(plan.bytes_to_fetch)} to fetch; "
        f"{len(plan.noops)} unchanged."
    )


def render_apply_summary(result: ApplyResult) -> str:
    """Per mirror, what was downloaded and what cache roots saved; then one summary line."""
    lines = []
    mirrors = sorted(set(result.bytes_by_mirror) | set(result.cache_bytes_by_mirror))
    for mirror in mirrors:
        received = result.bytes_by_mirror.get(mirror, 0)
        cached = result.cache_bytes_by_mirror.get(mirror, 0)
        lines.append(
            f"  mirror '{mirror}': {human_bytes(received)} downloaded, "
            f"{human_bytes(cached)} served from cache roots"
        )
    cached_specs = sum(1 for s in result.sources if s.from_cache)
    changed = (
        f", {len(result.permissions_changed)} permissions changed"
        if result.permissions_changed
        else ""
    )
    from_cache = f" ({cached_specs} from cache roots)" if cached_specs else ""
    lines.append(
        f"Apply complete: {len(result.installed)} installed{from_cache}{changed}, "
        f"{human_bytes(result.bytes_fetched)} of tarballs fetched."
    )
    return "\n".join(lines)


def result_to_dict(result: ApplyResult, bytes_by_mirror: dict[str, int]) -> dict[str, Any]:
    """The JSON form of an apply's result (``apply --json``)."""
    mirrors = sorted(set(bytes_by_mirror) | set(result.cache_bytes_by_mirror))
    return {
        "installed": list(result.installed),
        "permissions_changed": list(result.permissions_changed),
        "bytes_fetched": result.bytes_fetched,
        "mirrors": {
            m: {
                "bytes_downloaded": bytes_by_mirror.get(m, 0),
                "bytes_from_cache": result.cache_bytes_by_mirror.get(m, 0),
            }
            for m in mirrors
        },
        "specs": [
            {
                "spec": s.label,
                "mirror": s.mirror,
                "from_cache": s.from_cache,
                "bytes": s.bytes,
            }
            for s in result.sources
        ],
    }
