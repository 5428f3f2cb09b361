"""A source mirror that is wrong in some way: corrupt archives, a wrong checksum in the
manifest, dead URLs, links and folders that are not what Spack's layout says."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import attrs
import pytest
from nginx_harness import nginx_server
from shared_with_symlinks import LinkForm
from shared_with_symlinks import link_text as spack_link_text
from source_mirror_support import (
    GREETLIB_ARCHIVE,
    GREETLIB_LINK,
    GREETLIB_SHA256,
    HELLO_ARCHIVE,
    HELLO_LINK,
    MIRROR,
    SPACK_MIRROR,
    actions,
    apply,
    converge,
    fixture_sources,
    leftovers,
    mirror_in_form,
    plan,
    served_copy,
    sha256_of,
    summary,
)

from reconcile.apply.sources import apply_sources
from reconcile.cli.progress import PlainReporter
from reconcile.errors import ApplyError, ReconcileError, TransportError, VerificationError
from reconcile.manifest.model import Source
from reconcile.plan.model import NoOp
from reconcile.state.sources import load_state
from reconcile.transport.registry import TransportPool


def _built(tmp_path: Path) -> tuple[Path, list[Source]]:
    root = tmp_path / "mirror"
    sources = fixture_sources(SPACK_MIRROR.as_uri())
    converge(root, sources)
    return root, sources


def _corrupt_in_place(path: Path) -> bytes:
    """Flip one byte, keeping the size and the mtime (what bit rot looks like)."""
    info = path.stat()
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    return bytes(data)


def test_a_corrupt_archive_is_found_by_checking_contents_and_replaced_only_by_a_good_copy(
    tmp_path: Path,
) -> None:
    root, sources = _built(tmp_path)
    archive = root / GREETLIB_ARCHIVE
    corrupt = _corrupt_in_place(archive)

    # Size and mtime are unchanged: only a content check can tell.
    assert all(isinstance(step, NoOp) for step in plan(root, sources))
    checked = plan(root, sources, check_contents=True)
    assert summary(checked) == [
        ("fetch", "greetlib@2.1"),
        ("noop", f"source:{MIRROR}/hello-app@3.0"),
    ]
    (fetch,) = actions(checked)
    assert fetch.reason == (
        f"the mirror's copy is corrupt: sha256 {sha256_of(archive)}, expected {GREETLIB_SHA256} "
        "(it stays until a good copy has been verified)"
    )

    # A download that does not verify (here: the wrong file) leaves the bad copy in place...
    wrong_url = (SPACK_MIRROR / HELLO_ARCHIVE).as_uri()
    with pytest.raises(VerificationError):
        apply([attrs.evolve(fetch, url=wrong_url)])
    assert archive.read_bytes() == corrupt
    assert leftovers(root) == []

    # ...and one that verifies replaces it.
    apply(checked)
    assert archive.read_bytes() == (SPACK_MIRROR / GREETLIB_ARCHIVE).read_bytes()
    assert (root / GREETLIB_LINK).read_bytes() == archive.read_bytes()
    assert all(isinstance(step, NoOp) for step in plan(root, sources, check_contents=True))


def test_a_wrong_sha256_in_the_manifest_is_an_error_that_keeps_the_good_archive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = served_copy(tmp_path / "served")
    root, _ = _built(tmp_path)
    good = (root / GREETLIB_ARCHIVE).read_bytes()
    wrong = "0" * 64
    with nginx_server(served, tmp=tmp_path / "nginx", tls=True) as server:
        monkeypatch.setenv("RECONCILE_CA_BUNDLE", str(server.ca_bundle))
        base = server.url.replace("://", f"://{server.auth_user}:{server.auth_password}@") + "/auth"
        sources = fixture_sources(base, greetlib_sha256=wrong)
        steps = plan(root, sources)
        assert summary(steps) == [
            ("fetch", "greetlib@2.1"),
            ("link", "greetlib@2.1"),
            ("noop", f"source:{MIRROR}/hello-app@3.0"),
        ]
        log = io.StringIO()
        with pytest.raises(VerificationError) as caught, TransportPool() as pool:
            apply_sources(actions(steps), read=pool, reporter=PlainReporter(log))
    error = caught.value
    assert error.reference == "checksum-mismatch"
    assert "fetching source greetlib@2.1 (993 bytes)" in log.getvalue()
    assert server.auth_password not in log.getvalue()
    shown = f"https://{server.auth_user}:***@127.0.0.1:{server.port}/auth/{GREETLIB_ARCHIVE}"
    assert error.message == (
        f"the source greetlib@2.1 downloaded from {shown} has sha256 {GREETLIB_SHA256}, "
        f"expected {wrong} (from the manifest)"
    )
    assert server.auth_password not in error.diagnostics()
    assert error.hint is not None and "sha256" in error.hint
    # The good archive and the link to it are untouched; nothing was stored under the wrong sum.
    assert (root / GREETLIB_ARCHIVE).read_bytes() == good
    assert os.readlink(root / GREETLIB_LINK) == f"../{GREETLIB_ARCHIVE}"
    assert not (root / f"_source-cache/archive/00/{wrong}.tar.gz").exists()
    assert leftovers(root) == []


def test_a_dead_url_is_a_clear_error_that_leaves_the_mirror_as_it_was(tmp_path: Path) -> None:
    root = tmp_path / "mirror"
    served = served_copy(tmp_path / "served")
    with nginx_server(served, tmp=tmp_path / "nginx") as server:
        sources = [
            Source(
                name="greetlib",
                version="2.1",
                url=f"{server.url}/gone/greetlib-2.1.tar.gz",
                sha256=GREETLIB_SHA256,
                mirror=MIRROR,
            )
        ]
        with pytest.raises(TransportError) as caught:
            converge(root, sources)
    error = caught.value
    assert error.reference == "source-unavailable"
    assert error.message.startswith("cannot fetch the source greetlib@2.1 for mirror 'sources': ")
    assert f"{server.url}/gone/greetlib-2.1.tar.gz" in error.message
    assert "404" in error.message
    assert error.hint is not None and "[[source]]" in error.hint
    # No archive, and no link pointing at nothing.
    assert not (root / GREETLIB_ARCHIVE).exists()
    assert not (root / GREETLIB_LINK).is_symlink()
    assert leftovers(root) == []


def test_every_source_that_cannot_be_fetched_is_reported_and_the_others_are_applied(
    tmp_path: Path,
) -> None:
    """A download that fails concerns that source only (docs/architecture.md)."""
    root = tmp_path / "mirror"
    missing = tmp_path / "nowhere" / "greetlib-2.1.tar.gz"
    gone = tmp_path / "nowhere" / "other-1.0.tar.gz"
    sources = fixture_sources(SPACK_MIRROR.as_uri())
    sources[0] = Source(
        name="greetlib", version="2.1", url=missing.as_uri(), sha256=GREETLIB_SHA256, mirror=MIRROR
    )
    sources.append(
        Source(name="other", version="1.0", url=gone.as_uri(), sha256="1" * 64, mirror=MIRROR)
    )
    with pytest.raises(ApplyError) as caught:
        converge(root, sources)
    message = caught.value.message
    assert message.startswith("2 sources could not be put in their mirrors:\n")
    assert (
        f"cannot fetch the source greetlib@2.1 for mirror 'sources': {missing.as_uri()}" in message
    )
    assert f"cannot fetch the source other@1.0 for mirror 'sources': {gone.as_uri()}" in message
    # hello-app went in all the same, and only what verified was recorded.
    assert (root / HELLO_LINK).read_bytes() == (SPACK_MIRROR / HELLO_ARCHIVE).read_bytes()
    assert set(load_state(root)) == {HELLO_ARCHIVE}
    assert not (root / "other").exists()


def test_a_source_that_does_not_verify_stops_every_source_before_any_is_written(
    tmp_path: Path,
) -> None:
    """A checksum that does not match is a verification failure: nothing is committed."""
    root = tmp_path / "mirror"
    sources = fixture_sources(SPACK_MIRROR.as_uri())
    sources.append(
        Source(
            name="other",
            version="1.0",
            url=(SPACK_MIRROR / HELLO_ARCHIVE).as_uri(),
            sha256="1" * 64,
            mirror=MIRROR,
        )
    )
    with pytest.raises(VerificationError) as caught:
        converge(root, sources)
    assert caught.value.reference == "checksum-mismatch"
    assert "the source other@1.0 downloaded from" in caught.value.message
    written = [p for p in root.rglob("*") if not p.is_dir()] if root.exists() else []
    assert written == []


@pytest.mark.parametrize("form", ["flattened", "symlinks"])
def test_a_mirror_spack_made_is_adopted_links_and_all(tmp_path: Path, form: LinkForm) -> None:
    """A mirror Spack made, whichever form its links reached us in: flattened link entries
    (regular files) are replaced by symlinks, real ones are kept, and the archives (hashed
    once, having no record) are recorded."""
    root = mirror_in_form(tmp_path / "mirror", form)
    sources = fixture_sources(SPACK_MIRROR.as_uri())
    steps = plan(root, sources)
    flattened = form == "flattened"
    assert summary(steps) == [
        ("record", "greetlib@2.1"),
        *([("link", "greetlib@2.1")] if flattened else []),
        ("record", "hello-app@3.0"),
        *([("link", "hello-app@3.0")] if flattened else []),
    ]
    if flattened:
        assert actions(steps)[1].reason == (
            "a regular file is where the link belongs "
            f"(expected a symlink to ../{GREETLIB_ARCHIVE})"
        )
    applied = apply(steps)
    assert (applied.fetched, applied.recorded, applied.linked) == (0, 2, 2 if flattened else 0)
    assert os.readlink(root / GREETLIB_LINK) == spack_link_text(SPACK_MIRROR / GREETLIB_LINK)
    assert all(isinstance(step, NoOp) for step in plan(root, sources))


def test_a_link_to_the_wrong_place_is_repointed(tmp_path: Path) -> None:
    root, sources = _built(tmp_path)
    (root / GREETLIB_LINK).unlink()
    (root / GREETLIB_LINK).symlink_to(f"../{HELLO_ARCHIVE}")
    steps = plan(root, sources)
    assert summary(steps) == [("link", "greetlib@2.1"), ("noop", f"source:{MIRROR}/hello-app@3.0")]
    assert actions(steps)[0].reason == (
        f"link points to ../{HELLO_ARCHIVE}, expected ../{GREETLIB_ARCHIVE}"
    )
    apply(steps)
    assert sha256_of(root / GREETLIB_LINK) == GREETLIB_SHA256


def test_a_symlinked_folder_is_never_written_through(tmp_path: Path) -> None:
    root, sources = _built(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.rmtree(root / "greetlib")
    (root / "greetlib").symlink_to(outside)
    steps = plan(root, sources)
    assert summary(steps) == [("link", "greetlib@2.1"), ("noop", f"source:{MIRROR}/hello-app@3.0")]
    assert actions(steps)[0].reason.startswith(
        f"{root / 'greetlib'} is a symlink (expected a folder)"
    )
    with pytest.raises(ApplyError) as caught:
        apply(steps)
    assert caught.value.reference == "source-mirror-blocked"
    assert list(outside.iterdir()) == []


def test_an_archive_shared_by_two_sources_is_fetched_once(tmp_path: Path) -> None:
    root = tmp_path / "mirror"
    url = (SPACK_MIRROR / GREETLIB_ARCHIVE).as_uri()
    sources = [
        Source(name="greetlib", version="2.1", url=url, sha256=GREETLIB_SHA256, mirror=MIRROR),
        Source(name="greet", version="2.1", url=url, sha256=GREETLIB_SHA256, mirror=MIRROR),
    ]
    steps = plan(root, sources)
    assert summary(steps) == [
        ("fetch", "greetlib@2.1"),
        ("link", "greetlib@2.1"),
        ("link", "greet@2.1"),
    ]
    assert apply(steps).fetched == 1
    assert (root / "greet/greet-2.1.tar.gz").read_bytes() == (root / GREETLIB_LINK).read_bytes()


def test_a_folder_where_the_archive_belongs_is_reported_not_removed(tmp_path: Path) -> None:
    root = tmp_path / "mirror"
    (root / HELLO_ARCHIVE / "stray").mkdir(parents=True)
    sources = fixture_sources(SPACK_MIRROR.as_uri())
    steps = plan(root, sources)
    assert actions(steps)[2].reason == f"a folder is where the archive belongs ({HELLO_ARCHIVE})"
    with pytest.raises(ReconcileError) as caught:
        apply(steps)
    assert caught.value.reference == "source-mirror-blocked"
    assert (root / HELLO_ARCHIVE / "stray").is_dir()
    assert sha256_of(root / GREETLIB_LINK) == GREETLIB_SHA256  # the other source went in
    assert not (root / HELLO_LINK).is_symlink()
    assert leftovers(root) == []
