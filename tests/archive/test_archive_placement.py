"""Writing members straight into the prefix when the prefix shows early, and falling back to
the archive's own layout when it does not: the outcome is always that of the plain layout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hostile import (
    ATTACKS,
    DAG_HASH,
    ESCAPED,
    PREFIX,
    Member,
    binary_distribution,
    binary_distribution_text,
    build_tarball,
    package_body,
    parent_folders,
    spack_tarball,
)
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from reconcile.archive.names import Parts
from reconcile.archive.placement import MEMBERS, Layouts, Placement
from reconcile.archive.reader import open_tar
from reconcile.archive.rules import MemberTable
from reconcile.archive.unpack import unpack_package
from reconcile.archive.writer import MAX_OPEN_DEPTH, SafeTree
from reconcile.errors import ArchiveError
from reconcile.folders import process_umask

Outcome = tuple[str, object]
MARKER = b"{buildpath: /opt, relative_prefix: pkg}\n"  # a binary_distribution that parses


def parts(name: str) -> Parts:
    return tuple(name.split("/"))


def snapshot(prefix: Path) -> dict[str, tuple[str, int, object]]:
    """Everything below ``prefix``: kind, mode, and contents, link target or inode group."""
    seen: dict[str, tuple[str, int, object]] = {".": ("folder", prefix.stat().st_mode, None)}
    inodes: dict[int, str] = {}
    for folder, folders, files in os.walk(prefix):
        for name in sorted(folders + files):
            path = Path(folder, name)
            info = path.lstat()
            relative = str(path.relative_to(prefix))
            if path.is_symlink():
                seen[relative] = ("symlink", info.st_mode, os.readlink(path))
            elif path.is_dir():
                # Not the mtime: an implied folder's is the time it was made.
                seen[relative] = ("folder", info.st_mode, None)
            else:
                first_name = inodes.setdefault(info.st_ino, relative)
                content = (path.read_bytes(), info.st_mtime_ns, first_name)
                seen[relative] = ("file", info.st_mode, content)
    return seen


def outcome(tarball: Path, staging: Path, **options: object) -> Outcome:
    """What unpacking gives: the prefix's name and snapshot, or the refusal (with the staging
    folder's name left out, as it differs between the runs compared)."""
    try:
        unpacked = unpack_package(
            tarball,
            staging,
            signed_size=tarball.stat().st_size,
            **options,  # type: ignore[arg-type]
        )
    except ArchiveError as error:
        message = str(error).replace(str(staging), "<staging>")
        return ("refused", message)
    return ("unpacked", (unpacked.member_prefix, snapshot(unpacked.prefix_dir)))


def reference(tarball: Path, staging: Path) -> Outcome:
    return outcome(tarball, staging, guess_prefix=False)


def place_all(tarball: Path, staging: Path, dag_hash: str | None) -> tuple[Placement, Path]:
    """Unpack as ``unpack_package`` does, step by step, to look at the placement on the way."""
    staging.mkdir()
    with SafeTree(staging, umask=process_umask()) as tree:
        table = MemberTable()
        placement = Placement(tree, prefix_name="prefix", dag_hash=dag_hash)
        with open_tar(tarball) as archive:
            for info in archive.members():
                placement.create(table.admit(info), archive.data)
        layout = table.finish()
        placement.settle(layout)
        placement.finish(layout)
    return placement, staging / "prefix"


def test_spack_layout_is_written_in_place_and_no_parent_folder_is_made(tmp_path: Path) -> None:
    tarball = spack_tarball(tmp_path / "t.spack")
    staging = tmp_path / "staging"
    staging.mkdir()
    with SafeTree(staging, umask=process_umask()) as tree:
        table = MemberTable()
        placement = Placement(tree, prefix_name="prefix", dag_hash=DAG_HASH)
        with open_tar(tarball) as archive:
            for info in archive.members():
                placement.create(table.admit(info), archive.data)
        # Before the end: the members are already where the prefix's content goes.
        assert placement.layout is Layouts.GUESSED
        assert placement.guess == parts(PREFIX)
        assert os.listdir(staging) == ["prefix"]
        assert sorted(os.listdir(staging / "prefix")) == [".spack", "bin", "lib", "share"]
    unpacked = outcome(tarball, tmp_path / "again", dag_hash=DAG_HASH)
    assert unpacked == reference(tarball, tmp_path / "reference")


def test_without_the_hash_the_spack_folder_shows_the_prefix(tmp_path: Path) -> None:
    tarball = spack_tarball(tmp_path / "t.spack")
    placement, prefix = place_all(tarball, tmp_path / "staging", dag_hash=None)
    assert placement.layout is Layouts.GUESSED and placement.guess == parts(PREFIX)
    assert (prefix / "bin/tool").read_bytes() == b"#!/bin/sh\necho tool\n"
    assert outcome(tarball, tmp_path / "s2") == reference(tarball, tmp_path / "ref")


