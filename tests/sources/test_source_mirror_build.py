"""Building a source mirror from scratch, from file:// and http:// URLs, and compared with
the one Spack made; then the runs that follow: no-ops that read nothing, unless asked to."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest
from nginx_harness import nginx_server
from shared_with_symlinks import link_text as spack_link_text
from source_mirror_support import (
    GREETLIB_ARCHIVE,
    GREETLIB_LINK,
    GREETLIB_SHA256,
    HELLO_ARCHIVE,
    HELLO_LINK,
    HELLO_SHA256,
    MIRROR,
    SPACK_MIRROR,
    HashCounter,
    apply,
    converge,
    fixture_sources,
    leftovers,
    plan,
    served_copy,
    summary,
)

from reconcile.plan.model import NoOp
from reconcile.sources import digest
from reconcile.state.sources import STATE_FILE, load_state

DAY_NS = 86_400 * 10**9


def _entries(root: Path) -> dict[str, str]:
    """Every entry below ``root`` but reconcile's own state: path -> "dir", "file" or
    "link -> target"."""
    found = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if relative.startswith("_source-cache/.reconcile-"):
            continue
        link = spack_link_text(path)
        if link is not None:
            found[relative] = f"link -> {link}"
        else:
            found[relative] = "dir" if path.is_dir() else "file"
    return found


def assert_same_layout_as_spack(root: Path) -> None:
    """Spack's fixture holds the same archives at the same paths. Its ``<name>/<name>-
    <version>.tar.gz`` entries are the relative links Spack made (real symlinks, or flattened
    into files holding the link's text, depending on how ../shared was copied); ours are
    real symlinks with that text."""
    ours = _entries(root)
    spack = _entries(SPACK_MIRROR)
    assert ours.keys() == spack.keys()
    for archive in (GREETLIB_ARCHIVE, HELLO_ARCHIVE):
        assert ours[archive] == "file"
        assert (root / archive).read_bytes() == (SPACK_MIRROR / archive).read_bytes()
    for link, archive in ((GREETLIB_LINK, GREETLIB_ARCHIVE), (HELLO_LINK, HELLO_ARCHIVE)):
        target = spack_link_text(SPACK_MIRROR / link)
        assert target is not None
        assert ours[link] == f"link -> {target}"
        assert (root / link).is_symlink()
        assert not Path(target).is_absolute()
        assert (root / link).resolve() == (root / archive).resolve()
        assert (root / link).read_bytes() == (SPACK_MIRROR / archive).read_bytes()
    # The archives are the real sources, reachable through the links.
    with tarfile.open(root / GREETLIB_LINK) as archive_file:
        assert "greetlib-2.1/greet2.c" in archive_file.getnames()


def test_a_new_mirror_from_file_urls_has_spacks_layout(tmp_path: Path) -> None:
    root = tmp_path / "mirror"
    sources = fixture_sources(SPACK_MIRROR.as_uri())
    first = plan(root, sources)
    assert summary(first) == [
        ("fetch", "greetlib@2.1"),
        ("link", "greetlib@2.1"),
        ("fetch", "hello-app@3.0"),
        ("link", "hello-app@3.0"),
    ]
    assert {step.reason for step in first} == {"not in the mirror", "link missing"}
    applied = apply(first)
    assert (applied.fetched, applied.linked, applied.bytes_fetched) == (2, 2, 727 + 993)
    assert_same_layout_as_spack(root)
    assert (root / GREETLIB_ARCHIVE).stat().st_mode & 0o777 == 0o644
    assert leftovers(root) == []
    state = load_state(root)
    assert {path: record.sha256 for path, record in state.items()} == {
        GREETLIB_ARCHIVE: GREETLIB_SHA256,
        HELLO_ARCHIVE: HELLO_SHA256,
    }


def test_a_new_mirror_from_http_urls_has_spacks_layout(tmp_path: Path) -> None:
    served = served_copy(tmp_path / "served")
    root = tmp_path / "mirror"
    with nginx_server(served, tmp=tmp_path / "nginx") as server:
        sources = fixture_sources(server.url)
        converge(root, sources)
        fetched = [e["uri"] for e in server.access_log_entries() if e["method"] == "GET"]
    assert sorted(fetched) == sorted([f"/{GREETLIB_ARCHIVE}", f"/{HELLO_ARCHIVE}"])
    assert_same_layout_as_spack(root)
    assert summary(plan(root, sources)) == [
        ("noop", f"source:{MIRROR}/greetlib@2.1"),
        ("noop", f"source:{MIRROR}/hello-app@3.0"),
    ]


def _atime_is_kept(probe: Path) -> bool:
    """Whether this filesystem updates a day-old atime on read (relatime, strictatime)."""
    probe.write_bytes(b"probe")
    info = probe.stat()
    os.utime(probe, ns=(info.st_atime_ns - 2 * DAY_NS, info.st_mtime_ns))
    before = probe.stat().st_atime_ns
    probe.read_bytes()
    return probe.stat().st_atime_ns != before


def _age_atimes(root: Path) -> dict[str, int]:
    """Set each archive's atime two days back (mtime unchanged); return them."""
    ages = {}
    for archive in (GREETLIB_ARCHIVE, HELLO_ARCHIVE):
        info = (root / archive).stat()
        os.utime(root / archive, ns=(info.st_atime_ns - 2 * DAY_NS, info.st_mtime_ns))
        ages[archive] = (root / archive).stat().st_atime_ns
    return ages


def test_the_next_runs_are_no_ops_that_read_no_archive_unless_contents_are_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "mirror"
    sources = fixture_sources(SPACK_MIRROR.as_uri())
    converge(root, sources)
    hashed = HashCounter(digest.sha256_file)
    monkeypatch.setattr(digest, "sha256_file", hashed)
    atime_kept = _atime_is_kept(tmp_path / "probe")
    aged = _age_atimes(root)

    second = plan(root, sources)
    assert all(isinstance(step, NoOp) for step in second)
    verified_at = load_state(root)[GREETLIB_ARCHIVE].verified_at
    assert second[0].reason == f"present, verified {verified_at}: size and mtime unchanged"
    assert hashed.paths == []
    if atime_kept:
        assert {a: (root / a).stat().st_atime_ns for a in aged} == aged  # not even opened

    checked = plan(root, sources, check_contents=True)
    assert [step.reason for step in checked] == ["present, sha256 checked"] * 2
    assert sorted(hashed.paths) == sorted([root / GREETLIB_ARCHIVE, root / HELLO_ARCHIVE])
    if atime_kept:
        assert all((root / a).stat().st_atime_ns > aged[a] for a in aged)
    assert apply(checked).fetched == 0


def test_a_changed_mtime_makes_the_plan_hash_then_record_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "mirror"
    sources = fixture_sources(SPACK_MIRROR.as_uri())
    converge(root, sources)
    os.utime(root / GREETLIB_ARCHIVE, ns=(0, 10**18))  # touched, same bytes
    hashed = HashCounter(digest.sha256_file)
    monkeypatch.setattr(digest, "sha256_file", hashed)
    steps = plan(root, sources)
    assert summary(steps) == [
        ("record", "greetlib@2.1"),
        ("noop", f"source:{MIRROR}/hello-app@3.0"),
    ]
    assert hashed.paths == [root / GREETLIB_ARCHIVE]
    assert apply(steps).recorded == 1
    assert load_state(root)[GREETLIB_ARCHIVE].mtime_ns == 10**18
    hashed.paths.clear()
    assert all(isinstance(step, NoOp) for step in plan(root, sources))
    assert hashed.paths == []


def test_a_state_file_that_cannot_be_read_only_costs_hashing(tmp_path: Path) -> None:
    root = tmp_path / "mirror"
    sources = fixture_sources(SPACK_MIRROR.as_uri())
    converge(root, sources)
    (root / STATE_FILE).write_text("{not json")
    steps = plan(root, sources)
    assert summary(steps) == [("record", "greetlib@2.1"), ("record", "hello-app@3.0")]
    apply(steps)
    assert set(load_state(root)) == {GREETLIB_ARCHIVE, HELLO_ARCHIVE}
