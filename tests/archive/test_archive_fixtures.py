"""The three tarballs a real Spack made unpack exactly, and what they hold still works."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from conftest import GCC_RUNTIME_HASH, GREETLIB_HASH, HELLO_HASH, SIGNED_CACHE

from reconcile.archive.unpack import UnpackedPackage, check_symlinks, unpack_package
from reconcile.errors import ArchiveError

BUILD_CACHE = SIGNED_CACHE / "build_cache" / "linux-debian12-x86_64_v4" / "gcc-12.2.0"


def fixture_tarball(dag_hash: str) -> Path:
    (found,) = BUILD_CACHE.glob(f"*/*-{dag_hash}.spack")
    return found


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def expected_entries(tarball: Path, member_prefix: str) -> dict[str, tuple[object, ...]]:
    """What the prefix must hold, read independently with tarfile's random-access reader."""
    mask = current_umask()
    entries: dict[str, tuple[object, ...]] = {}
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive.getmembers():
            if not member.name.startswith(member_prefix + "/"):
                continue
            relative = member.name[len(member_prefix) + 1 :]
            if member.isdir():
                entries[relative] = ("dir", member.mode & ~mask, member.mtime)
            elif member.issym():
                entries[relative] = ("symlink", member.linkname, member.mtime)
            else:
                data = archive.extractfile(member)
                assert data is not None
                digest = hashlib.sha256(data.read()).hexdigest()
                entries[relative] = ("file", member.mode & ~mask, member.mtime, digest)
    return entries


def actual_entries(prefix_dir: Path) -> dict[str, tuple[object, ...]]:
    entries: dict[str, tuple[object, ...]] = {}
    for path in sorted(prefix_dir.rglob("*")):
        relative = str(path.relative_to(prefix_dir))
        info = path.lstat()
        if stat.S_ISDIR(info.st_mode):
            entries[relative] = ("dir", stat.S_IMODE(info.st_mode), int(info.st_mtime))
        elif stat.S_ISLNK(info.st_mode):
            entries[relative] = ("symlink", os.readlink(path), int(info.st_mtime))
        else:
            assert stat.S_ISREG(info.st_mode), relative
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            entries[relative] = ("file", stat.S_IMODE(info.st_mode), int(info.st_mtime), digest)
    return entries


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, UnpackedPackage]:
    root = tmp_path_factory.mktemp("fixtures")
    return {
        dag_hash: unpack_package(fixture_tarball(dag_hash), root / dag_hash, dag_hash=dag_hash)
        for dag_hash in (HELLO_HASH, GREETLIB_HASH, GCC_RUNTIME_HASH)
    }


@pytest.mark.parametrize("dag_hash", [HELLO_HASH, GREETLIB_HASH, GCC_RUNTIME_HASH])
def test_fixture_prefix_is_unpacked_exactly(
    dag_hash: str, unpacked: dict[str, UnpackedPackage]
) -> None:
    package = unpacked[dag_hash]
    staging = package.prefix_dir.parent
    assert package.prefix_dir == staging / "prefix"
    assert sorted(p.name for p in staging.iterdir()) == ["prefix"]
    assert package.member_prefix.startswith("tmp/research-spack/opt/__spack_path_placeholder__")
    assert package.member_prefix.endswith(dag_hash)

    expected = expected_entries(fixture_tarball(dag_hash), package.member_prefix)
    assert actual_entries(package.prefix_dir) == expected
    assert stat.S_IMODE(package.prefix_dir.stat().st_mode) == 0o755 & ~current_umask()


