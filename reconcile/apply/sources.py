"""Carry out source-mirror actions: the only part of the pipeline that writes.

A fetch downloads into a temporary file beside the archive's final place, checks its sha256,
and only then renames it into place: a bad archive already there stays until a good one has
been verified, and a download that fails or does not match leaves the mirror as it was. Links
are made under a temporary name and renamed over the old entry. Verification records are
merged into the mirror's state at the end, whatever happened to other sources.

Sources are independent: one that fails does not stop the others. Every failure is reported
at the end (one error as itself, several in one ``ApplyError``).
"""

from __future__ import annotations

import datetime
import os
import posixpath
import secrets
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from reconcile.apply.events import Reporter
from reconcile.atomic_write import MIRROR_FILE_MODE
from reconcile.errors import ApplyError, ReconcileError, TransportError, VerificationError
from reconcile.plan.model import SourceAction
from reconcile.sources import digest
from reconcile.sources.folders import make_folders
from reconcile.state.sources import VerificationRecord, record_verified
from reconcile.transport.registry import TransportPool

Clock = Callable[[], datetime.datetime]


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _timestamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@attrs.frozen(kw_only=True)
class SourcesApplied:
    fetched: int = 0
    bytes_fetched: int = 0
    linked: int = 0
    recorded: int = 0


@attrs.define
class _Run:
    """What one apply has done so far."""

    pool: TransportPool
    reporter: Reporter
    clock: Clock
    records: dict[str, dict[str, VerificationRecord]] = attrs.Factory(dict)  # root -> path -> …
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
    return TransportError(
        f"cannot fetch the source {action.label} for mirror '{action.mirror}': {exc.message}",
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


def _download(action: SourceAction, dest: Path, run: _Run) -> int:
    """Fetch ``action.url`` into ``dest``. The transports resume a cut transfer within one
    call (HTTP ranges); a ``file://`` copy simply starts over."""
    try:
        transport = run.pool.for_url(action.url)
        total = transport.size(action.url)
        run.reporter.download_started(f"source {action.label}", total, source=action.shown_url)
        return transport.download(
            action.url,
            dest,
            progress=lambda received: run.reporter.download_progress(
                f"source {action.label}", received
            ),
        )
    except ReconcileError as exc:
        raise _fetch_error(action, exc) from None


def _fetch(action: SourceAction, run: _Run) -> None:
    root = Path(action.mirror_root)
    target = root / action.archive
    folder = make_folders(root, posixpath.dirname(action.archive))
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
    os.close(fd)
    temp = Path(name)
    try:
        size = _download(action, temp, run)
        actual = digest.sha256_file(temp)
        if actual != action.sha256:
            raise _checksum_error(action, actual)
        with temp.open("rb") as stream:
            os.fsync(stream.fileno())
        temp.chmod(MIRROR_FILE_MODE)
        try:
            temp.replace(target)
        except OSError as exc:
            raise ApplyError(
                f"cannot put the source {action.label} in place at {target}: {exc.strerror}",
                hint="move whatever is at that path out of the way, then apply again",
                reference="source-mirror-blocked",
            ) from None
    finally:
        temp.unlink(missing_ok=True)
    # The reporter's "mirror" is where the bytes came from: here, the source's URL.
    run.reporter.download_finished(
        f"source {action.label}", source="mirror", mirror=action.shown_url
    )
    run.remember(action, target, actual)
    run.fetched += 1
    run.bytes_fetched += size


def _record(action: SourceAction, run: _Run) -> None:
    """Record an archive hashed while planning; if it changed since, hash it again first."""
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
    run.remember(action, path, action.sha256)
    run.recorded += 1


def _link(action: SourceAction, run: _Run) -> None:
    """Point ``<name>/<name>-<version>.<ext>`` at the archive: a symlink made under a
    temporary name, then renamed over whatever was there."""
    root = Path(action.mirror_root)
    folder = make_folders(root, posixpath.dirname(action.link))
    target = root / action.link
    while True:
        temp = folder / f".{target.name}.{secrets.token_hex(4)}.tmp"
        try:
            temp.symlink_to(action.link_target)
            break
        except FileExistsError:
            continue
    try:
        temp.replace(target)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise ApplyError(
            f"cannot link the source {action.label} at {target}: {exc.strerror}",
            hint="move whatever is at that path out of the way, then apply again",
            reference="source-mirror-blocked",
        ) from None
    run.linked += 1


_STEPS: dict[str, Callable[[SourceAction, _Run], None]] = {
    "fetch": _fetch,
    "record": _record,
    "link": _link,
}


def _run_one(action: SourceAction, run: _Run) -> None:
    archive = (action.mirror_root, action.archive)
    if action.operation == "link" and archive in run.failed_archives:
        return  # the archive is not there: keep the old link rather than point at nothing
    try:
        _STEPS[action.operation](action, run)
    except ReconcileError as exc:
        if action.operation != "link":
            run.failed_archives.add(archive)
        run.errors.append(exc)
    except OSError as exc:
        if action.operation != "link":
            run.failed_archives.add(archive)
        run.errors.append(
            ApplyError(
                f"cannot {action.operation} the source {action.label} in {action.mirror_root}: "
                f"{exc.strerror or exc}",
                hint="check that the mirror is writable by the user running apply",
                reference="source-mirror-blocked",
            )
        )


def _raise_failures(errors: list[ReconcileError]) -> None:
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ApplyError(
            f"{len(errors)} sources could not be put in their mirrors:\n"
            + "\n".join(f"    {error.message}" for error in errors),
            hint="fix each source named above; the others were applied",
            reference="sources-failed",
        )


def apply_sources(
    actions: Sequence[SourceAction],
    *,
    read: TransportPool,
    reporter: Reporter,
    clock: Clock = _utc_now,
) -> SourcesApplied:
    """Run ``actions`` in order (see the module docstring)."""
    run = _Run(pool=read, reporter=reporter, clock=clock)
    try:
        for action in actions:
            _run_one(action, run)
    finally:
        for root, records in run.records.items():
            try:
                record_verified(Path(root), records)
            except OSError as exc:
                run.errors.append(
                    ApplyError(
                        f"cannot update the verification state of the source mirror at {root}: "
                        f"{exc.strerror or exc}",
                        hint="check that the mirror is writable; the next plan hashes the "
                        "archives again",
                        reference="source-mirror-blocked",
                    )
                )
    _raise_failures(run.errors)
    return SourcesApplied(
        fetched=run.fetched,
        bytes_fetched=run.bytes_fetched,
        linked=run.linked,
        recorded=run.recorded,
    )
