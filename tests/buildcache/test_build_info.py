"""parse_build_info on the binary_distribution files inside the Spack-made fixture tarballs,
on the older prefix_to_hash form, and on malformed input."""

from __future__ import annotations

import tarfile

import pytest
import yaml
from conftest import GCC_RUNTIME_HASH, GLIBC_HASH, GREETLIB_HASH, HELLO_HASH, SIGNED_CACHE

from reconcile.buildcache.build_info import SAFE_LOADER, parse_build_info

ARCH_DIR = SIGNED_CACHE / "build_cache" / "linux-debian12-x86_64_v4" / "gcc-12.2.0"
TARBALLS = {
    HELLO_HASH: ARCH_DIR / "hello-app-3.0",
    GREETLIB_HASH: ARCH_DIR / "greetlib-2.1",
    GCC_RUNTIME_HASH: ARCH_DIR / "gcc-runtime-12.2.0",
}
ROOT = (
    "/tmp/research-spack/opt/__spack_path_placeholder__/__spack_path_placeholder__/"
    "__spack_path_placeholder__/__spack_path_placeholde"
)


def binary_distribution(dag_hash: str) -> str:
    """The YAML from the real tarball, read without unpacking it."""
    (tarball,) = TARBALLS[dag_hash].glob("*.spack")
    with tarfile.open(tarball, "r:gz") as archive:
        names = [n for n in archive.getnames() if n.endswith(".spack/binary_distribution")]
        member = archive.extractfile(min(names, key=len))
        assert member is not None
        return member.read().decode()


@pytest.fixture(scope="module")
def texts() -> dict[str, str]:
    return {dag_hash: binary_distribution(dag_hash) for dag_hash in TARBALLS}


def test_hello_app_build_info(texts: dict[str, str]) -> None:
    info = parse_build_info(texts[HELLO_HASH], dag_hash=HELLO_HASH)
    own = f"{ROOT}/linux-debian12-x86_64_v4/gcc-12.2.0/hello-app-3.0-{HELLO_HASH}"
    assert len(ROOT) == 128  # the fixture's padded_length
    assert info.buildpath == ROOT
    assert info.old_prefix == own
    assert info.relative_prefix == f"linux-debian12-x86_64_v4/gcc-12.2.0/hello-app-3.0-{HELLO_HASH}"
    assert info.relocate_textfiles == ("bin/hello-app-wrapper",)
    assert info.relocate_binaries == ("bin/hello-app",)
    assert info.relocate_links == ("share/hello-app/greetlib-message",)
    assert info.hardlinks_deduped is True
    assert set(info.hash_to_prefix) == {HELLO_HASH, GREETLIB_HASH, GCC_RUNTIME_HASH}
    assert GLIBC_HASH not in info.hash_to_prefix  # an external keeps its prefix
    assert info.hash_to_prefix[GREETLIB_HASH].endswith(f"/greetlib-2.1-{GREETLIB_HASH}")


@pytest.mark.parametrize("dag_hash", list(TARBALLS))
def test_every_fixture_agrees_with_its_relative_prefix(
    texts: dict[str, str], dag_hash: str
) -> None:
    by_hash = parse_build_info(texts[dag_hash], dag_hash=dag_hash)
    by_relative = parse_build_info(texts[dag_hash])
    assert by_hash.old_prefix == by_relative.old_prefix == f"{ROOT}/{by_hash.relative_prefix}"
    assert by_hash.old_prefix.endswith(dag_hash)


def test_greetlib_lists_its_text_files_and_library(texts: dict[str, str]) -> None:
    info = parse_build_info(texts[GREETLIB_HASH], dag_hash=GREETLIB_HASH)
    assert info.relocate_textfiles == ("lib/pkgconfig/greet2.pc", "share/greetlib/message.txt")
    assert info.relocate_binaries == ("lib/libgreet2.so.2",)
    assert info.relocate_links == ()


def test_the_older_prefix_to_hash_form() -> None:
    text = (
        "{buildpath: /old/root, relative_prefix: linux/gcc-9/zlib-1.2-aaaa, "
        "relocate_textfiles: [lib/pkgconfig/zlib.pc], relocate_binaries: [], "
        "relocate_links: [], prefix_to_hash: {/old/root/linux/gcc-9/zlib-1.2-aaaa: aaaa, "
        "/old/root/linux/gcc-9/dep-1-bbbb: bbbb}}"
    )
    info = parse_build_info(text, dag_hash="aaaa")
    assert info.hash_to_prefix == {
        "aaaa": "/old/root/linux/gcc-9/zlib-1.2-aaaa",
        "bbbb": "/old/root/linux/gcc-9/dep-1-bbbb",
    }
    assert info.old_prefix == "/old/root/linux/gcc-9/zlib-1.2-aaaa"
    assert info.hardlinks_deduped is False  # archives from before deduplication


def test_a_hash_missing_from_the_map_falls_back_to_relative_prefix() -> None:
    text = "{buildpath: /old/root/, relative_prefix: pkg-1-cccc, hash_to_prefix: {}}"
    assert parse_build_info(text, dag_hash="cccc").old_prefix == "/old/root/pkg-1-cccc"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{relative_prefix: a, relocate_textfiles: []}", "no 'buildpath'"),
        ("{buildpath: /r, relative_prefix: a, relocate_textfiles: bin/x}", "must be a list"),
        ("{buildpath: /r, relative_prefix: a, relocate_binaries: [[x]]}", "where a path"),
        ("{buildpath: /r, relative_prefix: a, relocate_textfiles: [../../etc/x]}", "outside"),
        ("{buildpath: /r, relative_prefix: a, relocate_links: [/etc/passwd]}", "outside"),
        ("{buildpath: /r}", "cannot tell the package's old prefix"),
        ("{buildpath: /r, hash_to_prefix: [a, b]}", "must be a mapping"),
        ("{buildpath: /r, hash_to_prefix: {h: relative/p}}", "not absolute"),
        ("{buildpath: /r, relative_prefix: a, hardlinks_deduped: maybe}", "true or false"),
        ("- just\n- a list\n", "mapping at the top level"),
        ("{buildpath: [unclosed", "not valid YAML"),
        ("", "mapping at the top level"),
    ],
)
def test_malformed_build_info(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason.replace("(", r"\(")):
        parse_build_info(text, dag_hash="h")


def test_the_fast_loader_reads_what_the_python_loader_reads(texts: dict[str, str]) -> None:
    """libyaml's loader is used when PyYAML has it; it must build the same data."""
    assert yaml.__with_libyaml__ and SAFE_LOADER is yaml.CSafeLoader
    documents = [
        *texts.values(),
        "{buildpath: /r, relative_prefix: a, hash_to_prefix: {0123: /r/a}, n: 1e3, t: yes}",
        "buildpath: '/r'\nrelative_prefix: \"a b\"\nrelocate_links: [x, 'y z']\n",
        "{buildpath: /r, relative_prefix: a, when: 2024-01-02, empty: ~, nested: [[1], {a: b}]}",
    ]
    for text in documents:
        assert yaml.load(text, Loader=yaml.CSafeLoader) == yaml.load(text, Loader=yaml.SafeLoader)
    for text, dag_hash in zip(texts.values(), texts, strict=True):
        assert parse_build_info(text, dag_hash=dag_hash).relocate_binaries


@pytest.mark.parametrize("text", ["!!python/object:os.system {}\n", "{a: !!python/name:os.system}"])
def test_the_fast_loader_is_still_safe(text: str) -> None:
    with pytest.raises(ValueError, match="not valid YAML"):
        parse_build_info(text)
