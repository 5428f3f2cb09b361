"""Source-mirror actions: fetch, record and link ``[[source]]`` archives.

Phase 1 downloads every archive to fetch into a private staging folder and checks its sha256
against the manifest, and hashes again every archive to record whose size or mtime changed
since the plan. A checksum that does not match stops the whole apply before anything is
committed. A download that fails (the network, a dead URL) only fails that source: the
others, and every other kind of action, go on, and the run fails at the end.

Commit renames (or copies, then renames) each verified archive into place, so a bad archive
already there stays until a good one replaces it; links are made under a temporary name and
renamed over the old entry. Verification records are merged into the mirror's state at the
end, whatever happened to other sources.
"""

from __future__ import annotations

import datetime
import posixpath
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from reconcile.apply.events import Reporter
from reconcile.cache.partial import Downloaded, PartialPlace, download_resumable
from reconcile.errors import ApplyError, ReconcileError, TransportError, VerificationError
from reconcile.plan.model import SourceAction
from reconcile.reprs import fields_repr
from reconcile.sources import digest
from reconcile.sources.folders import make_folders
from reconcile.state.sources import PARTIAL_FOLDER, VerificationRecord, record_verified
from reconcile.transport.bounds import source_cap
from reconcile.transport.registry import TransportPool
from reconcile.transport.store import LocalMirrorStore

Clock = Callable[[], datetime.datetime]


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _timestamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@attrs.frozen(kw_only=True)
class SourcesApplied:
    __repr__ = fields_repr

    fetched: int = 0
    bytes_fetched: int = 0
    linked: int = 0
    recorded: int = 0


@attrs.define
class _Run:
    """What one apply has done so far."""

    __repr__ = fields_repr

    pool: TransportPool
    reporter: Reporter
    clock: Clock
    records: dict[str, dict[str, VerificationRecord]] = attrs.Factory(dict)  # root -> path -> …
    staged: dict[str, Path] = attrs.Factory(dict)  # archive -> its verified download
    fetched_bytes: dict[str, int] = attrs.Factory(dict)
    failed_archives: set[tuple[str, str]] = attrs.Factory(set)
    errors: list[ReconcileError] = attrs.Factory(list)
    fetched: int = 0
    bytes_fetched: int = 0
    linked: int = 0
    recorded: int = 0

    def remember(self, action: SourceAction, path: Path, sha256: str) -> None:
        info = path.stat()
        self.records.setdefault(action.mirror_root, {})[action.archive] = VerificationRecord(
            size=info.st_size,
            mtime_ns=info.st_mtime_ns,
            sha256=sha256,
            verified_at=_timestamp(self.clock()),
        )


def _fetch_error(action: SourceAction, exc: ReconcileError) -> TransportError:
    message = f"cannot fetch the source {action.label} for mirror '{action.mirror}': {exc.message}"
    if exc.reference == "transfer-too-large":  # a bound, not the network
        return TransportError(
            message,
            hint="the server's file is longer than the size that [[source]] gives: check its "
            "size and url; the mirror was left as it was"
            if action.size is not None
            else exc.hint,  # it names the limit to raise for a genuine file
            reference="transfer-too-large",
        )
    return TransportError(
        message,
        hint="check the url of that [[source]] in the manifest; the mirror was left as it was",
        reference="source-unavailable",
    )


def _checksum_error(action: SourceAction, actual: str) -> VerificationError:
    return VerificationError(
        f"the source {action.label} downloaded from {action.shown_url} has sha256 {actual}, "
        f"expected {action.sha256} (from the manifest)",
        hint="check the sha256 and url of that [[source]]; nothing in the mirror was replaced",
        reference="checksum-mismatch",
    )


