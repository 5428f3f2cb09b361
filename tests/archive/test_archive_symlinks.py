"""check_symlinks on real folders, and the pure pieces it and the member rules rest on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconcile.archive.names import header_stands_for
from reconcile.archive.symlinks import ReadLink, escape_reason
from reconcile.archive.unpack import check_symlinks
from reconcile.errors import ArchiveError

FINAL = "/opt/root/pkg-1.0"
DEPENDENCY = "/opt/root/dep-2.0"


@pytest.fixture
def prefix(tmp_path: Path) -> Path:
    """A relocated prefix in staging, with the links any package may have."""
    root = tmp_path / "prefix"
    (root / "lib" / "sub").mkdir(parents=True)
    (root / "bin").mkdir()
    (root / "lib" / "libx.so.1").write_bytes(b"x")
    (root / "lib" / "libx.so").symlink_to("libx.so.1")
    (root / "lib" / "sub" / "up").symlink_to("../libx.so.1")
    (root / "bin" / "self").symlink_to(f"{FINAL}/lib/libx.so.1")
    (root / "bin" / "dep").symlink_to(f"{DEPENDENCY}/lib/libdep.so")
    (root / "bin" / "dangling").symlink_to("../share/not-there")
    (root / "lib" / "here").symlink_to(".")
    return root


def check(root: Path, *extra: str) -> None:
    check_symlinks(root, final_prefix=FINAL, allowed_prefixes=(DEPENDENCY, *extra))


def test_ordinary_links_pass(prefix: Path) -> None:
    check(prefix)


@pytest.mark.parametrize(
    ("where", "target", "reason"),
    [
        ("lib/escape", "../../etc/passwd", "climbs above"),
        ("lib/t", "here/here/../../../x", "climbs above"),
        ("bin/etc", "/etc/passwd", "outside this prefix"),
        ("bin/sibling", "/opt/root/dep-2.0-evil/lib", "outside this prefix"),
        ("bin/dots", f"{FINAL}/lib/../../escape", "must not contain '..'"),
        ("bin/via-self", f"{FINAL}/lib/here/here/x", None),
        ("bin/deep-self", f"{FINAL}/lib/sub/up/../../../x", "must not contain '..'"),
        ("bin/through-abs", "self/../../x", "climbs with '..' out of the absolute symlink"),
    ],
)
def test_escaping_links_are_refused(
    prefix: Path, where: str, target: str, reason: str | None
) -> None:
    (prefix / where).symlink_to(target)
    if reason is None:
        check(prefix)  # resolved inside the prefix, through links that stay inside
        return
    with pytest.raises(ArchiveError) as caught:
        check(prefix)
    message = str(caught.value)
    assert str(prefix / where) in message and repr(target) in message and reason in message
    assert caught.value.hint is not None and "hostile" in caught.value.hint


def test_externals_are_allowed_only_when_named(prefix: Path) -> None:
    (prefix / "lib" / "libc").symlink_to("/usr/lib/x86_64-linux-gnu/libc.so.6")
    with pytest.raises(ArchiveError):
        check(prefix)
    check(prefix, "/usr")


def test_links_inside_folders_of_any_depth_are_found(prefix: Path) -> None:
    deep = prefix / "a" / "b" / "c"
    deep.mkdir(parents=True)
    (deep / "out").symlink_to("../../../../x")
    with pytest.raises(ArchiveError, match="a/b/c/out"):
        check(prefix)


def test_links_to_folders_are_not_descended(prefix: Path, tmp_path: Path) -> None:
    """A link to a folder is checked as a link; what lies behind it is not this prefix's."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "bad").symlink_to("/etc/passwd")
    (prefix / "lib" / "dep-folder").symlink_to(f"{DEPENDENCY}/lib")
    check(prefix)


def test_final_prefix_must_be_absolute(prefix: Path) -> None:
    with pytest.raises(ValueError, match="absolute"):
        check_symlinks(prefix, final_prefix="opt/x", allowed_prefixes=())


def read_links(links: dict[tuple[str, ...], str]) -> ReadLink:
    return links.get


def test_escape_reason_follows_intermediate_links_only() -> None:
    links: dict[tuple[str, ...], str] = {("lib", "s"): ".", ("lib", "loop"): "loop/x"}
    assert escape_reason(("lib",), "s/s/../x", read_links(links)) is None
    assert escape_reason(("lib",), "s/s/../../x", read_links(links)) is not None
    assert escape_reason(("lib",), "s", read_links(links)) is None
    assert "loop" in str(escape_reason(("lib",), "loop/x/y", read_links(links)))
    assert escape_reason((), "..", read_links({})) == "it climbs above the package prefix"
    assert escape_reason(("a",), "..", read_links({})) is None


@pytest.mark.parametrize(
    ("header", "effective", "faithful"),
    [
        ("a/b", "a/b", True),
        ("a/b/", "a/b", True),
        ("x" * 100, "x" * 150, True),  # truncated by the writer: the name did not fit
        ("x" * 99, "x" * 150, False),  # a shorter header is not the writer's truncation
        ("?.txt", "é.txt", True),  # Python's tarfile writes non-ASCII as '?'
        ("a/b", "a/c", False),
        ("safe", "safe/../../etc", False),
        ("x" * 100, "x" * 100, True),
        ("y" + "x" * 99, "x" * 150, False),
    ],
)
def test_header_stands_for(header: str, effective: str, faithful: bool) -> None:
    assert header_stands_for(header, effective) is faithful


def test_check_does_not_follow_links_to_list_folders(tmp_path: Path) -> None:
    root = tmp_path / "prefix"
    root.mkdir()
    os.symlink("/", root / "rootfs")
    with pytest.raises(ArchiveError, match="rootfs"):
        check(root)
