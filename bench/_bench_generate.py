"""Generating the benchmark's signed binary cache: N packages of real, relocatable content.

Up to 10 libraries ``blibNN`` and applications ``bappNNN``, each application depending on
one library (and every package on ``glibc``, an external at ``/usr``), built under an old
install root padded like Spack's. Every prefix holds ELF files from ``_bench_sources`` with
its own prefixes written in, text files, a pkg-config file and headers naming its prefix, a
relative and an absolute symlink, ``.spack/spec.json``, and bulk data that gzip cannot
shrink much (random blocks mixed with text), sized so the tarballs add up to the requested
total. The mirror is written with the project's own publisher (layout v2, clear-signed by a
throw-away GnuPG key), exactly as ``examples/quickstart/make_cache.py`` does for two packages.

The result is kept in a folder with a ``generated.json`` describing it, so a rerun with the
same parameters reuses it.
"""

from __future__ import annotations

import importlib.util
import json
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import attrs
from _bench_sources import (
    APP_EXECUTABLE_KEY,
    Templates,
    app_config_file,
    compile_templates,
    library_data_file,
    rewrite_prefixes,
)

from reconcile.buildcache.writer_v2 import publish_key_v2, write_package_v2
from reconcile.spack.dag_hash import dag_hash, package_hash
from reconcile.spack.projection import pad_root
from reconcile.trust.gnupg import isolated_home
from reconcile.trust.sign import GpgSigner, generate_key

REPO = Path(__file__).resolve().parents[1]
QUICKSTART_SCRIPT = REPO / "examples" / "quickstart" / "make_cache.py"

FORMAT = 1  # bump when the generated content changes: older folders are regenerated
BUILD_PADDED_LENGTH = 200
MAX_LIBRARIES = 10
LIBRARY_SHARE = 4.0  # a library's tarball is this many times an application's on average
HEADERS_PER_PACKAGE = 24
# Bulk files: random blocks (incompressible) with text blocks between them (gzip shrinks
# those about 5x), so a tarball is about 0.8 of its bulk data.
RANDOM_BLOCK = 48 * 1024
TEXT_BLOCK = 16 * 1024
COMPRESSED_SHARE = (RANDOM_BLOCK + TEXT_BLOCK / 5) / (RANDOM_BLOCK + TEXT_BLOCK)
SEED = 20240611

_T = TypeVar("_T")
_R = TypeVar("_R")


def quickstart() -> ModuleType:
    """``examples/quickstart/make_cache.py``, whose helpers build Spack-like prefixes."""
    loaded = sys.modules.get("make_cache")
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location("make_cache", QUICKSTART_SCRIPT)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {QUICKSTART_SCRIPT}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_cache"] = module
    spec.loader.exec_module(module)
    return module


@attrs.frozen(kw_only=True)
class Package:
    name: str
    is_library: bool
    node: dict[str, Any]
    document: dict[str, Any]
    prefix: str  # where it is built (its old prefix)
    library: str | None  # the library an application depends on
    library_prefix: str | None
    hash_to_prefix: dict[str, str]
    bulk_bytes: int
    seed: int


