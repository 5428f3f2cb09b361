"""The install record's hashes come from the unpack, for every file relocation left alone:
they are the hashes a fresh scan of the prefix gives, whatever relocation rewrote (hard
links to rewritten files included)."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "archive"))

from conftest import HELLO_HASH, SIGNED_CACHE
from hostile import DAG_HASH, PREFIX, Member, spack_tarball

from reconcile.archive.unpack import unpack_package
from reconcile.relocate.package import relocate_package
from reconcile.relocate.prefix_map import build_prefix_map
from reconcile.state.records import KnownContents, scan_prefix


def install_like_apply(
    tarball: Path, staging: Path, dag_hash: str, new_root: str = "/n/" + "r" * 40
) -> tuple[Path, KnownContents]:
    """Unpack with hashing, relocate to a new root, as ``apply`` stages a prefix."""
    unpacked = unpack_package(tarball, staging, dag_hash=dag_hash, hash_files=True)
    prefix_map = build_prefix_map(
        unpacked.build_info,
        own_hash=dag_hash,
        new_prefixes={h: f"{new_root}/{h}" for h in unpacked.build_info.hash_to_prefix},
        new_root=new_root,
    )
    rewritten = relocate_package(unpacked.prefix_dir, unpacked.build_info, prefix_map)
    return unpacked.prefix_dir, KnownContents(files=unpacked.file_hashes, changed=rewritten)


def test_unpack_hashes_are_those_of_the_files_written(tmp_path: Path) -> None:
    tarball = spack_tarball(
        tmp_path / "t.spack",
        [
            Member(f"{PREFIX}/lib/big", data=bytes(range(256)) * 9000),  # several pieces
            Member(f"{PREFIX}/lib/empty", data=b""),
            Member(f"{PREFIX}/lib/again", "hardlink", linkname=f"{PREFIX}/lib/big"),
        ],
    )
    unpacked = unpack_package(tarball, tmp_path / "staging", dag_hash=DAG_HASH, hash_files=True)
    files = [p for p in unpacked.prefix_dir.rglob("*") if p.is_file() and not p.is_symlink()]
    assert len(files) >= 6
    assert unpacked.file_hashes == {
        str(p.relative_to(unpacked.prefix_dir)): (
            p.stat().st_size,
            hashlib.sha256(p.read_bytes()).hexdigest(),
        )
        for p in files
    }
    plain = unpack_package(tarball, tmp_path / "plain", dag_hash=DAG_HASH)
    assert plain.file_hashes == {}


def test_record_of_a_relocated_real_package_is_a_fresh_scan(tmp_path: Path) -> None:
    """Spack's hello-app: ELF binaries and text files rewritten by relocation."""
    (tarball,) = SIGNED_CACHE.glob(f"build_cache/*/*/*/*-{HELLO_HASH}.spack")
    prefix, known = install_like_apply(tarball, tmp_path / "staging", HELLO_HASH)
    assert known.changed, "relocation rewrote nothing: the test proves nothing"
    assert known.files
    assert scan_prefix(prefix, known) == scan_prefix(prefix)


def test_a_hard_link_to_a_relocated_file_is_read_again(tmp_path: Path) -> None:
    """readme.txt is listed for text relocation and names the old prefix; its hard link is
    not listed, shares its inode, and so its unpacked hash no longer holds."""
    tarball = spack_tarball(
        tmp_path / "t.spack",
        [
            Member(
                f"{PREFIX}/share/victim/alias.txt",
                "hardlink",
                linkname=f"{PREFIX}/share/victim/readme.txt",
            )
        ],
    )
    # A new prefix (root/hash) as long as the old one: the rewritten file keeps its size, so
    # only its inode tells that it changed.
    new_root = "/n/" + "r" * (len("/" + PREFIX) - len("/n/") - len("/" + DAG_HASH))
    prefix, known = install_like_apply(tarball, tmp_path / "staging", DAG_HASH, new_root)
    readme = (prefix / "share/victim/readme.txt").read_bytes()
    assert PREFIX.encode() not in readme, "not relocated: the test proves nothing"
    assert len(readme) == known.files["share/victim/readme.txt"][0]
    assert known.files["share/victim/alias.txt"][1] != hashlib.sha256(readme).hexdigest()
    assert scan_prefix(prefix, known) == scan_prefix(prefix)


def test_known_hashes_are_used_only_for_unchanged_files(tmp_path: Path) -> None:
    prefix = tmp_path / "p"
    prefix.mkdir()
    (prefix / "a").write_bytes(b"abc")
    (prefix / "b").write_bytes(b"def")
    info = (prefix / "b").stat()
    wrong = "0" * 64  # so that a test can see whether the file was read
    known = KnownContents(files={"a": (3, wrong), "b": (3, wrong)}, changed=set())
    by_path = {e.path: e.sha256 for e in scan_prefix(prefix, known)}
    assert by_path == {".": None, "a": wrong, "b": wrong}
    changed = KnownContents(files=known.files, changed={(info.st_dev, info.st_ino)})
    assert {e.path: e.sha256 for e in scan_prefix(prefix, changed)}["b"] != wrong
    (prefix / "a").write_bytes(b"abcd")  # another size: read again
    assert {e.path: e.sha256 for e in scan_prefix(prefix, known)}["a"] != wrong


@pytest.mark.parametrize("size", [0, 2, 4])
def test_a_known_size_that_differs_is_read_again(tmp_path: Path, size: int) -> None:
    prefix = tmp_path / "p"
    prefix.mkdir()
    (prefix / "a").write_bytes(b"abc")
    known = KnownContents(files={"a": (size, "0" * 64)}, changed=())
    (entry,) = (e for e in scan_prefix(prefix, known) if e.path == "a")
    assert entry.sha256 == hashlib.sha256(b"abc").hexdigest() and entry.size == 3
