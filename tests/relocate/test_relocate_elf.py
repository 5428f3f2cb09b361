"""Relocating real ELF programs compiled here, then running them from the new prefix."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest
from relocate_support import (
    DEMO_HASH,
    DEMO_RELATIVE,
    DemoBuild,
    build_demo,
    install_copy,
    root_of_length,
    run,
    snapshot,
)

from reconcile.errors import RelocationError
from reconcile.relocate.elf import read_elf_strings
from reconcile.relocate.package import relocate_package
from reconcile.relocate.prefix_map import build_prefix_map

OLD_ROOT_LENGTH = 150
BuildDemo = Callable[..., DemoBuild]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> BuildDemo:
    """Builds each variant once per module; tests install copies of it."""
    base = tmp_path_factory.mktemp("demo")
    built: dict[tuple[bool, bool, bool], DemoBuild] = {}

    def get(
        *, new_dtags: bool = False, cstrings: bool = False, own_loader: bool = False
    ) -> DemoBuild:
        key = (new_dtags, cstrings, own_loader)
        if key not in built:
            old_root = root_of_length(base / "old", OLD_ROOT_LENGTH)
            workspace = base / "-".join(str(int(flag)) for flag in key)
            built[key] = build_demo(
                workspace,
                old_root=old_root,
                new_dtags=new_dtags,
                cstrings=cstrings,
                own_loader=own_loader,
            )
        return built[key]

    return get


def install(build: DemoBuild, tmp_path: Path, root_length: int) -> tuple[str, Path]:
    """Copy ``build`` under a new root of ``root_length`` characters and relocate it there."""
    new_root = root_of_length(tmp_path, root_length)
    prefix = install_copy(build.store, f"{new_root}/{DEMO_RELATIVE}")
    prefix_map = build_prefix_map(
        build.build_info,
        own_hash=DEMO_HASH,
        new_prefixes={DEMO_HASH: str(prefix)},
        new_root=new_root,
    )
    relocate_package(prefix, build.build_info, prefix_map)
    return new_root, prefix


def search_path_of(program: Path) -> dict[str, str]:
    with program.open("rb") as stream:
        data = stream.read()
    return {s.kind: s.value for s in read_elf_strings(program, data)}


@pytest.mark.parametrize("new_dtags", [False, True], ids=["rpath", "runpath"])
@pytest.mark.parametrize("longer", [False, True], ids=["shorter-root", "longer-root"])
def test_search_path_and_interpreter_are_relocated_and_the_program_runs(
    demo: BuildDemo, tmp_path: Path, new_dtags: bool, longer: bool
) -> None:
    build = demo(new_dtags=new_dtags, own_loader=True)
    length = OLD_ROOT_LENGTH + 40 if longer else OLD_ROOT_LENGTH - 40
    _, prefix = install(build, tmp_path, length)
    program = prefix / "bin/program"

    result = run(program)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "greetings from libgreet\n"
    strings = search_path_of(program)
    tag = "DT_RUNPATH" if new_dtags else "DT_RPATH"
    # The tag is kept (patchelf would turn RPATH into RUNPATH if not told otherwise), and
    # only the entry under the old prefix changes.
    assert set(strings) == {tag, "PT_INTERP"}
    assert strings[tag] == f"{prefix}/lib:$ORIGIN/../nowhere:/usr/local/lib/untouched"
    assert strings["PT_INTERP"] == f"{prefix}/lib/ld.so"
    assert os.access(program, os.X_OK)
    assert stat.S_IMODE(program.stat().st_mode) == stat.S_IMODE(
        (build.store / "bin/program").stat().st_mode
    )
    # Nothing in the program names the old root any more (patchelf does not leave the old
    # string table readable either).
    assert build.old_root.encode() not in program.read_bytes()


@pytest.mark.parametrize("shrink", [40, 3], ids=["moved-tail", "padded-with-slashes"])
def test_c_strings_shrink_and_the_printed_paths_are_the_new_prefix(
    demo: BuildDemo, tmp_path: Path, shrink: int
) -> None:
    build = demo(cstrings=True)
    _, prefix = install(build, tmp_path, OLD_ROOT_LENGTH - shrink)

    result = run(prefix / "bin/program")

    assert result.returncode == 0, result.stderr
    printed_prefix, printed_data, greeting = result.stdout.splitlines()
    assert greeting == "greetings from libgreet"
    assert os.path.samefile(printed_prefix, prefix)
    assert os.path.samefile(printed_data, prefix / "share/demo/data.txt")
    # Same byte length as before: shrinking by more than 7 moves the (empty) tail, otherwise
    # Spack's leading slashes; the long tail "/share/demo/data.txt" is always padded.
    if shrink > 7:
        assert printed_prefix == str(prefix)
    else:
        assert printed_prefix == "/" * shrink + str(prefix)
    assert printed_data == "/" * shrink + f"{prefix}/share/demo/data.txt"
    assert len(printed_data) == len(build.old_prefix) + len("/share/demo/data.txt")
    # The text file changed length.
    assert (prefix / "share/demo/data.txt").read_text() == f"data of the demo at {prefix}\n"


def test_a_c_string_that_would_grow_is_refused_and_nothing_changes(
    demo: BuildDemo, tmp_path: Path
) -> None:
    build = demo(cstrings=True)
    new_root = root_of_length(tmp_path, OLD_ROOT_LENGTH + 5)
    prefix = install_copy(build.store, f"{new_root}/{DEMO_RELATIVE}")
    before = snapshot(prefix)
    prefix_map = build_prefix_map(
        build.build_info,
        own_hash=DEMO_HASH,
        new_prefixes={DEMO_HASH: str(prefix)},
        new_root=new_root,
    )

    with pytest.raises(RelocationError) as caught:
        relocate_package(prefix, build.build_info, prefix_map)

    error = caught.value
    assert error.reference == "cannot-grow-string"
    assert "bin/program" in error.message
    assert build.old_prefix in error.message and str(prefix) in error.message
    assert f"({len(build.old_prefix)} characters)" in error.message
    assert f"({len(str(prefix))} characters)" in error.message
    assert error.hint is not None and "padded_length" in error.hint
    assert str(OLD_ROOT_LENGTH) in error.hint
    assert snapshot(prefix) == before  # not even the text file or the RPATH was touched


def test_a_missing_patchelf_is_reported_before_anything_changes(
    demo: BuildDemo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = demo(own_loader=True)
    new_root = root_of_length(tmp_path, OLD_ROOT_LENGTH + 40)
    prefix = install_copy(build.store, f"{new_root}/{DEMO_RELATIVE}")
    before = snapshot(prefix)
    prefix_map = build_prefix_map(
        build.build_info,
        own_hash=DEMO_HASH,
        new_prefixes={DEMO_HASH: str(prefix)},
        new_root=new_root,
    )
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))

    with pytest.raises(RelocationError) as caught:
        relocate_package(prefix, build.build_info, prefix_map)

    assert caught.value.reference == "patchelf-missing"
    assert caught.value.hint is not None and "patchelf" in caught.value.hint
    assert snapshot(prefix) == before


def test_a_read_only_binary_is_relocated_and_stays_read_only(
    demo: BuildDemo, tmp_path: Path
) -> None:
    build = demo(cstrings=True, own_loader=True)
    new_root = root_of_length(tmp_path, OLD_ROOT_LENGTH - 20)
    prefix = install_copy(build.store, f"{new_root}/{DEMO_RELATIVE}")
    program = prefix / "bin/program"
    program.chmod(0o555)
    prefix_map = build_prefix_map(
        build.build_info,
        own_hash=DEMO_HASH,
        new_prefixes={DEMO_HASH: str(prefix)},
        new_root=new_root,
    )

    relocate_package(prefix, build.build_info, prefix_map)

    assert stat.S_IMODE(program.stat().st_mode) == 0o555
    result = run(program)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == str(prefix)


def test_a_mach_o_file_listed_as_binary_is_refused_before_anything_changes(
    demo: BuildDemo, tmp_path: Path
) -> None:
    build = demo(cstrings=True)
    new_root = root_of_length(tmp_path, OLD_ROOT_LENGTH - 20)
    prefix = install_copy(build.store, f"{new_root}/{DEMO_RELATIVE}")
    (prefix / "lib/libmac.dylib").write_bytes(b"\xcf\xfa\xed\xfe" + b"\0" * 60)
    info = attrs.evolve(
        build.build_info,
        relocate_binaries=(*build.build_info.relocate_binaries, "lib/libmac.dylib"),
    )
    before = snapshot(prefix)
    prefix_map = build_prefix_map(
        info, own_hash=DEMO_HASH, new_prefixes={DEMO_HASH: str(prefix)}, new_root=new_root
    )

    with pytest.raises(RelocationError) as caught:
        relocate_package(prefix, info, prefix_map)

    assert caught.value.reference == "not-elf"
    assert "libmac.dylib" in caught.value.message
    assert "Mach-O" in caught.value.message
    assert snapshot(prefix) == before


def test_a_binary_listed_under_two_hard_linked_names_is_relocated_once(
    demo: BuildDemo, tmp_path: Path
) -> None:
    build = demo(own_loader=True)
    new_root = root_of_length(tmp_path, OLD_ROOT_LENGTH + 40)  # patchelf rewrites it
    prefix = install_copy(build.store, f"{new_root}/{DEMO_RELATIVE}")
    os.link(prefix / "bin/program", prefix / "bin/program-again")
    info = attrs.evolve(
        build.build_info,
        relocate_binaries=(*build.build_info.relocate_binaries, "bin/program-again"),
    )
    prefix_map = build_prefix_map(
        info, own_hash=DEMO_HASH, new_prefixes={DEMO_HASH: str(prefix)}, new_root=new_root
    )

    relocate_package(prefix, info, prefix_map)

    for name in ("bin/program", "bin/program-again"):
        result = run(prefix / name)
        assert result.returncode == 0, result.stderr
        assert search_path_of(prefix / name)["PT_INTERP"] == f"{prefix}/lib/ld.so"
