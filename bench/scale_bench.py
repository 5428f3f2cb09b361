"""Benchmark: a no-op plan over thousands of installed specs, and the memory a large index takes.

Usage: python bench/scale_bench.py [--sizes 1000,10000] [--files 35] [--repeat 3]
                                   [--index-mb 200] [--keep DIR] [--markdown FILE]

1. For each size N, generates (or reuses from ``--keep DIR``) an install root of N prefixes of
   ``--files`` files each (folders, small files and a symlink, hard-linked from one template
   so that generating 10,000 prefixes takes seconds, not minutes), an install record for each
   as an apply writes it, and a local mirror whose ``index.json`` lists the N specs: every
   tenth spec is a root the manifest declares, depending (link) on the nine before it.
2. Measures, ``--repeat`` times, interleaved: ``python -c pass``, ``reconcile --version`` and
   a no-op ``reconcile plan`` for each N (whole processes, bytecode cached).
3. Generates a mirror whose index is about ``--index-mb`` MB and runs ``reconcile mirror list``
   for one spec of it (the index read, parsed and matched as a plan does), in a child process
   whose peak RSS (``getrusage``) is reported.

Targets: plan(10k) / plan(1k) <= 12, plan(1k) - ``python -c pass`` <= 0.5 s, peak RSS of the
large-index listing < 1 GB. A missed one is printed as MISSED; the exit status is 0 unless a
step failed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from _bench_noise import Rounds, interleave, python_env, reconcile, run_process, scratch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from reconcile.state.records import (  # noqa: E402
    InstallRecord,
    record_to_dict,
    records_dir,
    scan_prefix,
    utc_timestamp,
)

ARCH = {"platform": "linux", "platform_os": "debian12", "target": "x86_64_v3"}
COMPILER = {"name": "gcc", "version": "12.2.0"}
PARAMETERS = {
    "build_system": "generic",
    "cflags": [],
    "cppflags": [],
    "cxxflags": [],
    "fflags": [],
    "ldflags": [],
    "ldlibs": [],
}
CHAIN = 10  # every CHAIN-th spec is a declared root depending on the CHAIN - 1 before it
PLAN_DELTA_TARGET = 0.5  # s: plan(1k) - python -c pass
RATIO_TARGET = 12.0  # plan(10k) / plan(1k)
RSS_TARGET_MB = 1024


def dag_hash(name: str) -> str:
    return base64.b32encode(hashlib.sha256(name.encode()).digest()).decode().lower()[:32]


def spec_node(number: int) -> dict[str, object]:
    name = f"pkg{number:05d}"
    node: dict[str, object] = {
        "name": name,
        "version": "1.0",
        "arch": ARCH,
        "compiler": COMPILER,
        "namespace": "builtin",
        "parameters": PARAMETERS,
        "package_hash": dag_hash("package" + name) + "====",
    }
    if number % CHAIN == CHAIN - 1:
        node["dependencies"] = [
            {
                "name": f"pkg{dep:05d}",
                "hash": dag_hash(f"pkg{dep:05d}"),
                "parameters": {"deptypes": ["link"], "virtuals": []},
            }
            for dep in range(number - CHAIN + 1, number)
        ]
    node["hash"] = dag_hash(name)
    return node


def write_index(mirror: Path, nodes: Iterable[dict[str, object]]) -> int:
    """``build_cache/index.json`` (and its ``.hash``) listing ``nodes``, written entry by entry
    (a 200 MB index is never held whole); returns its size."""
    folder = mirror / "build_cache"
    folder.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with (folder / "index.json").open("wb") as stream:

        def write(text: str) -> None:
            nonlocal size
            data = text.encode()
            digest.update(data)
            stream.write(data)
            size += len(data)

        write('{"database": {"version": "7", "installs": {')
        for number, node in enumerate(nodes):
            entry = {"spec": node, "ref_count": 0, "in_buildcache": True}
            write(("" if number == 0 else ", ") + f'"{node["hash"]}": {json.dumps(entry)}')
        write("}}}")
    (folder / "index.json.hash").write_text(digest.hexdigest())
    return size


def template_prefix(folder: Path, files: int) -> Path:
    """One prefix of ``files`` files in a few folders, and a symlink."""
    folder.mkdir(parents=True)
    for index in range(files - 1):
        sub = folder / ("bin" if index < 3 else f"lib/part{index % 4}")
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"file{index}").write_bytes(f"{index}\n".encode() * (50 + index * 40))
    (folder / "lib" / "current").symlink_to("part0")
    return folder


def build(folder: Path, count: int, files: int) -> Path:
    """An install root of ``count`` prefixes with records, a mirror and a manifest."""
    manifest = folder / "reconcile.toml"
    if manifest.is_file():
        return manifest
    shutil.rmtree(folder, ignore_errors=True)
    root, mirror = folder / "opt", folder / "mirror"
    template = template_prefix(folder / "template", files)
    entries = scan_prefix(template)
    nodes = [spec_node(number) for number in range(count)]
    write_index(mirror, nodes)
    records = records_dir(root)
    records.mkdir(parents=True)
    installed_at = utc_timestamp()
    for node in nodes:
        prefix = root / f"{node['name']}-1.0-{node['hash']}"
        shutil.copytree(template, prefix, symlinks=True, copy_function=os.link)
        record = InstallRecord(
            hash=str(node["hash"]),
            name=str(node["name"]),
            version="1.0",
            prefix=str(prefix),
            spec=node,
            mirror="bench",
            mirror_url=mirror.as_uri(),
            tarball_sha256=hashlib.sha256(str(node["hash"]).encode()).hexdigest(),
            signer=None,
            installed_at=installed_at,
            owner="reconcile.toml",
            entries=entries,
        )
        text = json.dumps(record_to_dict(record), sort_keys=True, indent=1) + "\n"
        (records / f"{node['hash']}.json").write_text(text)
    roots = [str(node["name"]) for node in nodes if "dependencies" in node] or [
        str(nodes[0]["name"])
    ]
    declared = ", ".join(f'"{name}"' for name in roots)
    manifest.write_text(
        'version = 1\n\n[install]\nroot = "opt"\nowner = "reconcile.toml"\n'
        f"specs = [{declared}]\n\n"
        f'[[mirror]]\nname = "bench"\nurl = "{mirror.as_uri()}"\nsigned = false\n'
    )
    return manifest


def large_index(folder: Path, megabytes: int) -> Path:
    """A mirror whose index is about ``megabytes`` MB, and a manifest naming one spec of it."""
    manifest = folder / "reconcile.toml"
    if manifest.is_file():
        return manifest
    folder.mkdir(parents=True, exist_ok=True)
    sample = [{"spec": spec_node(n), "ref_count": 0, "in_buildcache": True} for n in range(100)]
    count = megabytes * 1_000_000 * len(sample) // len(json.dumps(sample))
    size = write_index(folder / "mirror", (spec_node(number) for number in range(count)))
    print(f"large index: {count} specs, {size / 1e6:.0f} MB", file=sys.stderr)
    manifest.write_text(
        f'version = 1\n\n[install]\nroot = "opt"\nspecs = ["pkg{CHAIN - 1:05d}"]\n\n'
        f'[[mirror]]\nname = "big"\nurl = "{(folder / "mirror").as_uri()}"\nsigned = false\n'
    )
    return manifest


def peak_rss_mb(command: list[str], env: dict[str, str], cwd: Path) -> float:
    """The peak resident size of ``command`` (run in a child that runs nothing else)."""
    probe = (
        "import resource, subprocess, sys; "
        "done = subprocess.run(sys.argv[1:], capture_output=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, done.returncode)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, *command],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if out[1] not in ("0", "2"):
        raise SystemExit(f"{' '.join(command)} exited {out[1]}")
    return int(out[0]) / 1024  # ru_maxrss is in KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--files", type=int, default=35, help="files per prefix")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--index-mb", type=int, default=200, help="0 skips the memory step")
    parser.add_argument("--keep", type=Path, help="generate into (and reuse) this folder")
    parser.add_argument("--markdown", type=Path, help="also write the tables here")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    base = args.keep or scratch("reconcile-scale-")
    env = python_env(base / "pycache")
    manifests = {n: build(base / f"tree-{n}", n, args.files) for n in sizes}
    steps = {
        "python -c pass": lambda: run_process([sys.executable, "-c", "pass"], cwd=base, env=env),
        "reconcile --version": lambda: run_process(reconcile("--version"), cwd=base, env=env),
    }
    for n, manifest in manifests.items():
        command = reconcile("-m", str(manifest), "plan", "--detailed-exitcode")
        steps[f"no-op plan, {n} specs"] = lambda c=command: run_process(c, cwd=base, env=env)
    for step in steps.values():  # warm the page cache and the bytecode
        step()
    rounds = interleave(steps, args.repeat)
    rss = None
    if args.index_mb:
        manifest = large_index(base / f"index-{args.index_mb}mb", args.index_mb)
        listing = reconcile("-m", str(manifest), "mirror", "list", "big", f"pkg{CHAIN - 1:05d}")
        rss = peak_rss_mb(listing, env, base)
    report = render(rounds, sizes, args.files, rss, args.index_mb)
    print(report)
    if args.markdown:
        args.markdown.write_text(report + "\n")
    if args.keep is None:
        shutil.rmtree(base, ignore_errors=True)
    return 0


def render(rounds: Rounds, sizes: list[int], files: int, rss: float | None, index_mb: int) -> str:
    lines = [
        f"- {', '.join(str(n) for n in sizes)} installed specs of {files} files each; every "
        "reconcile step is a whole `python -m reconcile` process (bytecode cached)",
        f"- {rounds.rounds} interleaved rounds; {rounds.load()}",
        "",
        "| step | wall: median (min-max) | CPU: median (min-max) |",
        "| --- | ---: | ---: |",
    ]
    for name in rounds.walls:
        lines.append(f"| {name} | {rounds.walls[name].seconds()} | {rounds.cpus[name].seconds()} |")
    lines += [
        "",
        "| target | measured (round by round: median (min-max)) | |",
        "| --- | --- | --- |",
    ]
    small, large = f"no-op plan, {min(sizes)} specs", f"no-op plan, {max(sizes)} specs"
    if len(sizes) > 1:
        ratio = rounds.paired(large, small)
        cpu = rounds.paired(large, small, cpu=True)
        lines.append(
            f"| plan({max(sizes)}) / plan({min(sizes)}) <= {RATIO_TARGET:.0f} | wall "
            f"{ratio.ratio()}, CPU {cpu.ratio()} | {_met(ratio.median <= RATIO_TARGET)} |"
        )
    delta = rounds.paired_difference(small, "python -c pass")
    lines.append(
        f"| plan({min(sizes)}) - python -c pass <= {PLAN_DELTA_TARGET} s | {delta.seconds()} | "
        f"{_met(delta.median <= PLAN_DELTA_TARGET)} |"
    )
    if rss is not None:
        lines.append(
            f"| peak RSS of 'mirror list' reading a {index_mb} MB index < {RSS_TARGET_MB} MB | "
            f"{rss:.0f} MB | {_met(rss < RSS_TARGET_MB)} |"
        )
    return "\n".join(lines)


def _met(met: bool) -> str:
    return "met" if met else "**MISSED**"


if __name__ == "__main__":
    raise SystemExit(main())