def test_fixture_build_info_is_parsed(unpacked: dict[str, UnpackedPackage]) -> None:
    hello = unpacked[HELLO_HASH]
    info = hello.build_info
    assert info.old_prefix == "/" + hello.member_prefix
    assert info.relocate_binaries == ("bin/hello-app",)
    assert info.relocate_textfiles == ("bin/hello-app-wrapper",)
    assert info.relocate_links == ("share/hello-app/greetlib-message",)
    assert info.hash_to_prefix[GREETLIB_HASH] == "/" + unpacked[GREETLIB_HASH].member_prefix
    runtime = unpacked[GCC_RUNTIME_HASH].build_info
    assert "lib/libstdc++.so.6" in runtime.relocate_binaries


def test_fixture_symlinks_are_kept_as_written(unpacked: dict[str, UnpackedPackage]) -> None:
    hello = unpacked[HELLO_HASH].prefix_dir
    assert os.readlink(hello / "bin" / "ha") == "hello-app"
    greetlib_prefix = "/" + unpacked[GREETLIB_HASH].member_prefix
    message_link = hello / "share" / "hello-app" / "greetlib-message"
    # Absolute and still naming the build-time prefix: relocation re-points it later.
    assert os.readlink(message_link) == f"{greetlib_prefix}/share/greetlib/message.txt"
    lib = unpacked[GREETLIB_HASH].prefix_dir / "lib"
    assert os.readlink(lib / "libgreet2.so") == "libgreet2.so.2"


def test_fixture_binary_runs_from_staging(unpacked: dict[str, UnpackedPackage]) -> None:
    """Not relocated yet, so its strings name the build prefixes; but it loads and runs."""
    libraries = [unpacked[h].prefix_dir / "lib" for h in (GREETLIB_HASH, GCC_RUNTIME_HASH)]
    result = subprocess.run(
        [str(unpacked[HELLO_HASH].prefix_dir / "bin" / "ha")],
        env={**os.environ, "LD_LIBRARY_PATH": os.pathsep.join(map(str, libraries))},
        capture_output=True,
        text=True,
        timeout=30,
    )
    lines = result.stdout.splitlines()
    assert lines[0] == f"hello-app 3.0 installed at /{unpacked[HELLO_HASH].member_prefix}"
    greetlib_prefix = "/" + unpacked[GREETLIB_HASH].member_prefix
    assert lines[1] == f"greetlib message file: {greetlib_prefix}/share/greetlib/message.txt"


def test_fixture_symlinks_check_against_closure(unpacked: dict[str, UnpackedPackage]) -> None:
    hello = unpacked[HELLO_HASH]
    greetlib_prefix = "/" + unpacked[GREETLIB_HASH].member_prefix
    # Unrelocated, the prefixes are still the build-time ones.
    check_symlinks(
        hello.prefix_dir,
        final_prefix="/" + hello.member_prefix,
        allowed_prefixes=(greetlib_prefix,),
    )
    with pytest.raises(ArchiveError) as caught:
        check_symlinks(
            hello.prefix_dir, final_prefix="/" + hello.member_prefix, allowed_prefixes=()
        )
    assert "greetlib-message" in str(caught.value)
    assert "share/greetlib/message.txt" in str(caught.value)


def test_staging_must_be_empty(tmp_path: Path) -> None:
    (tmp_path / "leftover").write_text("x")
    with pytest.raises(ValueError, match="not empty"):
        unpack_package(fixture_tarball(GREETLIB_HASH), tmp_path)


def test_unpack_time_compared_with_tar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A sanity print, not an assertion: gcc-runtime's 9.5 MB tarball, us against tar."""
    tarball = fixture_tarball(GCC_RUNTIME_HASH)
    started = time.perf_counter()
    unpack_package(tarball, tmp_path / "ours", dag_hash=GCC_RUNTIME_HASH)
    ours = time.perf_counter() - started
    (tmp_path / "tar").mkdir()
    started = time.perf_counter()
    subprocess.run(["tar", "-xzf", str(tarball), "-C", str(tmp_path / "tar")], check=True)
    theirs = time.perf_counter() - started
    with capsys.disabled():
        print(f"\n[archive timing] unpack_package {ours:.3f} s, tar -xzf {theirs:.3f} s")
