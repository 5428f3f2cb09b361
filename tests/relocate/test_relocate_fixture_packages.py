"""The Spack-made fixture packages (hello-app, greetlib, gcc-runtime), unpacked with plain
tarfile, moved to a new root, relocated, then run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import GCC_RUNTIME_HASH, GLIBC_HASH, GREETLIB_HASH, HELLO_HASH, SIGNED_CACHE
from relocate_support import (
    FixturePackage,
    install_copy,
    root_of_length,
    run,
    snapshot,
    unpack_fixture_packages,
)

from reconcile.errors import RelocationError
from reconcile.relocate.package import relocate_package
from reconcile.relocate.prefix_map import build_prefix_map

BUILD_ROOT_LENGTH = 128


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, FixturePackage]:
    return unpack_fixture_packages(SIGNED_CACHE, tmp_path_factory.mktemp("fixture-store"))


def install_closure(packages: dict[str, FixturePackage], new_root: str) -> dict[str, Path]:
    """Copy every package to ``new_root``/<relative prefix> and relocate each one."""
    new_prefixes = {
        dag_hash: f"{new_root}/{package.build_info.relative_prefix}"
        for dag_hash, package in packages.items()
    }
    for dag_hash, package in packages.items():
        prefix = install_copy(package.store, new_prefixes[dag_hash])
        prefix_map = build_prefix_map(
            package.build_info, own_hash=dag_hash, new_prefixes=new_prefixes, new_root=new_root
        )
        relocate_package(prefix, package.build_info, prefix_map)
    return {dag_hash: Path(prefix) for dag_hash, prefix in new_prefixes.items()}


def test_the_fixture_packages_were_built_under_a_padded_root(
    packages: dict[str, FixturePackage],
) -> None:
    assert set(packages) == {HELLO_HASH, GREETLIB_HASH, GCC_RUNTIME_HASH}
    for package in packages.values():
        assert len(package.build_info.buildpath) == BUILD_ROOT_LENGTH
        assert not os.path.exists(package.build_info.old_prefix)  # only relocation can help
    # glibc is an external: hello-app depends on it but no tarball records its prefix.
    assert GLIBC_HASH not in packages[HELLO_HASH].build_info.hash_to_prefix


@pytest.mark.parametrize("padded", [False, True], ids=["shorter-root", "padded-root"])
def test_relocated_hello_app_runs_and_names_its_new_prefixes(
    packages: dict[str, FixturePackage], tmp_path: Path, padded: bool
) -> None:
    new_root = root_of_length(tmp_path, BUILD_ROOT_LENGTH) if padded else str(tmp_path / "sw")
    assert len(new_root) <= BUILD_ROOT_LENGTH

    prefixes = install_closure(packages, new_root)

    hello, greetlib = prefixes[HELLO_HASH], prefixes[GREETLIB_HASH]
    for program in ("bin/hello-app", "bin/ha", "bin/hello-app-wrapper"):
        result = run(hello / program)
        assert result.returncode == 0, (program, result.stderr)
        lines = result.stdout.splitlines()
        assert len(lines) == 4, result.stdout
        installed_at = lines[0].removeprefix("hello-app 3.0 installed at ")
        message_file = lines[1].removeprefix("greetlib message file: ")
        assert os.path.samefile(installed_at, hello)
        assert os.path.samefile(message_file, greetlib / "share/greetlib/message.txt")
        assert lines[2] == "greetlib 2.1 says hello."
        assert lines[3] == f"this message file lives in {greetlib}/share/greetlib"

    assert (greetlib / "lib/pkgconfig/greet2.pc").read_text().startswith(f"prefix={greetlib}\n")
    wrapper = (hello / "bin/hello-app-wrapper").read_text()
    assert f"exec {hello}/bin/hello-app " in wrapper
    assert os.access(hello / "bin/hello-app-wrapper", os.X_OK)
    link = hello / "share/hello-app/greetlib-message"
    assert os.readlink(link) == f"{greetlib}/share/greetlib/message.txt"
    assert os.readlink(hello / "bin/ha") == "hello-app"
    assert os.readlink(greetlib / "lib/libgreet2.so") == "libgreet2.so.2"
    # No relocated file keeps a path into the old build root.
    old_root = packages[HELLO_HASH].build_info.buildpath.encode()
    for dag_hash, package in packages.items():
        info = package.build_info
        for relative in info.relocate_textfiles + info.relocate_binaries:
            assert old_root not in (prefixes[dag_hash] / relative).read_bytes(), relative


def test_a_root_longer_than_the_build_root_is_refused_before_any_change(
    packages: dict[str, FixturePackage], tmp_path: Path
) -> None:
    new_root = root_of_length(tmp_path, BUILD_ROOT_LENGTH + 1)
    hello = packages[HELLO_HASH]
    new_prefixes = {
        dag_hash: f"{new_root}/{package.build_info.relative_prefix}"
        for dag_hash, package in packages.items()
    }
    prefix = install_copy(hello.store, new_prefixes[HELLO_HASH])
    before = snapshot(prefix)
    prefix_map = build_prefix_map(
        hello.build_info, own_hash=HELLO_HASH, new_prefixes=new_prefixes, new_root=new_root
    )

    with pytest.raises(RelocationError) as caught:
        relocate_package(prefix, hello.build_info, prefix_map)

    assert caught.value.reference == "cannot-grow-string"
    assert "bin/hello-app:" in caught.value.message
    assert f"({len(hello.build_info.old_prefix)} characters)" in caught.value.message
    assert f"({len(new_prefixes[HELLO_HASH])} characters)" in caught.value.message
    assert snapshot(prefix) == before
