"""A co-tenant who can write the shared cache root rewrites a cached tarball right after
reconcile checked it: what is installed is still the verified tarball (issue 14, item 1).

A real apply is held at its ``after-verify`` pause point while the test rewrites the cache
root's copy of greetlib's tarball in place (same inode, as a job running as the same user,
or an apply running as root, could). Before the fix the blob was hard-linked into staging,
so the rewrite reached the file being unpacked and hello-app printed the tampered message.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
from pathlib import Path

from conftest import FIXTURE_FPR, FIXTURE_KEY, SIGNED_CACHE
from paused import paused_at
from support import run_subprocess
from test_fixture_install import check_hello_works

GREETLIB_SHA = "7411478146e45bbac005244078efa2c619aa390dd5589d745c14b3e9e7c15426"
TAMPERED_MESSAGE = b"greetlib 2.1 was replaced by a co-tenant.\n"


def _greetlib_tarball() -> Path:
    (path,) = SIGNED_CACHE.glob("build_cache/*/*/greetlib-*/*.spack")
    return path


def _tampered_greetlib() -> bytes:
    """greetlib's tarball with another message.txt: a valid archive, wrong checksum."""
    out = io.BytesIO()
    with (
        tarfile.open(_greetlib_tarball()) as source,
        tarfile.open(fileobj=out, mode="w:gz", format=source.format) as target,
    ):
        for member in source.getmembers():
            data = source.extractfile(member) if member.isfile() else None
            if member.name.endswith("share/greetlib/message.txt"):
                member.size = len(TAMPERED_MESSAGE)
                data = io.BytesIO(TAMPERED_MESSAGE)
            target.addfile(member, data)
    return out.getvalue()


def _manifest(folder: Path) -> Path:
    path = folder / "reconcile.toml"
    path.write_text(
        f"""version = 1

[install]
root = "opt"
specs = ["hello-app"]

[[mirror]]
name = "team"
url = "{SIGNED_CACHE}"

[[key]]
name = "team-gpg"
kind = "gpg"
fingerprint = "{FIXTURE_FPR}"
file = "{FIXTURE_KEY}"

[[cache]]
root = "shared-cache"
"""
    )
    return path


def _blob(folder: Path) -> Path:
    return folder / "shared-cache/blobs/sha256" / GREETLIB_SHA[:2] / GREETLIB_SHA


def _rewrite_in_place(path: Path, data: bytes) -> None:
    """What a co-tenant with write access does: same file, new bytes (no rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("r+b" if path.exists() else "wb") as stream:
        stream.truncate(0)
        stream.write(data)


def _message_installed(folder: Path) -> bytes:
    (message,) = (folder / "opt").glob("*/share/greetlib/message.txt")
    return message.read_bytes()


def _converged(manifest: Path) -> None:
    plan = run_subprocess(manifest, "plan", "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr


def test_a_cached_blob_rewritten_after_its_check_is_not_what_gets_installed(
    tmp_path: Path,
) -> None:
    manifest = _manifest(tmp_path)
    first = run_subprocess(manifest, "apply", "--yes")
    assert first.returncode == 0, first.stderr
    shutil.rmtree(tmp_path / "opt")  # a new CI job: empty install root, warm cache

    tampered = _tampered_greetlib()
    with paused_at(
        manifest, "after-verify@greetlib", "apply", "--yes", folder=tmp_path / "pause"
    ) as apply:
        assert apply.detail.endswith("from cache"), apply.detail
        _rewrite_in_place(_blob(tmp_path), tampered)
        apply.resume()
        code, out, err = apply.finish()
    assert code == 0, out + err

    assert _message_installed(tmp_path).startswith(b"greetlib 2.1 says hello.\n")
    check_hello_works(tmp_path / "opt")
    _converged(manifest)
    # The rewritten blob is found bad on its next use, evicted, and fetched again.
    shutil.rmtree(tmp_path / "opt")
    again = run_subprocess(manifest, "apply", "--yes")
    assert again.returncode == 0, again.stderr
    assert "evicted" in again.stdout + again.stderr
    check_hello_works(tmp_path / "opt")
    assert hashlib.sha256(_blob(tmp_path).read_bytes()).hexdigest() == GREETLIB_SHA


def test_a_fresh_download_is_unpacked_from_its_private_copy_not_the_cache(
    tmp_path: Path,
) -> None:
    manifest = _manifest(tmp_path)
    tampered = _tampered_greetlib()
    with paused_at(
        manifest, "after-verify@greetlib", "apply", "--yes", folder=tmp_path / "pause"
    ) as apply:
        assert "from mirror 'team'" in apply.detail, apply.detail
        # The download was verified; the co-tenant rewrites (or plants) the cache's copy.
        _rewrite_in_place(_blob(tmp_path), tampered)
        apply.resume()
        code, out, err = apply.finish()
    assert code == 0, out + err

    assert _message_installed(tmp_path).startswith(b"greetlib 2.1 says hello.\n")
    check_hello_works(tmp_path / "opt")
    _converged(manifest)
    # What the cache keeps is a copy of the verified download, written after the unpack.
    assert hashlib.sha256(_blob(tmp_path).read_bytes()).hexdigest() == GREETLIB_SHA
    shutil.rmtree(tmp_path / "opt")
    again = run_subprocess(manifest, "apply", "--yes")
    assert again.returncode == 0, again.stderr
    check_hello_works(tmp_path / "opt")