def _download(action: SourceAction, dest: Path, run: _Run) -> Downloaded:
    """Fetch ``action.url`` into the private ``dest``, resuming what an interrupted run
    kept in the mirror's ``PARTIAL_FOLDER`` (``cache/partial.py``); HTTP asks for the rest
    with a range, other transports start over."""
    root = Path(action.mirror_root)
    place = (
        PartialPlace(root=root, folder=root / PARTIAL_FOLDER, tidy=True) if root.is_dir() else None
    )
    label = f"source {action.label}"
    try:
        transport = run.pool.for_url(action.url)
        total = transport.size(action.url)
        run.reporter.download_started(label, total, source=action.shown_url)
        got = download_resumable(
            transport,
            action.url,
            dest,
            sha256=action.sha256,
            expected_size=total,
            place=place,
            progress=lambda received: run.reporter.download_progress(label, received),
            restarted=lambda kept: run.reporter.event(
                f"the {kept} bytes kept from an interrupted download of {label} do not make "
                "its sha256; fetching it again from the start"
            ),
            cap=source_cap(run.pool.limits, action.size),
        )
    except ReconcileError as exc:
        raise _fetch_error(action, exc) from None
    if got.resumed_from:
        run.reporter.event(
            f"resumed the download of {label}: {got.resumed_from} bytes were kept from an "
            f"interrupted run, {got.received} fetched"
        )
    return got


def _download_verified(action: SourceAction, workdir: Path, run: _Run) -> Path:
    """Phase 1 of a fetch: the archive in a private file, its sha256 checked."""
    staged = workdir / f"{action.sha256}.part"
    got = _download(action, staged, run)
    if got.sha256 != action.sha256:
        staged.unlink(missing_ok=True)
        raise _checksum_error(action, got.sha256)
    run.staged[action.archive] = staged
    run.fetched_bytes[action.archive] = got.received
    return staged


def _store(action: SourceAction) -> LocalMirrorStore:
    """The source mirror's write seam (source mirrors are folders: they are observed on disk)."""
    return LocalMirrorStore(Path(action.mirror_root))


def _fetch(action: SourceAction, run: _Run) -> None:
    """Commit a fetch: the verified archive into place, atomically."""
    root = Path(action.mirror_root)
    make_folders(root, posixpath.dirname(action.archive))  # refuses to write through a link
    try:
        written = _store(action).put_file(action.archive, run.staged[action.archive])
    except OSError as exc:
        raise ApplyError(
            f"cannot put the source {action.label} in place at {root / action.archive}: "
            f"{exc.strerror or exc}",
            hint="move whatever is at that path out of the way, then apply again",
            reference="source-mirror-blocked",
        ) from None
    if written != action.sha256:  # the private download changed under us: never keep it
        _store(action).delete(action.archive)
        raise _checksum_error(action, written)
    # The reporter's "mirror" is where the bytes came from: here, the source's URL
    # (shown as a URL, never called a mirror).
    run.reporter.download_finished(
        f"source {action.label}", source="mirror", mirror=action.shown_url
    )
    run.remember(action, root / action.archive, action.sha256)
    run.fetched += 1
    run.bytes_fetched += run.fetched_bytes[action.archive]


def _check_recordable(action: SourceAction) -> None:
    """Phase 1 of a record: an archive hashed while planning that changed since is hashed
    again, and must still match."""
    path = Path(action.mirror_root) / action.archive
    info = path.stat()
    if (info.st_size, info.st_mtime_ns) != (action.observed_size, action.observed_mtime_ns):
        actual = digest.sha256_file(path)
        if actual != action.sha256:
            raise VerificationError(
                f"the archive of {action.label} at {path} changed since the plan was made: "
                f"sha256 {actual}, expected {action.sha256}",
                hint="run plan again: it will fetch a good copy",
                reference="stale-plan",
            )


def _record(action: SourceAction, run: _Run) -> None:
    """Commit a record (checked in phase 1)."""
    run.remember(action, Path(action.mirror_root) / action.archive, action.sha256)
    run.recorded += 1


