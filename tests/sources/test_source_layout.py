"""Where a source goes in a Spack source mirror: the archive's extension and the two paths."""

from __future__ import annotations

import pytest
from source_mirror_support import GREETLIB_ARCHIVE, GREETLIB_LINK, GREETLIB_SHA256

from reconcile.errors import ReconcileError
from reconcile.manifest.model import Source
from reconcile.sources.layout import archive_extension, source_paths


@pytest.mark.parametrize(
    ("url", "extension"),
    [
        ("https://example.org/greetlib-2.1.tar.gz", "tar.gz"),
        ("https://example.org/greetlib-2.1.tgz", "tgz"),
        ("https://example.org/greetlib-2.1.tar.bz2", "tar.bz2"),
        ("https://example.org/greetlib-2.1.tbz2", "tbz2"),
        ("https://example.org/greetlib-2.1.tar.xz", "tar.xz"),
        ("https://example.org/greetlib-2.1.txz", "txz"),
        ("https://example.org/greetlib-2.1.tar.zst", "tar.zst"),
        ("https://example.org/greetlib-2.1.tar", "tar"),
        ("https://example.org/greetlib-2.1.zip", "zip"),
        ("https://example.org/greetlib.gz", "gz"),
        ("https://example.org/greetlib.bz2", "bz2"),
        ("https://example.org/greetlib.xz", "xz"),
        # the query and fragment are not part of the file name
        ("https://example.org/dl/greetlib-2.1.tar.gz?token=abc.zip#x.tar", "tar.gz"),
        ("s3://bucket/sources/greetlib-2.1.tar.bz2", "tar.bz2"),
        ("file:///srv/archives/greetlib%2D2.1.tar.xz", "tar.xz"),
        ("../archives/greetlib-2.1.tar.gz", "tar.gz"),
        # not an archive extension: the last suffix, if it is a plain one
        ("https://example.org/greet.c", "c"),
        ("https://example.org/greetlib-2.1.7z", "7z"),
        ("https://example.org/download", ""),
        ("https://example.org/.tar.gz", "gz"),
        ("https://example.org/greetlib.ta%20r", ""),
        # a percent-encoded '/' cannot smuggle a folder into the mirror
        ("https://example.org/greetlib.x%2F..", ""),
    ],
)
def test_the_extension_comes_from_the_url_file_name(url: str, extension: str) -> None:
    assert archive_extension(url) == extension


def test_paths_match_spacks_layout() -> None:
    source = Source(
        name="greetlib",
        version="2.1",
        url="https://example.org/greetlib-2.1.tar.gz",
        sha256=GREETLIB_SHA256,
        mirror="m",
    )
    paths = source_paths(source)
    assert paths.archive == GREETLIB_ARCHIVE
    assert paths.link == GREETLIB_LINK
    assert paths.link_target == f"../{GREETLIB_ARCHIVE}"


def test_a_source_without_extension_keeps_bare_names() -> None:
    source = Source(
        name="tool", version="1.0", url="https://example.org/download", sha256="ab" * 32, mirror="m"
    )
    paths = source_paths(source)
    assert (paths.archive, paths.link) == (f"_source-cache/archive/ab/{'ab' * 32}", "tool/tool-1.0")


@pytest.mark.parametrize(
    ("name", "version", "sha256", "problem"),
    [
        ("../etc", "1.0", "ab" * 32, "invalid source name '../etc'"),
        ("tool", "..", "ab" * 32, "invalid version '..'"),
        ("tool", "1.0", "AB" * 32, "is not 64 lower-case hexadecimal digits"),
        ("tool", "1.0", "ab" * 31, "is not 64 lower-case hexadecimal digits"),
    ],
)
def test_unsafe_sources_are_refused(name: str, version: str, sha256: str, problem: str) -> None:
    source = Source(
        name=name, version=version, url="https://example.org/x.tgz", sha256=sha256, mirror="m"
    )
    with pytest.raises(ReconcileError) as caught:
        source_paths(source)
    assert problem in caught.value.message
    assert caught.value.reference == "invalid-source"
