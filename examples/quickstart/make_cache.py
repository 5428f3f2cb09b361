"""Regenerate the quickstart's signed binary cache (for maintainers; tests never run this).

What it does, in order:

1. Builds two tiny packages from ``src/`` with gcc, the way Spack would lay them out, under an
   install-tree root padded to 256 characters (``/tmp/reconcile-quickstart/opt`` followed by
   ``/__spack_path_placeholder__`` components), so that an installer can relocate their
   hard-coded C strings to any shorter root in place:

   - ``qs-greet@1.0``: ``lib/libqsgreet.so.1`` (C string naming its data file), the relative
     symlink ``lib/libqsgreet.so``, ``include/qs-greet.h``, ``lib/pkgconfig/qs-greet.pc`` and
     ``share/qs-greet/greeting.txt``, two text files that name the library's own prefix;
   - ``qs-hello@1.0``: ``bin/qs-hello`` (RPATH to qs-greet's ``lib``, C string with its own
     prefix), ``bin/qs-hello-wrapper`` (``#!/bin/sh`` script that execs the binary by
     absolute path), the relative symlink ``bin/qsh -> qs-hello`` and the absolute symlink
     ``share/qs-hello/greeting`` into qs-greet's prefix.

   Both depend on ``glibc`` as an external at ``/usr`` (listed in the index with
   ``in_buildcache: false``, never installed). DAG hashes come from
   ``reconcile.spack.dag_hash``; each prefix gets a Spack-like ``.spack/spec.json``.
2. Runs the freshly built program once, to publish only what works.
3. Generates a throw-away GnuPG key (ed25519, no passphrase) in a temporary home, publishes
   both packages into ``mirror/`` (layout v2: tarballs, clear-signed ``.spec.json.sig``,
   ``index.json``, the public key in ``build_cache/_pgp/``), copies the public key to
   ``keys/quickstart.pub`` and writes ``reconcile.toml`` pinning its fingerprint. The secret
   key is deleted with the temporary home: nobody can sign for this mirror again, which is
   what an example wants.

Run it from a checkout where ``reconcile`` is importable (``pip install -e .`` or
``PYTHONPATH=.``) on Linux with gcc and gpg::

    python examples/quickstart/make_cache.py

It replaces ``mirror/``, ``keys/quickstart.pub`` and ``reconcile.toml`` next to this file and
removes ``/tmp/reconcile-quickstart`` when done. The output describes the machine it ran on
(OS, target, gcc and glibc versions), so the example installs on compatible x86_64 (or
whatever this machine is) glibc systems.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import attrs

from reconcile.buildcache.writer_v2 import write_package_v2
from reconcile.spack.dag_hash import dag_hash, package_hash
from reconcile.spack.projection import pad_root
from reconcile.trust.gnupg import isolated_home
from reconcile.trust.sign import GpgSigner, generate_key

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"
MIRROR = HERE / "mirror"
KEY_FILE = HERE / "keys" / "quickstart.pub"
MANIFEST = HERE / "reconcile.toml"

# A fixed root, so that regenerating gives the same prefixes (and tarballs) again.
BUILD_TREE = Path("/tmp/reconcile-quickstart")  # noqa: S108
PADDED_LENGTH = 256
NAMESPACE = "quickstart"
EMPTY_FLAGS: dict[str, list[str]] = {
    "cflags": [],
    "cppflags": [],
    "cxxflags": [],
    "fflags": [],
    "ldflags": [],
    "ldlibs": [],
}


@attrs.frozen(kw_only=True)
class Machine:
    platform: str
    platform_os: str
    target: str
    gcc_version: str
    glibc_version: str

    @property
    def arch_dir(self) -> str:
        return f"{self.platform}-{self.platform_os}-{self.target}"


def detect_machine() -> Machine:
    release: dict[str, str] = {}
    for line in Path("/etc/os-release").read_text().splitlines():
        key, _, value = line.partition("=")
        release[key] = value.strip('"')
    gcc = subprocess.run(
        ["gcc", "-dumpfullversion"], capture_output=True, text=True, check=True
    ).stdout.strip()
    libc = os.confstr("CS_GNU_LIBC_VERSION") or "glibc unknown"
    return Machine(
        platform="linux",
        platform_os=release.get("ID", "linux") + release.get("VERSION_ID", ""),
        target=platform.machine(),
        gcc_version=gcc,
        glibc_version=libc.split()[-1],
    )


def source_files(package: str) -> dict[str, bytes]:
    folder = SOURCES / package
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def make_nodes(machine: Machine) -> dict[str, dict[str, Any]]:
    """The three spec nodes (Spack's shape), each with its DAG hash; dependencies first."""
    arch = {"platform": machine.platform, "platform_os": machine.platform_os}
    arch["target"] = machine.target
    compiler = {"name": "gcc", "version": machine.gcc_version}

    def node(name: str, build_system: str, **rest: Any) -> dict[str, Any]:
        made = {
            "name": name,
            "version": rest.pop("version", "1.0"),
            "arch": arch,
            "compiler": compiler,
            "namespace": rest.pop("namespace", NAMESPACE),
            "parameters": {"build_system": build_system, **EMPTY_FLAGS},
            **rest,
        }
        made["hash"] = dag_hash(made)
        return made

    def edge(target: dict[str, Any], deptypes: list[str], virtuals: list[str]) -> dict[str, Any]:
        parameters = {"deptypes": deptypes, "virtuals": virtuals}
        return {"name": target["name"], "hash": target["hash"], "parameters": parameters}

    glibc = node(
        "glibc",
        "autotools",
        version=machine.glibc_version,
        namespace="builtin",
        external={"path": "/usr", "module": None, "extra_attributes": {}},
        package_hash=package_hash({"external": b"/usr"}),
    )
    greet = node(
        "qs-greet",
        "generic",
        package_hash=package_hash(source_files("qs-greet")),
        dependencies=[edge(glibc, ["link"], ["libc"])],
    )
    hello = node(
        "qs-hello",
        "generic",
        package_hash=package_hash(source_files("qs-hello")),
        dependencies=[edge(glibc, ["link"], ["libc"]), edge(greet, ["link", "run"], [])],
    )
    return {"glibc": glibc, "qs-greet": greet, "qs-hello": hello}


def spec_document(root: dict[str, Any], others: list[dict[str, Any]]) -> dict[str, Any]:
    """The package's node first, then its dependencies by name, as Spack orders them."""
    nodes = [root, *sorted(others, key=lambda n: str(n["name"]))]
    return {"spec": {"_meta": {"version": 4}, "nodes": nodes}}


def prefix_of(root: str, machine: Machine, node: dict[str, Any]) -> str:
    compiler = f"gcc-{machine.gcc_version}"
    return f"{root}/{machine.arch_dir}/{compiler}/{node['name']}-{node['version']}-{node['hash']}"


def c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def gcc(*args: str, cwd: Path) -> None:
    subprocess.run(["gcc", "-O2", "-Wall", "-Werror", *args], cwd=cwd, check=True)


def build_greet(prefix: Path, build: Path) -> None:
    for folder in ("include", "lib/pkgconfig", "share/qs-greet"):
        (prefix / folder).mkdir(parents=True)
    shutil.copy(SOURCES / "qs-greet" / "qs-greet.h", prefix / "include" / "qs-greet.h")
    data = f"{prefix}/share/qs-greet/greeting.txt"
    gcc(
        "-shared",
        "-fPIC",
        "-Wl,-soname,libqsgreet.so.1",
        f"-DQS_GREET_DATA={c_string(data)}",
        "-o",
        str(prefix / "lib" / "libqsgreet.so.1"),
        "qs-greet.c",
        cwd=build,
    )
    (prefix / "lib" / "libqsgreet.so").symlink_to("libqsgreet.so.1")
    (prefix / "lib/pkgconfig/qs-greet.pc").write_text(
        f"prefix={prefix}\nlibdir=${{prefix}}/lib\nincludedir=${{prefix}}/include\n\n"
        "Name: qs-greet\nDescription: the quickstart's greeting library\nVersion: 1.0\n"
        "Libs: -L${libdir} -Wl,-rpath,${libdir} -lqsgreet\nCflags: -I${includedir}\n"
    )
    (prefix / "share/qs-greet/greeting.txt").write_text(
        f"qs-greet 1.0 says hello.\nthis greeting lives in {prefix}/share/qs-greet\n"
    )


def build_hello(prefix: Path, greet_prefix: Path, build: Path) -> None:
    for folder in ("bin", "share/qs-hello"):
        (prefix / folder).mkdir(parents=True)
    gcc(
        f"-I{greet_prefix}/include",
        f"-DQS_HELLO_PREFIX={c_string(str(prefix))}",
        "-o",
        str(prefix / "bin" / "qs-hello"),
        "qs-hello.c",
        f"-L{greet_prefix}/lib",
        "-lqsgreet",
        # RPATH (not RUNPATH), as Spack's compiler wrappers produce.
        f"-Wl,-rpath,{greet_prefix}/lib",
        "-Wl,--disable-new-dtags",
        cwd=build,
    )
    wrapper = prefix / "bin" / "qs-hello-wrapper"
    wrapper.write_text(f'#!/bin/sh\nexec {prefix}/bin/qs-hello "$@"\n')
    wrapper.chmod(0o755)
    (prefix / "bin" / "qsh").symlink_to("qs-hello")
    (prefix / "share/qs-hello/greeting").symlink_to(f"{greet_prefix}/share/qs-greet/greeting.txt")


def write_spack_metadata(prefix: Path, document: dict[str, Any]) -> None:
    (prefix / ".spack").mkdir()
    (prefix / ".spack" / "spec.json").write_text(json.dumps(document, separators=(",", ":")))


def normalize_modes(prefix: Path) -> None:
    """The same modes whatever the maintainer's umask: regenerating changes nothing."""
    for path in [prefix, *prefix.rglob("*")]:
        if path.is_symlink():
            continue
        # Spack's rule: the owner's execute bit decides between 0o755 and 0o644.
        executable = path.is_dir() or path.stat().st_mode & 0o100
        path.chmod(0o755 if executable else 0o644)


def check_program(hello: Path, greet: Path) -> None:
    expected = (
        f"qs-hello 1.0 installed at {hello}\n"
        f"qs-greet data file: {greet}/share/qs-greet/greeting.txt\n"
        f"qs-greet 1.0 says hello.\nthis greeting lives in {greet}/share/qs-greet\n"
    )
    for program in ("qs-hello", "qsh", "qs-hello-wrapper"):
        run = subprocess.run(
            [str(hello / "bin" / program)], capture_output=True, text=True, check=True
        )
        if run.stdout != expected:
            raise SystemExit(f"{program} printed {run.stdout!r}, expected {expected!r}")


def write_manifest(fingerprint: str) -> None:
    MANIFEST.write_text(
        "# The quickstart: install qs-hello (and its library qs-greet) from the signed binary\n"
        "# cache in ./mirror into ./opt. make_cache.py regenerates the cache and this file.\n"
        "version = 1\n\n"
        '[install]\nroot = "opt"\nspecs = ["qs-hello"]\n\n'
        '[[mirror]]\nname = "quickstart"\nurl = "mirror"\nsigned = true\n\n'
        '[[key]]\nname = "quickstart"\nkind = "gpg"\n'
        f'fingerprint = "{fingerprint}"\nfile = "keys/quickstart.pub"\n'
    )


def main() -> None:
    machine = detect_machine()
    nodes = make_nodes(machine)
    shutil.rmtree(BUILD_TREE, ignore_errors=True)
    root = pad_root(str(BUILD_TREE / "opt"), PADDED_LENGTH).rstrip("/")
    greet = Path(prefix_of(root, machine, nodes["qs-greet"]))
    hello = Path(prefix_of(root, machine, nodes["qs-hello"]))
    greet_document = spec_document(nodes["qs-greet"], [nodes["glibc"]])
    hello_document = spec_document(nodes["qs-hello"], [nodes["glibc"], nodes["qs-greet"]])
    try:
        with tempfile.TemporaryDirectory() as scratch:
            build = Path(scratch)
            for package in ("qs-greet", "qs-hello"):
                for name, data in source_files(package).items():
                    (build / name).write_bytes(data)
            build_greet(greet, build)
            build_hello(hello, greet, build)
        write_spack_metadata(greet, greet_document)
        write_spack_metadata(hello, hello_document)
        normalize_modes(greet)
        normalize_modes(hello)
        check_program(hello, greet)

        shutil.rmtree(MIRROR, ignore_errors=True)
        with isolated_home() as home:
            fingerprint = generate_key(home, "Reconcile Quickstart", "quickstart@example.invalid")
            signer = GpgSigner(gnupghome=home, fingerprint=fingerprint)
            write_package_v2(
                MIRROR,
                prefix=greet,
                spec_document=greet_document,
                buildpath=root,
                hash_to_prefix={nodes["qs-greet"]["hash"]: str(greet)},
                signer=signer,
            )
            write_package_v2(
                MIRROR,
                prefix=hello,
                spec_document=hello_document,
                buildpath=root,
                hash_to_prefix={
                    nodes["qs-hello"]["hash"]: str(hello),
                    nodes["qs-greet"]["hash"]: str(greet),
                },
                signer=signer,
            )
            KEY_FILE.parent.mkdir(exist_ok=True)
            KEY_FILE.write_bytes(signer.public_key())
        write_manifest(fingerprint)
    finally:
        shutil.rmtree(BUILD_TREE, ignore_errors=True)
    print(f"wrote {MIRROR} signed by {fingerprint}; install root was {root}")


if __name__ == "__main__":
    main()
