"""What to do to a source mirror: a pure function of the manifest's sources and the facts.

Per source, in manifest order: ``fetch`` (the archive is missing or bad), ``record`` (the
archive was hashed and is good, but its size and mtime are not recorded yet), ``link`` (the
``<name>/<name>-<version>.<ext>`` symlink is missing or wrong); or one no-op saying why
nothing is needed. An archive shared by several sources is fetched once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from reconcile.manifest.model import Source
from reconcile.plan.model import NoOp, SourceAction, SourceOperation, source_url
from reconcile.sources.layout import SourcePaths, source_paths
from reconcile.sources.observe import ArchiveFacts, LinkFacts, SourceMirrorFacts


def _archive_problem(archive: ArchiveFacts) -> str | None:
    """Why the archive must be fetched, or None when it is good."""
    if archive.kind == "missing":
        return "not in the mirror"
    if archive.kind == "other":
        return f"{archive.found} is where the archive belongs ({archive.path})"
    if archive.actual_sha256 is None or archive.actual_sha256 == archive.expected_sha256:
        return None
    return (
        f"the mirror's copy is corrupt: sha256 {archive.actual_sha256}, expected "
        f"{archive.expected_sha256} (it stays until a good copy has been verified)"
    )


def _good_archive_reason(archive: ArchiveFacts) -> str:
    if not archive.hashed and archive.record is not None:
        return f"present, verified {archive.record.verified_at}: size and mtime unchanged"
    return "present, sha256 checked"


def _link_problem(link: LinkFacts, paths: SourcePaths) -> str | None:
    if link.kind == "missing":
        return "link missing"
    if link.kind == "symlink":
        if link.target == paths.link_target:
            return None
        return f"link points to {link.target}, expected {paths.link_target}"
    return f"{link.found} is where the link belongs (expected a symlink to {paths.link_target})"


def _action(
    operation: SourceOperation,
    reason: str,
    *,
    source: Source,
    paths: SourcePaths,
    archive: ArchiveFacts,
    facts: SourceMirrorFacts,
    folder: Path | None,
) -> SourceAction:
    recording = operation == "record"
    return SourceAction(
        operation=operation,
        name=source.name,
        version=source.version,
        mirror=source.mirror,
        mirror_root=str(facts.root),
        url=source_url(source.url, folder),
        sha256=source.sha256,
        archive=paths.archive,
        link=paths.link,
        link_target=paths.link_target,
        reason=reason,
        observed_size=archive.size if recording else None,
        observed_mtime_ns=archive.mtime_ns if recording else None,
        size=source.size if operation == "fetch" else None,
    )


def _archive_step(archive: ArchiveFacts) -> tuple[SourceOperation, str] | None:
    problem = _archive_problem(archive)
    if problem is not None:
        return "fetch", problem
    if archive.hashed and not archive.unchanged:
        return (
            "record",
            "present, sha256 checked; recording its size and mtime so that later plans need "
            "not read it",
        )
    return None


def plan_sources(
    sources: Sequence[Source],
    facts: SourceMirrorFacts,
    *,
    folder: Path | None = None,
) -> list[SourceAction | NoOp]:
    """Actions that bring the mirror described by ``facts`` to hold ``sources`` (those of one
    mirror, as observed); ``folder`` anchors plain-path URLs (the manifest's folder)."""
    steps: list[SourceAction | NoOp] = []
    archive_planned_by: dict[str, str] = {}  # archive path -> label of the source that fetches
    for source in sources:
        paths = source_paths(source)
        archive = facts.archives[paths.archive]
        link_reason = _link_problem(facts.links[paths.link], paths)
        archive_step = None if paths.archive in archive_planned_by else _archive_step(archive)
        found: list[tuple[SourceOperation, str]] = []
        if archive_step is not None:
            found.append(archive_step)
        if link_reason is not None:
            found.append(("link", link_reason))
        steps.extend(
            _action(
                kind,
                reason,
                source=source,
                paths=paths,
                archive=archive,
                facts=facts,
                folder=folder,
            )
            for kind, reason in found
        )
        if archive_step is not None:
            archive_planned_by[paths.archive] = f"{source.name}@{source.version}"
        if found:
            continue
        if paths.archive in archive_planned_by:
            reason = (
                f"link in place; its archive is shared with {archive_planned_by[paths.archive]}"
            )
        else:
            reason = _good_archive_reason(archive)
        steps.append(
            NoOp(resource=f"source:{source.mirror}/{source.name}@{source.version}", reason=reason)
        )
    return steps
