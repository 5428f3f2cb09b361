"""Helpers for the relocation tests: small ELF programs compiled with gcc under an old
prefix, the Spack-made fixture packages, and snapshots to prove nothing changed."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import attrs
import yaml

from reconcile.buildcache.build_info import BuildInfo
from reconcile.spack.projection import pad_root

DEMO_HASH = "demoaaaabbbbccccddddeeeeffffgggg"
DEMO_RELATIVE = f"demo-1.0-{DEMO_HASH}"
SYSTEM_LOADER = Path(os.path.realpath("/lib64/ld-linux-x86-64.so.2"))

GREET_C = """\
const char *greet(void) { return "greetings from libgreet"; }
"""

# With -DPREFIX, two hard-coded strings: the prefix alone (NUL right after it) and the
# prefix followed by a long tail.
PROGRAM_C = """\
#include <stdio.h>
const char *greet(void);
int main(void) {
#ifdef PREFIX
    puts(PREFIX);
    puts(PREFIX "/share/demo/data.txt");
#endif
    puts(greet());
    return 0;
}
"""


@attrs.frozen(kw_only=True)
class DemoBuild:
    """A package compiled under ``old_prefix`` and then moved to ``store``: its old paths no
    longer exist, so only a correct relocation lets it run."""

    store: Path
    old_root: str
    old_prefix: str
    build_info: BuildInfo


def build_demo(
    workspace: Path, *, old_root: str, new_dtags: bool, cstrings: bool, own_loader: bool
) -> DemoBuild:
    """Compile libgreet and a program linked to it under ``old_root``/demo-1.0-<hash>:
    RPATH (or RUNPATH with ``new_dtags``) to the prefix's ``lib``, the prefix as C strings
    (``cstrings``), and a copy of the system loader in the prefix as PT_INTERP
    (``own_loader``)."""
    old_prefix = Path(old_root) / DEMO_RELATIVE
    sources = workspace / "src"
    sources.mkdir(parents=True)
    (sources / "greet.c").write_text(GREET_C)
    (sources / "program.c").write_text(PROGRAM_C)
    for folder in ("bin", "lib", "share/demo"):
        (old_prefix / folder).mkdir(parents=True)
    (old_prefix / "share/demo/data.txt").write_text(f"data of the demo at {old_prefix}\n")
    # Relative source names and a separate source folder: the only old paths in the binaries
    # are the ones a test puts there on purpose.
    _gcc(
        sources,
        "-shared",
        "-fPIC",
        "-Wl,-soname,libgreet.so",
        "-o",
        old_prefix / "lib/libgreet.so",
        "greet.c",
    )
    flags = [
        f"-L{old_prefix}/lib",
        f"-Wl,-rpath,{old_prefix}/lib:$ORIGIN/../nowhere:/usr/local/lib/untouched",
        "-Wl,--enable-new-dtags" if new_dtags else "-Wl,--disable-new-dtags",
    ]
    if cstrings:
        flags.append(f'-DPREFIX="{old_prefix}"')
    if own_loader:
        loader = old_prefix / "lib/ld.so"
        shutil.copy2(SYSTEM_LOADER, loader)
        flags.append(f"-Wl,--dynamic-linker={loader}")
    _gcc(sources, *flags, "-o", old_prefix / "bin/program", "program.c", "-lgreet")
    store = workspace / "store"
    shutil.move(old_prefix, store)
    shutil.rmtree(Path(old_root))
    info = BuildInfo(
        buildpath=old_root,
        old_prefix=str(old_prefix),
        relative_prefix=DEMO_RELATIVE,
        relocate_textfiles=("share/demo/data.txt",),
        relocate_binaries=("bin/program", "lib/libgreet.so"),
        relocate_links=(),
        hash_to_prefix={DEMO_HASH: str(old_prefix)},
    )
    return DemoBuild(store=store, old_root=old_root, old_prefix=str(old_prefix), build_info=info)


def root_of_length(folder: Path, length: int) -> str:
    """An install root under ``folder``, padded the way the planner pads (Spack's
    padded_length) to exactly ``length`` characters and not ending in a separator."""
    for name in ("r", "rr"):  # the two cannot both end a cut on a "/"
        root = pad_root(str(folder / name), length)
        if len(root) == length and not root.endswith("/"):
            return root
    raise AssertionError(f"no root of {length} characters under {folder}")


def _gcc(cwd: Path, *arguments: str | Path) -> None:
    subprocess.run(["gcc", "-O1", *map(str, arguments)], cwd=cwd, check=True)


def install_copy(store: Path, new_prefix: str) -> Path:
    """Copy a package from its store to ``new_prefix`` (as unpacking into place would)."""
    shutil.copytree(store, new_prefix, symlinks=True)
    return Path(new_prefix)


def run(program: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(program)], capture_output=True, text=True, timeout=30, check=False)


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Mode and content digest (or link target) of everything under ``root``."""
    state = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        if path.is_symlink():
            content = "-> " + os.readlink(path)
        elif path.is_file():
            content = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            content = "folder"
        state[str(path.relative_to(root))] = (info.st_mode, content)
    return state


@attrs.frozen(kw_only=True)
class FixturePackage:
    dag_hash: str
    store: Path  # the unpacked prefix, away from its old path
    build_info: BuildInfo


def unpack_fixture_packages(cache: Path, workspace: Path) -> dict[str, FixturePackage]:
    """Every ``.spack`` tarball of ``cache`` unpacked with plain tarfile, each prefix moved
    to ``workspace``/<hash>; keyed by DAG hash."""
    packages = {}
    for tarball in sorted((cache / "build_cache").rglob("*.spack")):
        dag_hash = tarball.name.removesuffix(".spack").rsplit("-", 1)[1]
        extracted = workspace / "extracted" / dag_hash
        with tarfile.open(tarball) as archive:
            archive.extractall(extracted, filter="tar")
        marker = min(extracted.rglob("binary_distribution"), key=lambda p: len(p.parts))
        build_info = build_info_from_yaml(marker.read_text(), dag_hash)
        store = workspace / dag_hash
        shutil.move(marker.parent.parent, store)
        packages[dag_hash] = FixturePackage(dag_hash=dag_hash, store=store, build_info=build_info)
    shutil.rmtree(workspace / "extracted")
    return packages


def build_info_from_yaml(text: str, dag_hash: str) -> BuildInfo:
    document = yaml.safe_load(text)
    return BuildInfo(
        buildpath=document["buildpath"],
        old_prefix=document["hash_to_prefix"][dag_hash],
        relative_prefix=document["relative_prefix"],
        relocate_textfiles=tuple(document["relocate_textfiles"]),
        relocate_binaries=tuple(document["relocate_binaries"]),
        relocate_links=tuple(document["relocate_links"]),
        hash_to_prefix=document["hash_to_prefix"],
        hardlinks_deduped=document["hardlinks_deduped"],
    )