@attrs.frozen(kw_only=True)
class GeneratedCache:
    """What the benchmark needs to know about a generated mirror (kept as JSON)."""

    folder: Path
    mirror: Path
    key_file: Path
    fingerprint: str
    specs: tuple[str, ...]  # every package name
    hashes: dict[str, str]  # name -> DAG hash
    probe_app: str  # an application to run after installing, with its library
    probe_library: str
    parameters: dict[str, int]
    seconds: float  # how long generating took

    def tarballs(self) -> list[Path]:
        return sorted(self.mirror.rglob("*.spack"))

    def to_json(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data.update(folder=str(self.folder), mirror=str(self.mirror), key_file=str(self.key_file))
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GeneratedCache:
        return cls(
            folder=Path(data["folder"]),
            mirror=Path(data["mirror"]),
            key_file=Path(data["key_file"]),
            fingerprint=data["fingerprint"],
            specs=tuple(data["specs"]),
            hashes=dict(data["hashes"]),
            probe_app=data["probe_app"],
            probe_library=data["probe_library"],
            parameters=dict(data["parameters"]),
            seconds=float(data["seconds"]),
        )


def _names(packages: int) -> tuple[list[str], list[str]]:
    libraries = max(1, min(MAX_LIBRARIES, packages // 2))
    apps = packages - libraries
    width = max(3, len(str(apps - 1)))
    return [f"blib{i:02d}" for i in range(libraries)], [f"bapp{i:0{width}d}" for i in range(apps)]


def _bulk_sizes(packages: int, libraries: int, total: int, rng: random.Random) -> list[int]:
    """Uncompressed bulk bytes per package (libraries first), varied but deterministic."""
    weights = [LIBRARY_SHARE * rng.uniform(0.5, 1.5) for _ in range(libraries)]
    weights += [rng.uniform(0.3, 1.7) for _ in range(packages - libraries)]
    scale = total / COMPRESSED_SHARE / sum(weights)
    return [int(w * scale) for w in weights]


def plan_packages(root: str, packages: int, size_bytes: int) -> list[Package]:
    """Spec nodes, prefixes and sizes of every package, libraries first."""
    qs = quickstart()
    machine = qs.detect_machine()
    arch = {"platform": machine.platform, "platform_os": machine.platform_os}
    arch["target"] = machine.target
    compiler = {"name": "gcc", "version": machine.gcc_version}

    def node(name: str, **rest: Any) -> dict[str, Any]:
        made = {
            "name": name,
            "version": rest.pop("version", "1.0"),
            "arch": arch,
            "compiler": compiler,
            "namespace": rest.pop("namespace", "bench"),
            "parameters": {"build_system": rest.pop("build_system", "generic"), **qs.EMPTY_FLAGS},
            **rest,
        }
        made["hash"] = dag_hash(made)
        return made

    def edge(target: dict[str, Any], deptypes: list[str], virtuals: list[str]) -> dict[str, Any]:
        parameters = {"deptypes": deptypes, "virtuals": virtuals}
        return {"name": target["name"], "hash": target["hash"], "parameters": parameters}

    glibc = node(
        "glibc",
        version=machine.glibc_version,
        namespace="builtin",
        build_system="autotools",
        external={"path": "/usr", "module": None, "extra_attributes": {}},
        package_hash=package_hash({"external": b"/usr"}),
    )
    library_names, app_names = _names(packages)
    rng = random.Random(SEED)
    sizes = _bulk_sizes(packages, len(library_names), size_bytes, rng)
    planned: list[Package] = []
    library_nodes: list[dict[str, Any]] = []
    for index, name in enumerate(library_names):
        made = node(
            name,
            package_hash=package_hash({f"{name}.c": name.encode()}),
            dependencies=[edge(glibc, ["link"], ["libc"])],
        )
        library_nodes.append(made)
        prefix = qs.prefix_of(root, machine, made)
        planned.append(
            Package(
                name=name,
                is_library=True,
                node=made,
                document=qs.spec_document(made, [glibc]),
                prefix=prefix,
                library=None,
                library_prefix=None,
                hash_to_prefix={made["hash"]: prefix},
                bulk_bytes=sizes[index],
                seed=rng.getrandbits(64),
            )
        )
    for index, name in enumerate(app_names):
        library = library_nodes[index % len(library_nodes)]
        made = node(
            name,
            package_hash=package_hash({f"{name}.c": name.encode()}),
            dependencies=[edge(glibc, ["link"], ["libc"]), edge(library, ["link", "run"], [])],
        )
        prefix = qs.prefix_of(root, machine, made)
        library_prefix = planned[index % len(library_nodes)].prefix
        planned.append(
            Package(
                name=name,
                is_library=False,
                node=made,
                document=qs.spec_document(made, [glibc, library]),
                prefix=prefix,
                library=library["name"],
                library_prefix=library_prefix,
                hash_to_prefix={made["hash"]: prefix, library["hash"]: library_prefix},
                bulk_bytes=sizes[len(library_names) + index],
                seed=rng.getrandbits(64),
            )
        )
    return planned


def _template_prefix(real: Package) -> str:
    """A prefix as long as every real one of its kind: same folder, placeholder name and hash."""
    folder = real.prefix.rsplit("/", 1)[0]
    return f"{folder}/{'x' * len(real.name)}-1.0-{'t' * 32}"


def _text_block(rng: random.Random, name: str) -> bytes:
    lines = []
    size = 0
    while size < TEXT_BLOCK:
        line = (
            f"{rng.randrange(10**8):08d} sample={rng.random():.6f} "
            f"state={rng.choice(('ok', 'warm', 'cold', 'stale'))} package={name}\n"
        )
        lines.append(line)
        size += len(line)
    return "".join(lines).encode()[:TEXT_BLOCK]


def _write_bulk(folder: Path, total: int, rng: random.Random, name: str) -> None:
    """1 to 3 files of random blocks with text blocks between them (NUL bytes included, so
    they are binary data, not text files to relocate)."""
    count = rng.randint(1, 3)
    text = _text_block(rng, name)
    for number in range(count):
        size = total // count
        with (folder / f"blob{number}.bin").open("wb") as out:
            written = 0
            while written < size:
                chunk = rng.randbytes(RANDOM_BLOCK) + text
                out.write(chunk[: size - written])
                written += len(chunk)


def _write_headers(prefix: Path, name: str) -> None:
    folder = prefix / "include" / name
    folder.mkdir(parents=True)
    for number in range(HEADERS_PER_PACKAGE):
        lines = [f"/* {name} header {number} */", "#pragma once"]
        if number % 6 == 0:
            lines.append(f'#define {name.upper()}_PREFIX_{number} "{prefix}"')
        lines += [f"int {name}_function_{number}_{k}(int value);" for k in range(40)]
        (folder / f"h{number:02d}.h").write_text("\n".join(lines) + "\n")


def _write_pkgconfig(prefix: Path, name: str, libs: str) -> None:
    (prefix / "lib" / "pkgconfig").mkdir(parents=True, exist_ok=True)
    (prefix / "lib" / "pkgconfig" / f"{name}.pc").write_text(
        f"prefix={prefix}\nlibdir=${{prefix}}/lib\nincludedir=${{prefix}}/include\n\n"
        f"Name: {name}\nDescription: a package of the cache benchmark\nVersion: 1.0\n"
        f"Libs: -L${{libdir}} -Wl,-rpath,${{libdir}} {libs}\nCflags: -I${{includedir}}\n"
    )


def _write_elf(prefix: Path, relative: str, data: bytes) -> None:
    target = prefix / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    target.chmod(0o755)


def build_prefix(package: Package, templates: Templates) -> None:
    """Create the package's prefix, as an installed Spack package would look."""
    qs = quickstart()
    prefix = Path(package.prefix)
    name = package.name
    rng = random.Random(package.seed)
    share = prefix / "share" / name
    (share / "data").mkdir(parents=True)
    if package.is_library:
        replacements = {templates.library_prefix: package.prefix}
        for relative, data in templates.library_files.items():
            _write_elf(prefix, relative, rewrite_prefixes(data, replacements))
        (prefix / "lib" / "libblib.so").symlink_to("libblib.so.1")
        (prefix / "share" / "blib").mkdir()
        Path(library_data_file(package.prefix)).write_text(_library_data(package.prefix, name))
        (share / "data-link").symlink_to(library_data_file(package.prefix))
        _write_pkgconfig(prefix, name, "-lblib")
    else:
        assert package.library is not None and package.library_prefix is not None
        replacements = {
            templates.library_prefix: package.library_prefix,
            templates.app_prefix: package.prefix,
        }
        for relative, data in templates.app_files.items():
            target = f"bin/{name}" if relative == APP_EXECUTABLE_KEY else relative
            _write_elf(prefix, target, rewrite_prefixes(data, replacements))
        (prefix / "bin" / "run").symlink_to(name)
        wrapper = prefix / "bin" / f"{name}-wrapper"
        wrapper.write_text(f'#!/bin/sh\nexec {prefix}/bin/{name} "$@"\n')
        wrapper.chmod(0o755)
        (prefix / "etc").mkdir()
        Path(app_config_file(package.prefix)).write_text(
            f"# {name} configuration\nlibrary = {package.library_prefix}\nhome = {prefix}\n"
        )
        (share / "library-data").symlink_to(library_data_file(package.library_prefix))
        _write_pkgconfig(prefix, name, "-lbapp")
    (share / "README.txt").write_text(
        f"This is {name} 1.0, installed at {prefix}.\nIts data is in {share}/data.\n"
    )
    _write_headers(prefix, name)
    _write_bulk(share / "data", package.bulk_bytes, rng, name)
    qs.write_spack_metadata(prefix, package.document)
    qs.normalize_modes(prefix)


def _library_data(prefix: str, name: str) -> str:
    return f"{name} 1.0 data.\nthis data file lives in {prefix}/share/blib\n"


def expected_output(app_prefix: str, library_prefix: str, library: str) -> str:
    """What an application prints, given its prefix and its library's."""
    return (
        f"bapp at {app_prefix}\nconfig {app_config_file(app_prefix)}\n"
        f"data {library_data_file(library_prefix)}\n{_library_data(library_prefix, library)}"
    )


def run_program(path: str) -> str:
    """What the program prints (errors included), with runs of ``/`` as one: a C string
    relocated by padding with ``/`` names the same path."""
    run = subprocess.run([path], capture_output=True, text=True, check=False, timeout=30)
    return re.sub("/+", "/", run.stdout + run.stderr)


def _check_built(planned: list[Package]) -> None:
    app = next(p for p in planned if not p.is_library)
    assert app.library is not None and app.library_prefix is not None
    expected = expected_output(app.prefix, app.library_prefix, app.library)
    for program in (app.name, "run", f"{app.name}-wrapper"):
        printed = run_program(f"{app.prefix}/bin/{program}")
        if printed != expected:
            raise SystemExit(f"{app.prefix}/bin/{program} printed {printed!r}, not {expected!r}")


# Worker state for the process pool (set once per worker by the initializer).
_worker: dict[str, Any] = {}


def _init_worker(state: dict[str, Any]) -> None:
    _worker.update(state)


def _build_one(package: Package) -> None:
    build_prefix(package, _worker["templates"])


def _publish_one(package: Package) -> int:
    if "signer" not in _worker:
        _worker["signer"] = GpgSigner(
            gnupghome=_worker["gnupghome"], fingerprint=_worker["fingerprint"]
        )
    published = write_package_v2(
        _worker["mirror"],
        prefix=Path(package.prefix),
        spec_document=package.document,
        buildpath=_worker["root"],
        hash_to_prefix=package.hash_to_prefix,
        signer=_worker["signer"],
        publish_key=False,
    )
    return published.tarball.stat().st_size


def _in_pool(
    jobs: int, state: dict[str, Any], work: Callable[[_T], _R], items: Iterable[_T]
) -> list[_R]:
    with ProcessPoolExecutor(jobs, initializer=_init_worker, initargs=(state,)) as pool:
        return list(pool.map(work, items))


def _matching(folder: Path, parameters: dict[str, int]) -> GeneratedCache | None:
    described = folder / "generated.json"
    if not described.is_file():
        return None
    cache = GeneratedCache.from_json(json.loads(described.read_text()))
    if cache.parameters != parameters or not cache.mirror.is_dir():
        return None
    return cache


def generate(folder: Path, *, packages: int, size_mb: int, jobs: int) -> GeneratedCache:
    """The signed mirror in ``folder``: reused when made with the same parameters, else
    (re)generated. Prints what it does."""
    folder = folder.resolve()
    parameters = {"format": FORMAT, "packages": packages, "size_mb": size_mb}
    reused = _matching(folder, parameters)
    if reused is not None:
        print(f"reusing the generated cache in {folder} (made in {reused.seconds:.0f} s)")
        return reused
    if packages < 2:
        raise SystemExit("--packages must be at least 2 (a library and an application)")
    started = time.perf_counter()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    build_tree = folder / "build"
    root = pad_root(str(build_tree / "opt"), BUILD_PADDED_LENGTH).rstrip("/")
    if len(root) > BUILD_PADDED_LENGTH:
        raise SystemExit(f"{folder} is too long a path for a root padded to {BUILD_PADDED_LENGTH}")
    planned = plan_packages(root, packages, size_mb * 2**20)
    libraries = [p for p in planned if p.is_library]
    apps = [p for p in planned if not p.is_library]
    print(
        f"generating {packages} packages ({len(libraries)} libraries, {len(apps)} applications, "
        f"~{size_mb} MiB of tarballs) under a root padded to {BUILD_PADDED_LENGTH} characters"
    )
    templates = compile_templates(
        library_prefix=_template_prefix(libraries[0]),
        app_prefix=_template_prefix(apps[0]),
        app_name=apps[0].name,
    )
    mirror = folder / "mirror"
    key_file = folder / "bench.pub"
    try:
        _in_pool(jobs, {"templates": templates}, _build_one, planned)
        _check_built(planned)
        print(f"  built {packages} prefixes in {time.perf_counter() - started:.1f} s; publishing")
        with isolated_home() as home:
            fingerprint = generate_key(home, "Reconcile Cache Benchmark", "bench@example.invalid")
            state = {"gnupghome": home, "fingerprint": fingerprint, "mirror": mirror, "root": root}
            _in_pool(jobs, state, _publish_one, planned)
            signer = GpgSigner(gnupghome=home, fingerprint=fingerprint)
            publish_key_v2(mirror, signer.public_key())
            key_file.write_bytes(signer.public_key())
    finally:
        # The old prefixes must not exist when installing: a relocation that missed a path
        # would still work by accident otherwise.
        shutil.rmtree(build_tree, ignore_errors=True)
    app = apps[0]
    cache = GeneratedCache(
        folder=folder,
        mirror=mirror,
        key_file=key_file,
        fingerprint=fingerprint,
        specs=tuple(p.name for p in planned),
        hashes={p.name: p.node["hash"] for p in planned},
        probe_app=app.name,
        probe_library=app.library or "",
        parameters=parameters,
        seconds=time.perf_counter() - started,
    )
    (folder / "generated.json").write_text(json.dumps(cache.to_json(), indent=1))
    total = sum(t.stat().st_size for t in cache.tarballs())
    print(
        f"  published {packages} signed packages, {total / 2**20:.1f} MiB, in {cache.seconds:.1f} s"
    )
    return cache