def test_a_file_before_any_sign_of_the_prefix_uses_the_archive_layout(tmp_path: Path) -> None:
    """No hash in any name and a file first: nothing to guess from, the plain path works."""
    prefix = "opt/root/plainname"
    members = [
        Member(f"{prefix}/notes.txt", data=b"first\n"),
        *package_body(prefix),
        binary_distribution(prefix, binary_distribution_text(prefix)),
    ]
    tarball = build_tarball(tmp_path / "t.spack", members)
    placement, unpacked = place_all(tarball, tmp_path / "staging", dag_hash=None)
    assert placement.layout is Layouts.ARCHIVE
    assert (unpacked / "notes.txt").read_bytes() == b"first\n"
    assert not (tmp_path / "staging" / MEMBERS[0]).exists()
    assert outcome(tarball, tmp_path / "s2") == reference(tarball, tmp_path / "ref")


def test_a_wrong_guess_is_given_up_when_a_member_does_not_fit(tmp_path: Path) -> None:
    """A folder inside the prefix is named after the hash; the real prefix shows later."""
    prefix = "opt/root/plainname"
    inner = f"{prefix}/share/data-{DAG_HASH}"
    members = [
        *parent_folders(prefix),
        Member(f"{prefix}/share", "dir"),
        Member(inner, "dir", mode=0o750),
        Member(f"{inner}/file.txt", data=b"in the hash folder\n"),
        Member(f"{prefix}/bin/tool", data=b"tool\n", mode=0o755),  # outside the guess
        binary_distribution(prefix, binary_distribution_text(prefix)),
    ]
    tarball = build_tarball(tmp_path / "t.spack", members)
    placement, unpacked = place_all(tarball, tmp_path / "staging", dag_hash=DAG_HASH)
    assert placement.layout is Layouts.ARCHIVE
    assert (unpacked / f"share/data-{DAG_HASH}/file.txt").read_bytes() == b"in the hash folder\n"
    assert (unpacked / "bin/tool").read_bytes() == b"tool\n"
    assert sorted(os.listdir(tmp_path / "staging")) == ["prefix"]
    got = outcome(tarball, tmp_path / "s2", dag_hash=DAG_HASH, restore_modes=True)
    assert got == reference(tarball, tmp_path / "ref")


def test_a_prefix_below_the_guess_is_moved_out_of_it(tmp_path: Path) -> None:
    """The hash folder holds the real prefix one level down: the guess is kept and the
    real prefix renamed out of it."""
    guess = f"opt/root/pkg-1.0-{DAG_HASH}"
    prefix = f"{guess}/inner"
    members = [
        *parent_folders(prefix),
        *package_body(prefix),
        binary_distribution(prefix, binary_distribution_text(prefix)),
    ]
    tarball = build_tarball(tmp_path / "t.spack", members)
    placement, unpacked = place_all(tarball, tmp_path / "staging", dag_hash=DAG_HASH)
    assert placement.layout is Layouts.GUESSED and placement.guess == parts(guess)
    assert (unpacked / "share/victim/readme.txt").is_file()
    assert sorted(os.listdir(tmp_path / "staging")) == ["prefix"]
    got = outcome(tarball, tmp_path / "s2", dag_hash=DAG_HASH)
    assert got[0] == "unpacked" and got == reference(tarball, tmp_path / "ref")


def test_a_member_beside_the_real_prefix_inside_the_guess_is_refused(tmp_path: Path) -> None:
    guess = f"opt/root/pkg-1.0-{DAG_HASH}"
    prefix = f"{guess}/inner"
    members = [
        *parent_folders(prefix),
        *package_body(prefix),
        Member(f"{guess}/{ESCAPED}", data=b"beside\n"),
        binary_distribution(prefix, binary_distribution_text(prefix)),
    ]
    tarball = build_tarball(tmp_path / "t.spack", members)
    got = outcome(tarball, tmp_path / "s", dag_hash=DAG_HASH)
    assert got[0] == "refused" and "rule 'outside-prefix'" in str(got[1])
    assert got == reference(tarball, tmp_path / "ref")


def test_a_marker_above_the_guess_lays_the_archive_out_at_the_end(tmp_path: Path) -> None:
    """Only binary_distribution, in a folder whose name ends with the "hash" passed: the guess
    is ``.spack`` itself and the marker says the prefix is its parent."""
    members = [
        Member("opt", "dir"),
        Member("opt/pkg", "dir"),
        Member("opt/pkg/.spack", "dir"),
        Member("opt/pkg/.spack/binary_distribution", data=MARKER),
    ]
    tarball = build_tarball(tmp_path / "t.spack", members)
    placement, unpacked = place_all(tarball, tmp_path / "staging", dag_hash="spack")
    assert placement.layout is Layouts.ARCHIVE
    assert (unpacked / ".spack/binary_distribution").read_bytes() == MARKER
    assert sorted(os.listdir(tmp_path / "staging")) == ["prefix"]


