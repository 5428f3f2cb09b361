"""Reading the prefix a package was built in from a cached tarball, at plan time: only from a
copy whose sha256 is the signed one, and never an error (only "not known")."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

from conftest import GREETLIB_HASH, HELLO_HASH, SIGNED_CACHE

from reconcile.limits import DEFAULT_LIMITS
from reconcile.observe.built_prefix import built_prefix, built_prefixes

TARBALL = next(SIGNED_CACHE.rglob(f"*-{GREETLIB_HASH}.spack"))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_build_prefix_of_a_genuine_tarball() -> None:
    found = built_prefix(
        TARBALL, sha256=_sha256(TARBALL), dag_hash=GREETLIB_HASH, limits=DEFAULT_LIMITS
    )
    assert found is not None
    assert (
        found.endswith(f"/greetlib-2.1-{GREETLIB_HASH}") and "__spack_path_placeholder__" in found
    )


def test_a_copy_that_is_not_the_signed_one_tells_nothing(tmp_path: Path) -> None:
    copy = tmp_path / "copy.spack"
    copy.write_bytes(TARBALL.read_bytes() + b"\0" * 512)  # still a readable archive
    assert (
        built_prefix(copy, sha256=_sha256(TARBALL), dag_hash=GREETLIB_HASH, limits=DEFAULT_LIMITS)
        is None
    )


def test_hostile_or_broken_copies_tell_nothing(tmp_path: Path) -> None:
    cases: dict[str, bytes] = {
        "empty": b"",
        "not-gzip": b"not a tarball at all",
        "truncated": TARBALL.read_bytes()[: TARBALL.stat().st_size // 2],
    }
    bomb = io.BytesIO()
    with tarfile.open(fileobj=bomb, mode="w:gz") as tar:
        info = tarfile.TarInfo("x/.spack/binary_distribution")
        # a valid record padded with a comment: only the bound on expansion refuses it
        data = b"buildpath: /b\nrelative_prefix: x\n#" + b"a" * (1 << 20)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    cases["expands-too-much"] = bomb.getvalue()
    for name, data in cases.items():
        copy = tmp_path / name
        copy.write_bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        assert (
            built_prefix(copy, sha256=sha, dag_hash=GREETLIB_HASH, limits=DEFAULT_LIMITS) is None
        ), name


def test_a_dependents_tarball_tells_where_its_dependencies_were_built() -> None:
    tarball = next(SIGNED_CACHE.rglob(f"*-{HELLO_HASH}.spack"))
    found = built_prefixes(
        tarball, sha256=_sha256(tarball), dag_hash=HELLO_HASH, limits=DEFAULT_LIMITS
    )
    assert found is not None
    own = built_prefix(
        TARBALL, sha256=_sha256(TARBALL), dag_hash=GREETLIB_HASH, limits=DEFAULT_LIMITS
    )
    assert found[GREETLIB_HASH] == own  # what hello-app recorded is where greetlib was built
    assert found[HELLO_HASH].endswith(f"/hello-app-3.0-{HELLO_HASH}")
