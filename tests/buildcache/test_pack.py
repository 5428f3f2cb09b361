"""Packing prefixes into layout-v2 tarballs: golden tests against Spack-made fixtures, real
compiled binaries, determinism and the inputs a publisher must refuse."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml
from conftest import GREETLIB_HASH, HELLO_HASH, SIGNED_CACHE

from reconcile.buildcache.build_info import parse_build_info
from reconcile.buildcache.pack import (
    RelocationScan,
    binary_distribution_yaml,
    scan_relocation,
    write_tarball,
)
from reconcile.errors import ArchiveError, ReconcileError

ARCH_DIR = SIGNED_CACHE / "build_cache" / "linux-debian12-x86_64_v4" / "gcc-12.2.0"
GCC_RUNTIME_TARBALL_SHA256 = "0448526af2bad1701bc3b7e009f0890e47285e5c4c34da04ad21b7e45eb35fdf"
OLD_ROOT = "/tmp/publish-test/opt/__spack_path_placeholder__/__spack_path_placeholder__"


def fixture_tarball(name_version: str) -> Path:
    (found,) = (ARCH_DIR / name_version).glob("*.spack")
    return found


def extract_fixture(tarball: Path, dest: Path) -> tuple[str, str]:
    """Unpack the fixture's prefix into ``dest`` (not at its absolute path); returns the
    prefix as the archive names it (with a leading ``/``) and its binary_distribution text."""
    with tarfile.open(tarball) as archive:
        members = archive.getmembers()
        (recipe,) = [m for m in members if m.name.endswith(".spack/binary_distribution")]
        member_prefix = recipe.name.rsplit("/", 2)[0]
        recipe_text = archive.extractfile(recipe).read().decode()  # type: ignore[union-attr]
        for member in members:
            if member.name.startswith(member_prefix + "/") or member.name == member_prefix:
                relative = member.name[len(member_prefix) :].lstrip("/") or "."
                archive.extract(member.replace(name=relative), dest, filter="fully_trusted")
    return "/" + member_prefix, recipe_text


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def members(tarball: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(tarball) as archive:
        return archive.getmembers()


# --- golden tests: re-packing what Spack packed gives Spack's bytes --------------------------


@pytest.mark.parametrize("name_version", ["greetlib-2.1", "hello-app-3.0"])
def test_repacking_a_fixture_prefix_gives_spacks_tarball_byte_for_byte(
    tmp_path: Path, name_version: str
) -> None:
    original = fixture_tarball(name_version)
    prefix = tmp_path / "prefix"
    member_prefix, recipe = extract_fixture(original, prefix)

    out = tmp_path / "out.spack"
    checksum = write_tarball(prefix, out, member_prefix=member_prefix, build_info_yaml=recipe)

    assert checksum == sha256(original) == sha256(out)
    assert out.read_bytes() == original.read_bytes()


def test_repacking_gcc_runtime_matches_its_checksum_in_the_fixture(tmp_path: Path) -> None:
    # 9.5 MB of shared libraries: the large-file path of the packer against Spack.
    prefix = tmp_path / "prefix"
    member_prefix, recipe = extract_fixture(fixture_tarball("gcc-runtime-12.2.0"), prefix)
    out = tmp_path / "out.spack"
    assert (
        write_tarball(prefix, out, member_prefix=member_prefix, build_info_yaml=recipe)
        == GCC_RUNTIME_TARBALL_SHA256
    )


@pytest.mark.parametrize(
    ("name_version", "dag_hash"),
    [("greetlib-2.1", GREETLIB_HASH), ("hello-app-3.0", HELLO_HASH)],
)
def test_scan_and_recipe_reproduce_spacks_binary_distribution(
    tmp_path: Path, name_version: str, dag_hash: str
) -> None:
    prefix = tmp_path / "prefix"
    member_prefix, recipe = extract_fixture(fixture_tarball(name_version), prefix)
    spack_info = yaml.safe_load(recipe)

    scan = scan_relocation(
        prefix, [*spack_info["hash_to_prefix"].values(), spack_info["buildpath"]]
    )
    assert scan == RelocationScan(
        tuple(spack_info["relocate_textfiles"]),
        tuple(spack_info["relocate_binaries"]),
        tuple(spack_info["relocate_links"]),
    )
    text = binary_distribution_yaml(
        buildpath=spack_info["buildpath"],
        old_prefix=member_prefix,
        scan=scan,
        hash_to_prefix=spack_info["hash_to_prefix"],
        sbang_install_path=spack_info["sbang_install_path"],
        spackprefix=spack_info["spackprefix"],
    )
    assert text == recipe
    parsed = parse_build_info(text, dag_hash=dag_hash)
    assert parsed.old_prefix == member_prefix


# --- a prefix built here, with a real compiled binary ----------------------------------------


def build_prefix(tmp_path: Path) -> tuple[Path, str]:
    """A small prefix with a real ELF program, text files, links and metadata; returns it and
    the old prefix it pretends to have been installed at."""
    old_prefix = (
        f"{OLD_ROOT}/linux-debian12-x86_64/gcc-12.2.0/demo-1.0-abcdefghijklmnopqrstuvwxyz234567"
    )
    prefix = tmp_path / "demo"
    for folder in ("bin", "lib", "share/demo", "share/man/man1", ".spack"):
        (prefix / folder).mkdir(parents=True)
    source = tmp_path / "demo.c"
    source.write_text(
        '#include <stdio.h>\nstatic const char *where = "' + old_prefix + '";\n'
        'int main(void) { printf("demo at %s\\n", where); return 0; }\n'
    )
    subprocess.run(["gcc", "-O1", "-o", str(prefix / "bin/demo"), str(source)], check=True)
    subprocess.run(["gcc", "-c", "-o", str(prefix / "lib/demo.o"), str(source)], check=True)
    (prefix / "bin/demo-wrapper").write_text(f'#!/bin/sh\nexec {old_prefix}/bin/demo "$@"\n')
    (prefix / "bin/demo-wrapper").chmod(0o755)
    (prefix / "share/demo/plain.txt").write_text("no paths in here\n")
    (prefix / "share/demo/data.bin").write_bytes(b"\0\1" + old_prefix.encode() + b"\0")
    (prefix / "share/man/man1/demo.1").write_text(f".TH DEMO 1\nsee {old_prefix}/share\n")
    (prefix / "share/demo/private.txt").write_text("secret\n")
    (prefix / "share/demo/private.txt").chmod(0o600)
    (prefix / "bin/d").symlink_to("demo")
    (prefix / "share/demo/self").symlink_to(f"{old_prefix}/share/demo/plain.txt")
    (prefix / "share/demo/env").symlink_to("/usr/bin/env")
    os.link(prefix / "bin/demo-wrapper", prefix / "bin/demo-wrapper-again")
    (prefix / ".spack/spec.json").write_text(f'{{"prefix": "{old_prefix}"}}')
    return prefix, old_prefix


def pack(prefix: Path, old_prefix: str, out: Path) -> tuple[str, RelocationScan]:
    scan = scan_relocation(prefix, [old_prefix, OLD_ROOT])
    recipe = binary_distribution_yaml(
        buildpath=OLD_ROOT, old_prefix=old_prefix, scan=scan, hash_to_prefix={"h": old_prefix}
    )
    return write_tarball(prefix, out, member_prefix=old_prefix, build_info_yaml=recipe), scan


def test_scan_classifies_files_links_and_hard_links(tmp_path: Path) -> None:
    prefix, old_prefix = build_prefix(tmp_path)
    scan = scan_relocation(prefix, [old_prefix])
    # The ELF program is listed, the object file is not; the NUL-bearing blob is not text.
    assert scan.binaries == ("bin/demo",)
    # One name per hard-linked file; man pages are scanned (Spack skips them); .spack never.
    assert scan.textfiles == ("bin/demo-wrapper", "share/man/man1/demo.1")
    assert scan.links == ("share/demo/self",)


def test_tarball_has_spacks_shape(tmp_path: Path) -> None:
    prefix, old_prefix = build_prefix(tmp_path)
    out = tmp_path / "demo.spack"
    checksum, _ = pack(prefix, old_prefix, out)
    raw = out.read_bytes()
    assert checksum == hashlib.sha256(raw).hexdigest()
    # gzip: deflate, no flags (no file name), mtime 0, OS "unknown" as Python writes it.
    assert raw[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"

    listed = members(out)
    names = [m.name for m in listed]
    base = old_prefix.lstrip("/")
    parts = base.split("/")
    assert names[: len(parts) - 1] == ["/".join(parts[:i]) for i in range(1, len(parts))]
    assert names[len(parts) - 1] == base
    assert names[-1] == f"{base}/.spack/binary_distribution"
    assert all(n == base or n.startswith(base + "/") for n in names[len(parts) - 1 :])
    assert all(m.mtime == 0 and m.uid == m.gid == 0 and m.uname == m.gname == "" for m in listed)
    assert all(m.mode == 0o755 for m in listed[: len(parts) - 1])
    # Files before sub-folders, each sorted: bin/ lists d, demo, demo-wrapper, then .spack...
    inside = [n[len(base) + 1 :] for n in names[len(parts) :]]
    assert inside.index("bin/d") < inside.index("bin/demo") < inside.index("bin/demo-wrapper")
    assert inside.index("lib/demo.o") < inside.index("share")
    by_name = {m.name[len(base) + 1 :]: m for m in listed if m.name.startswith(base + "/")}
    assert by_name["share/demo/private.txt"].mode == 0o600
    assert by_name["bin/demo"].mode == stat.S_IMODE((prefix / "bin/demo").stat().st_mode)
    assert by_name["bin/d"].issym() and by_name["bin/d"].linkname == "demo"
    again = by_name["bin/demo-wrapper-again"]
    assert again.islnk() and again.linkname == f"{base}/bin/demo-wrapper"
    recipe = yaml.safe_load(read_recipe(out))
    assert recipe["hardlinks_deduped"] is True
    assert recipe["relative_prefix"] == old_prefix[len(OLD_ROOT) + 1 :]


def read_recipe(tarball: Path) -> str:
    with tarfile.open(tarball) as archive:
        member = archive.getmembers()[-1]
        return archive.extractfile(member).read().decode()  # type: ignore[union-attr]


def test_packed_binary_still_runs_after_unpacking(tmp_path: Path) -> None:
    prefix, old_prefix = build_prefix(tmp_path)
    out = tmp_path / "demo.spack"
    pack(prefix, old_prefix, out)
    # GNU tar reads it too (a second, independent reader).
    dest = tmp_path / "unpacked"
    dest.mkdir()
    subprocess.run(["tar", "-xzf", str(out), "-C", str(dest)], check=True)
    unpacked = dest / old_prefix.lstrip("/")
    run = subprocess.run([str(unpacked / "bin/demo")], capture_output=True, text=True, check=True)
    assert run.stdout == f"demo at {old_prefix}\n"
    assert (unpacked / "bin/demo-wrapper-again").stat().st_ino == (
        unpacked / "bin/demo-wrapper"
    ).stat().st_ino
    assert (unpacked / "bin/demo").read_bytes() == (prefix / "bin/demo").read_bytes()


def test_publishing_twice_gives_identical_bytes_whatever_the_timestamps(tmp_path: Path) -> None:
    prefix, old_prefix = build_prefix(tmp_path)
    first, second = tmp_path / "one.spack", tmp_path / "two.spack"
    pack(prefix, old_prefix, first)
    for path in prefix.rglob("*"):
        os.utime(path, (1_000_000, 1_000_000), follow_symlinks=False)
    pack(prefix, old_prefix, second)
    assert first.read_bytes() == second.read_bytes()


def test_stale_recipe_in_the_prefix_is_replaced_not_duplicated(tmp_path: Path) -> None:
    prefix, old_prefix = build_prefix(tmp_path)
    (prefix / ".spack/binary_distribution").write_text("{stale: true}\n")
    out = tmp_path / "demo.spack"
    pack(prefix, old_prefix, out)
    names = [m.name for m in members(out)]
    assert sum(n.endswith(".spack/binary_distribution") for n in names) == 1
    assert "stale" not in read_recipe(out)


def test_prefix_without_metadata_folder_gets_one_for_the_recipe(tmp_path: Path) -> None:
    prefix, old_prefix = build_prefix(tmp_path)
    shutil.rmtree(prefix / ".spack")
    out = tmp_path / "demo.spack"
    pack(prefix, old_prefix, out)
    listed = members(out)
    assert listed[-2].isdir() and listed[-2].name.endswith("/.spack")
    assert listed[-1].name.endswith("/.spack/binary_distribution")


def test_set_uid_bits_are_not_published(tmp_path: Path) -> None:
    prefix, old_prefix = build_prefix(tmp_path)
    (prefix / "bin/demo").chmod(0o4755)
    out = tmp_path / "demo.spack"
    pack(prefix, old_prefix, out)
    demo = next(m for m in members(out) if m.name.endswith("/bin/demo"))
    assert demo.mode == 0o755


# --- what a publisher must refuse -------------------------------------------------------------


def test_fifo_in_prefix_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    prefix, old_prefix = build_prefix(tmp_path)
    os.mkfifo(prefix / "share/demo/pipe")
    out = tmp_path / "out" / "demo.spack"
    with pytest.raises(ArchiveError) as caught:
        pack(prefix, old_prefix, out)
    assert "pipe" in caught.value.message and caught.value.hint
    assert list(out.parent.iterdir()) == []  # no temporary file left behind


@pytest.mark.parametrize("member_prefix", ["/", "", "/opt/../etc/x", "/opt//x", "/opt/./x"])
def test_unusable_member_prefix_is_refused(tmp_path: Path, member_prefix: str) -> None:
    prefix, _ = build_prefix(tmp_path)
    with pytest.raises(ReconcileError, match="cannot name a prefix"):
        write_tarball(
            prefix, tmp_path / "x.spack", member_prefix=member_prefix, build_info_yaml="{}\n"
        )


def test_missing_prefix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReconcileError, match="not a folder") as caught:
        write_tarball(
            tmp_path / "nope", tmp_path / "x.spack", member_prefix="/a/b", build_info_yaml=""
        )
    assert caught.value.hint
    with pytest.raises(ReconcileError, match="not a folder"):
        scan_relocation(tmp_path / "nope", ["/a"])


def test_prefix_outside_buildpath_is_refused() -> None:
    with pytest.raises(ReconcileError, match="not inside the install tree") as caught:
        binary_distribution_yaml(
            buildpath="/opt/spack",
            old_prefix="/opt/spackling/x-1.0-abc",
            scan=RelocationScan((), (), ()),
            hash_to_prefix={},
        )
    assert caught.value.reference == "bad-buildpath"


def test_gzip_stream_is_complete(tmp_path: Path) -> None:
    prefix, old_prefix = build_prefix(tmp_path)
    out = tmp_path / "demo.spack"
    pack(prefix, old_prefix, out)
    # A truncated or unfinished gzip member raises here.
    assert len(gzip.decompress(out.read_bytes())) % 10240 == 0


def test_unwritable_destination_is_reported(tmp_path: Path) -> None:
    prefix, old_prefix = build_prefix(tmp_path)
    blocker = tmp_path / "mirror"
    blocker.write_text("a file where the mirror folder should be\n")
    with pytest.raises(ReconcileError, match="cannot write") as caught:
        pack(prefix, old_prefix, blocker / "demo.spack")
    assert caught.value.reference == "mirror-unwritable"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_in_prefix_is_reported(tmp_path: Path) -> None:
    prefix, old_prefix = build_prefix(tmp_path)
    (prefix / "share/demo/private.txt").chmod(0)
    with pytest.raises(ReconcileError, match=r"private\.txt") as caught:
        pack(prefix, old_prefix, tmp_path / "demo.spack")
    assert caught.value.reference == "prefix-unreadable"