def test_a_hard_link_to_a_file_outside_the_guess_is_refused_as_before(tmp_path: Path) -> None:
    tarball = spack_tarball(
        tmp_path / "t.spack",
        [
            Member("opt/hostile/shared.txt", data=b"x\n"),
            Member(f"{PREFIX}/lib/shared", "hardlink", linkname="opt/hostile/shared.txt"),
        ],
    )
    got = outcome(tarball, tmp_path / "s", dag_hash=DAG_HASH)
    assert got[0] == "refused" and "rule 'outside-prefix'" in str(got[1])
    assert got == reference(tarball, tmp_path / "ref")


def test_deep_folders_keep_few_descriptors_open(tmp_path: Path) -> None:
    deep = "/".join(f"d{level}" for level in range(MAX_OPEN_DEPTH + 20))
    tarball = spack_tarball(
        tmp_path / "t.spack",
        [
            Member(f"{PREFIX}/{deep}/bottom.txt", data=b"deep\n"),
            Member(f"{PREFIX}/{deep[:-4]}/beside.txt", data=b"beside\n"),
            Member(f"{PREFIX}/lib/after", data=b"after\n"),
        ],
    )
    before = len(os.listdir("/proc/self/fd"))
    got = outcome(tarball, tmp_path / "s", dag_hash=DAG_HASH)
    assert len(os.listdir("/proc/self/fd")) == before
    assert got[0] == "unpacked"
    assert got == reference(tarball, tmp_path / "ref")
    files = got[1][1]  # type: ignore[index]
    assert files[f"{deep}/bottom.txt"][2][0] == b"deep\n"


@pytest.mark.parametrize("name", sorted(n for n, a in ATTACKS.items() if a.stage == "unpack"))
@pytest.mark.parametrize(
    "options",
    [{"dag_hash": DAG_HASH}, {"dag_hash": None}, {"dag_hash": DAG_HASH, "guess_prefix": False}],
    ids=["hash", "no-hash", "no-guess"],
)
def test_every_attack_is_refused_whatever_the_layout(
    name: str, options: dict[str, object], tmp_path: Path
) -> None:
    tarball = ATTACKS[name].build(tmp_path / f"{name}.spack")
    got = outcome(tarball, tmp_path / "staging", **options)
    assert got[0] == "refused" and f"rule '{ATTACKS[name].rule}'" in str(got[1])
    assert not [p for p in tmp_path.rglob(ESCAPED) if (tmp_path / "staging") not in p.parents]


# -- any archive: the guessing layout gives what the plain one gives ------------------------

_PREFIXES = ["opt", f"opt/pkg-{DAG_HASH}", f"opt/pkg-{DAG_HASH}/a"]
_COMPONENTS = [".spack", "bin", "a", "b"]


@st.composite
def archives(draw: st.DrawFn) -> list[Member]:
    """Small archives around a few prefixes, mostly well formed, so that guesses that hold,
    guesses given up, second prefixes, links and refusals all come up."""
    paths = st.builds(
        lambda prefix, rest: "/".join([prefix, *rest]),
        st.sampled_from(_PREFIXES),
        st.lists(st.sampled_from(_COMPONENTS), max_size=3),
    )
    names = draw(st.lists(paths, min_size=1, max_size=8, unique=True))
    if draw(st.booleans()):
        names.sort()  # folders before what they hold, as Spack writes them
    members: list[Member] = []
    for name in names:
        holds_others = any(other.startswith(name + "/") for other in names)
        kind = "dir" if holds_others else draw(st.sampled_from(["file", "file", "dir", "link"]))
        files = [m.name for m in members if m.kind == "file"]
        if kind == "link" and files and draw(st.booleans()):
            members.append(Member(name, "hardlink", linkname=draw(st.sampled_from(files))))
        elif kind == "link":
            target = draw(st.sampled_from(["a", "../a", "/abs/a", "bin/../a"]))
            members.append(Member(name, "symlink", linkname=target))
        elif kind == "dir":
            members.append(Member(name, "dir", mode=draw(st.sampled_from([0o755, 0o700]))))
        else:
            members.append(Member(name, data=name.encode(), mode=0o644))
    if draw(st.integers(min_value=0, max_value=4)) != 4:  # mostly with a marker
        marker = draw(st.sampled_from(_PREFIXES))
        members.append(Member(f"{marker}/.spack/binary_distribution", data=MARKER))
    return members


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(members=archives(), with_hash=st.booleans())
def test_guessing_never_changes_the_outcome(
    members: list[Member], with_hash: bool, tmp_path: Path
) -> None:
    work = tmp_path / os.urandom(6).hex()  # tmp_path is shared by the examples
    work.mkdir()
    tarball = build_tarball(work / "t.spack", members)
    dag_hash = DAG_HASH if with_hash else None
    guessed = outcome(tarball, work / "guessed", dag_hash=dag_hash)
    plain = outcome(tarball, work / "plain", dag_hash=dag_hash, guess_prefix=False)
    event(guessed[0])
    assert guessed == plain