def _link(action: SourceAction, run: _Run) -> None:
    """Point ``<name>/<name>-<version>.<ext>`` at the archive: a symlink made under a
    temporary name, then renamed over whatever was there."""
    root = Path(action.mirror_root)
    make_folders(root, posixpath.dirname(action.link))  # refuses to write through a link
    try:
        _store(action).link(action.link, action.link_target)
    except OSError as exc:
        raise ApplyError(
            f"cannot link the source {action.label} at {root / action.link}: {exc.strerror}",
            hint="move whatever is at that path out of the way, then apply again",
            reference="source-mirror-blocked",
        ) from None
    run.linked += 1


_STEPS: dict[str, Callable[[SourceAction, _Run], None]] = {
    "fetch": _fetch,
    "record": _record,
    "link": _link,
}


def _failed(action: SourceAction, run: _Run, error: ReconcileError) -> None:
    if action.operation != "link":
        run.failed_archives.add((action.mirror_root, action.archive))
    run.errors.append(error)


def _commit_one(action: SourceAction, run: _Run) -> None:
    archive = (action.mirror_root, action.archive)
    if archive in run.failed_archives:
        return  # not fetched: keep the old archive, and the old link rather than none
    try:
        _STEPS[action.operation](action, run)
    except ReconcileError as exc:
        _failed(action, run, exc)
    except OSError as exc:
        _failed(
            action,
            run,
            ApplyError(
                f"cannot {action.operation} the source {action.label} in {action.mirror_root}: "
                f"{exc.strerror or exc}",
                hint="check that the mirror is writable by the user running apply",
                reference="source-mirror-blocked",
            ),
        )


def combined_failure(errors: list[ReconcileError]) -> ReconcileError | None:
    if len(errors) <= 1:
        return errors[0] if errors else None
    return ApplyError(
        f"{len(errors)} sources could not be put in their mirrors:\n"
        + "\n".join(f"    {error.message}" for error in errors),
        hint="fix each source named above; the others were applied",
        reference="sources-failed",
    )


class SourceStep:
    """Phase ``source``. Failures that only concern one source are collected in ``errors``
    (see the module docstring); a checksum that does not match raises from ``prepare``."""

    def __init__(
        self,
        actions: Sequence[SourceAction],
        *,
        pool: TransportPool,
        reporter: Reporter,
        clock: Clock = _utc_now,
    ) -> None:
        self.actions = actions
        self.run = _Run(pool=pool, reporter=reporter, clock=clock)

    @property
    def errors(self) -> list[ReconcileError]:
        return self.run.errors

    def prepare(self, workdir: Path) -> None:
        workdir.mkdir(mode=0o700)
        for action in self.actions:
            if action.operation == "fetch" and action.archive not in self.run.staged:
                try:
                    _download_verified(action, workdir, self.run)
                except TransportError as exc:  # the network: this source only
                    _failed(action, self.run, exc)
            elif action.operation == "record":
                _check_recordable(action)

    def commit(self) -> SourcesApplied:
        run = self.run
        try:
            for action in self.actions:
                _commit_one(action, run)
        finally:
            for root, records in run.records.items():
                try:
                    record_verified(Path(root), records)
                except OSError as exc:
                    run.errors.append(
                        ApplyError(
                            f"cannot update the verification state of the source mirror at "
                            f"{root}: {exc.strerror or exc}",
                            hint="check that the mirror is writable; the next plan hashes the "
                            "archives again",
                            reference="source-mirror-blocked",
                        )
                    )
        return SourcesApplied(
            fetched=run.fetched,
            bytes_fetched=run.bytes_fetched,
            linked=run.linked,
            recorded=run.recorded,
        )


def apply_sources(
    actions: Sequence[SourceAction],
    *,
    read: TransportPool,
    reporter: Reporter,
    clock: Clock = _utc_now,
) -> SourcesApplied:
    """Prepare, then commit, ``actions`` alone (see the module docstring); raise what
    failed at the end."""
    step = SourceStep(actions, pool=read, reporter=reporter, clock=clock)
    with tempfile.TemporaryDirectory(prefix="reconcile-sources-") as staging:
        step.prepare(Path(staging) / "sources")
        done = step.commit()
    failure = combined_failure(step.errors)
    if failure is not None:
        raise failure
    return done
