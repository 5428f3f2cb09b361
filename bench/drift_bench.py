"""Benchmark: ``reconcile drift`` over a large install tree, against the physical limit.

Usage: python bench/drift_bench.py [--files 100000] [--size-mb 600] [--prefixes 200]
                                   [--jobs N] [--repeat 3] [--keep DIR] [--markdown FILE]

1. Builds an install root of ``--prefixes`` prefixes holding ``--files`` files in all (sizes
   drawn from a mix like the 200-package benchmark's: many small text files, fewer large
   binaries and data files), with nested folders and symlinks, and writes an install record
   for each prefix with reconcile's own scanner, as an apply would.
2. Warms the page cache, then measures, ``--repeat`` times, interleaved:
   - the stat floor: ``find ROOT -printf '%s %T@ %m %g\\n'`` (every entry's size, mtime,
     mode and group, which is what the fast check needs);
   - reconcile's start-up: ``python -m reconcile drift`` on a manifest with no records;
   - ``reconcile drift`` (fast mode);
   - the hashing floor: ``sha256sum`` of every file, ``--jobs`` processes at a time
     (``xargs -P``);
   - ``reconcile drift --check-contents --jobs N``.
3. Prints medians and the ratios against the floors. Targets: fast <= 2x the stat walk plus
   reconcile's measured start-up; contents <= 1.1x sha256sum. A missed one is printed as
   MISSED. Exit status 0 unless a step failed (or found drift, which would be a bug here).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from reconcile.state.records import InstallRecord, scan_prefix, utc_timestamp, write_record  # noqa: E402

# as a user runs it: with bytecode caches (some CI images turn writing them off)
ENV = {
    **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    "PYTHONPATH": str(REPO),
}
# (share of files, smallest, largest size in bytes): mostly small text, some binaries and data
SIZE_MIX = ((0.70, 200, 4_000), (0.25, 4_000, 40_000), (0.05, 40_000, 400_000))


def _sizes(count: int, total: int, rng: random.Random) -> list[int]:
    sizes = []
    for share, low, high in SIZE_MIX:
        sizes += [rng.randint(low, high) for _ in range(int(count * share))]
    sizes += [rng.randint(200, 4_000) for _ in range(count - len(sizes))]
    scale = total / max(1, sum(sizes))
    return [max(1, int(size * scale)) for size in sizes]


def build_tree(root: Path, *, files: int, size: int, prefixes: int, seed: int = 7) -> int:
    """An install root with records; returns the number of files written."""
    rng = random.Random(seed)
    sizes = _sizes(files, size, rng)
    per_prefix = len(sizes) // prefixes
    block = rng.randbytes(1 << 20)
    written = 0
    for number in range(prefixes):
        dag_hash = f"{number:032d}".replace("0", "a")[:32]
        prefix = root / f"pkg{number}-1.0-{dag_hash}"
        mine = sizes[number * per_prefix : (number + 1) * per_prefix]
        for index, file_size in enumerate(mine):
            folder = prefix / f"d{index % 7}" / f"e{index % 13}"
            folder.mkdir(parents=True, exist_ok=True)
            offset = rng.randrange(0, len(block) - min(file_size, len(block)) + 1)
            data = (block[offset : offset + file_size] * (file_size // len(block) + 1))[:file_size]
            (folder / f"f{index}").write_bytes(data)
            written += 1
        (prefix / "lib").mkdir(exist_ok=True)
        (prefix / "lib" / "link").symlink_to("../d0/e0/f0")
        spec = {
            "name": f"pkg{number}",
            "version": "1.0",
            "hash": dag_hash,
            "arch": {"platform": "linux", "platform_os": "debian12", "target": "x86_64"},
            "compiler": {"name": "gcc", "version": "12.2.0"},
        }
        write_record(
            root,
            InstallRecord(
                hash=dag_hash,
                name=f"pkg{number}",
                version="1.0",
                prefix=str(prefix),
                spec=spec,
                mirror="bench",
                mirror_url="file:///bench",
                tarball_sha256="0" * 64,
                signer=None,
                installed_at=utc_timestamp(),
                entries=scan_prefix(prefix),
            ),
        )
    return written


def manifest(folder: Path, root: Path, specs: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "reconcile.toml"
    quoted = ", ".join(f'"{spec}"' for spec in specs)
    path.write_text(f'version = 1\n\n[install]\nroot = "{root}"\nspecs = [{quoted}]\n')
    return path


def timed(command: list[str], *, expect: tuple[int, ...] = (0,), shell: bool = False) -> float:
    os.sync()
    start = time.perf_counter()
    done = subprocess.run(
        " ".join(command) if shell else command,
        shell=shell,
        capture_output=True,
        text=True,
        check=False,
        env=ENV,
    )
    seconds = time.perf_counter() - start
    if done.returncode not in expect:
        raise SystemExit(f"step failed ({done.returncode}): {command}\n{done.stdout}{done.stderr}")
    return seconds


def _spread(values: list[float], unit: str = " s") -> str:
    """min / median / max, so that the noise of a shared machine shows."""
    low, middle, high = min(values), statistics.median(values), max(values)
    return f"{low:.2f} / {middle:.2f} / {high:.2f}{unit}"


def _table(
    names: list[str], times: dict[str, list[float]], *, load: tuple[float, float]
) -> list[str]:
    """The results; each ratio is taken run by run (a step against the floor measured just
    before it), then summarised, so that a burst of load on the machine hits both sides."""
    stat_floor, startup, fast, hash_floor, contents = (times[n] for n in names)
    fast_ratio = [(f - s) / w for f, s, w in zip(fast, startup, stat_floor, strict=True)]
    fast_budget = [f / (2 * w + s) for f, s, w in zip(fast, startup, stat_floor, strict=True)]
    contents_ratio = [c / h for c, h in zip(contents, hash_floor, strict=True)]
    fast_met = statistics.median(fast_budget) <= 1
    contents_met = statistics.median(contents_ratio) <= 1.1
    return [
        f"1-minute load average {load[0]:.1f} before, {load[1]:.1f} after",
        "",
        "| step | wall time (min / median / max) | ratio, run by run (min / median / max) |",
        "| --- | ---: | ---: |",
        f"| {names[0]} | {_spread(stat_floor)} | 1.00x |",
        f"| {names[1]} | {_spread(startup)} | |",
        f"| {names[2]} | {_spread(fast)} | {_spread(fast_ratio, 'x')} the stat walk "
        "(after start-up) |",
        f"| {names[3]} | {_spread(hash_floor)} | 1.00x |",
        f"| {names[4]} | {_spread(contents)} | {_spread(contents_ratio, 'x')} sha256sum |",
        "",
        "| target | measured (median of the run-by-run ratios) | |",
        "| --- | --- | --- |",
        f"| fast <= 2x the stat walk + start-up | {statistics.median(fast_budget):.2f}x that "
        f"budget | {'met' if fast_met else '**MISSED**'} |",
        f"| contents <= 1.1x sha256sum | {statistics.median(contents_ratio):.2f}x | "
        f"{'met' if contents_met else '**MISSED**'} |",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--size-mb", type=int, default=600)
    parser.add_argument("--prefixes", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build the tree here, or reuse it")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args()

    base = args.keep or Path(tempfile.mkdtemp(prefix="drift-bench-"))
    root = base / "opt"
    try:
        if not (root / ".reconcile" / "records").is_dir():
            count = build_tree(
                root, files=args.files, size=args.size_mb << 20, prefixes=args.prefixes
            )
            print(f"built {count} files in {args.prefixes} prefixes under {root}")
        specs = [f"pkg{n}" for n in range(args.prefixes)]
        tree = manifest(base / "tree", root, specs)
        empty = manifest(base / "empty", base / "empty-root", ["nothing"])
        python = [sys.executable, "-m", "reconcile"]
        steps = {
            "stat floor: find -printf '%s %T@ %m %g'": (
                ["find", str(root), "-printf", "'%s %T@ %m %g\\n'", ">/dev/null"],
                (0,),
                True,
            ),
            "reconcile start-up (drift, no records)": (
                [*python, "-m", str(empty), "drift"],
                (2,),
                False,
            ),
            "reconcile drift (fast)": (
                [*python, "-m", str(tree), "drift", "--jobs", str(args.jobs)],
                (0,),
                False,
            ),
            f"hash floor: sha256sum, {args.jobs} at a time": (
                [
                    "find",
                    str(root),
                    "-type",
                    "f",
                    "-print0",
                    "|",
                    "xargs",
                    "-0",
                    "-n",
                    "500",
                    "-P",
                    str(args.jobs),
                    "sha256sum",
                    ">/dev/null",
                ],
                (0,),
                True,
            ),
            f"reconcile drift --check-contents --jobs {args.jobs}": (
                [*python, "-m", str(tree), "drift", "--check-contents", "--jobs", str(args.jobs)],
                (0,),
                False,
            ),
        }
        for command, expect, shell in steps.values():  # warm the page cache
            timed(command, expect=expect, shell=shell)
        load_before = os.getloadavg()[0]
        times: dict[str, list[float]] = {name: [] for name in steps}
        for _ in range(max(3, args.repeat)):  # three at least: min / median / max
            for name, (command, expect, shell) in steps.items():
                times[name].append(timed(command, expect=expect, shell=shell))
        load_after = os.getloadavg()[0]
        rows = _table(list(steps), times, load=(load_before, load_after))
        files = sum(1 for _ in root.rglob("*") if _.is_file())
        header = (
            f"{files} files, {sum(p.stat().st_size for p in root.rglob('*') if p.is_file()) >> 20} "
            f"MiB in {args.prefixes} prefixes; {args.repeat} interleaved runs each; "
            f"{os.cpu_count()} CPUs; page cache warm"
        )
        print(header)
        print("\n".join(rows))
        if args.markdown:
            args.markdown.write_text(header + "\n\n" + "\n".join(rows) + "\n")
        return 0
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
