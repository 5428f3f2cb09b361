"""Obtaining a spec's tarball: from a cache root if a verified copy is there, else from
its mirrors in order, always checked against the checksum from verified metadata.

Nothing is unpacked from a file whose sha256 differs from the signed value. A cached blob
is re-checked on every use; a bad one is evicted (and the run says so) and fetched again.

The bytes checked are the bytes unpacked, and nobody else can write them: a cache hit is
read once into this process's memory and hashed there (a blob larger than
``IN_MEMORY_BLOB`` is copied, hashed while copying, into a new private file in the run's own
work folder instead), and so is a
download once its partial file (kept for the next run if this one is interrupted,
``cache/partial.py``) is complete; only after the unpack is a download copied into a cache
root.
A co-tenant rewriting the cached blob after the check changes nothing that is installed.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from reconcile.apply.events import Reporter
from reconcile.cache.partial import PartialPlace, cache_place, download_resumable
from reconcile.cache.record import BuiltPrefixes
from reconcile.cache.store import BlobCache
from reconcile.errors import (
    MirrorUnreachableError,
    TransportError,
    VerificationError,
)
from reconcile.pause import pause_point
from reconcile.plan.model import InstallAction
from reconcile.reprs import fields_repr
from reconcile.transport.bounds import Cap
from reconcile.transport.registry import TransportPool

CHUNK = 1 << 20
# Cached blobs up to this size are read once into memory (hashed, then unpacked from there);
# with --jobs 2 that bounds what they add to the process at 32 MiB.
IN_MEMORY_BLOB = 16 << 20


@attrs.frozen(kw_only=True)
class Obtained:
    __repr__ = fields_repr

    path: Path
    mirror: str  # the mirror it came from, or would have come from when cached
    from_cache: bool
    downloaded: int  # tarball bytes that crossed the wire for it
    url: str = ""  # where it was downloaded from (masked); the cache root is chosen by it
    # The verified bytes themselves, when a cache hit was read into memory (``path`` is
    # then only a name for messages, and no file); dropped once they are unpacked.
    data: bytes | None = None

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else self.path.stat().st_size


def checksum_error(action: InstallAction, mirror: str, url: str, actual: str) -> VerificationError:
    return VerificationError(
        f"tarball of {action.label} from mirror '{mirror}' does not match its signed "
        f"metadata: sha256 {actual}, expected {action.tarball_sha256} ({url})",
        hint="the mirror's copy is corrupt or was tampered with; nothing was installed",
        reference="checksum-mismatch",
    )


def _download_verified(
    action: InstallAction,
    mirror: str,
    url: str,
    dest: Path,
    pool: TransportPool,
    reporter: Reporter,
    place: PartialPlace | None,
) -> int:
    """Download (resuming what an interrupted run kept in ``place``, ``cache/partial.py``)
    into the private ``dest`` and check the whole file; the bytes fetched."""
    real_url = pool.unmask(mirror, url)
    reporter.download_started(action.label, action.tarball_bytes, source=mirror)
    transport = pool.for_url(real_url)
    # One byte more than planned proves it is not the signed tarball: stop there. A size
    # the plan took from a cache root's copy (which turned out bad, or it would have been
    # used) says nothing about the mirror's file: ask the mirror then.
    cap = (
        Cap(transport.size(real_url), "the size the mirror gives for it")
        if action.cached
        else Cap(action.tarball_bytes, "the size the plan recorded for it")
    )
    got = download_resumable(
        transport,
        real_url,
        dest,
        sha256=action.tarball_sha256,
        expected_size=action.tarball_bytes or None,
        place=place,
        progress=lambda n: reporter.download_progress(action.label, n),
        restarted=lambda kept: reporter.event(
            f"the {kept} bytes kept from an interrupted download of {action.label} do not "
            "make its signed sha256; fetching it again from the start"
        ),
        cap=cap,
    )
    if got.resumed_from:
        reporter.event(
            f"resumed the download of {action.label}: {got.resumed_from} bytes were kept "
            f"from an interrupted run, {got.received} fetched"
        )
    if got.sha256 != action.tarball_sha256:
        dest.unlink(missing_ok=True)
        raise checksum_error(action, mirror, url, got.sha256)
    return got.received


def _from_cache(
    action: InstallAction, workdir: Path, cache: BlobCache, reporter: Reporter
) -> tuple[Path, bytes | None] | None:
    """A private, verified copy of the cached blob (a job sharing the root cannot change
    what was verified): its bytes in memory, or a private file for a large blob; None when
    there is no good copy. Bad copies met on the way are evicted, and the run says so."""
    before = cache.copies(action.tarball_sha256)
    if not before:
        return None
    dest = workdir / f"{action.hash}.spack"
    sha256, url, label = action.tarball_sha256, action.tarball_url, action.label
    data = cache.read_verified(sha256, max_bytes=IN_MEMORY_BLOB, url=url, spec=label)
    found = data is not None or cache.checkout(sha256, dest, url=url, spec=label)
    for evicted in set(before) - set(cache.copies(action.tarball_sha256)):
        reporter.event(
            f"evicted {evicted}: its sha256 does not match the signed metadata of "
            f"{action.label}" + ("" if found else "; fetching it again")
        )
    if not found:
        return None
    reporter.download_started(action.label, action.tarball_bytes, source="cache")
    reporter.download_progress(action.label, action.tarball_bytes)
    reporter.download_finished(action.label, source="cache", mirror=action.mirror)
    return dest, data


def obtain_tarball(
    action: InstallAction,
    workdir: Path,
    pool: TransportPool,
    cache: BlobCache | None,
    reporter: Reporter,
    partials: PartialPlace | None = None,
) -> Obtained:
    """A verified local copy of ``action``'s tarball (see the module docstring); an
    interrupted download is kept in the cache root the URL selects, else in ``partials``."""
    if cache is not None:
        hit = _from_cache(action, workdir, cache, reporter)
        if hit is not None:
            pause_point("after-verify", f"{action.label} from cache")
            path, data = hit
            return Obtained(
                path=path, mirror=action.mirror, from_cache=True, downloaded=0, data=data
            )
    failures: list[str] = []
    first_mismatch: VerificationError | None = None
    for mirror, url in ((action.mirror, action.tarball_url), *action.alternates):
        try:
            place = _partial_place(cache, url) or partials
            got = _fetch_from(action, mirror, url, workdir, pool, reporter, place)
        except MirrorUnreachableError as exc:
            if pool.mark_unreachable(mirror, exc):
                reporter.event(f"mirror '{mirror}' is not answering; skipping it: {exc.message}")
            failures.append(f"mirror '{mirror}': {exc.message}")
            continue
        except VerificationError as exc:  # a bad copy here; another mirror may have a good one
            first_mismatch = first_mismatch or exc
            failures.append(f"mirror '{mirror}': {exc.message}")
            reporter.event(f"rejected {action.label} from mirror '{mirror}': {exc.message}")
            continue
        except TransportError as exc:
            failures.append(f"mirror '{mirror}': {exc.message}")
            reporter.event(f"could not fetch {action.label} from mirror '{mirror}': {exc.message}")
            continue
        reporter.download_finished(action.label, source="mirror", mirror=mirror)
        pause_point("after-verify", f"{action.label} from mirror '{mirror}'")
        return got
    if first_mismatch is not None and len(failures) == 1:
        raise first_mismatch
    raise TransportError(
        f"no mirror could provide the tarball of {action.label}:\n"
        + "\n".join(f"    {f}" for f in failures),
        hint="check the mirrors' health; the next apply resumes from what is installed",
        reference="tarball-unavailable",
    )


def _fetch_from(
    action: InstallAction,
    mirror: str,
    url: str,
    workdir: Path,
    pool: TransportPool,
    reporter: Reporter,
    place: PartialPlace | None,
) -> Obtained:
    """Download into the private work folder and verify (``keep_in_cache`` copies it into a
    cache root once it is unpacked)."""
    dest = workdir / f"{action.hash}.spack"
    size = _download_verified(action, mirror, url, dest, pool, reporter, place)
    return Obtained(path=dest, mirror=mirror, from_cache=False, downloaded=size, url=url)


def _partial_place(cache: BlobCache | None, url: str) -> PartialPlace | None:
    root = cache.root_for(url) if cache is not None else None
    return cache_place(root.path) if root is not None else None


def keep_in_cache(
    action: InstallAction,
    obtained: Obtained,
    cache: BlobCache | None,
    built: BuiltPrefixes | None = None,
) -> None:
    """Copy a verified download into the cache root its URL selects (a cache hit is there
    already), its record saying where the package was built (``built``, from the unpacked
    tarball: the next plan need not read the tarball for it). Called after the unpack: what
    was unpacked never depended on the cache."""
    if cache is not None and not obtained.from_cache:
        cache.store(obtained.path, action.tarball_sha256, obtained.url, action.label, built)
