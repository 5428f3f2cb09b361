"""Benchmark: install N packages from an HTTP mirror through a cache root, against the floor.

Usage: python bench/cache_bench.py [--packages 200] [--size-mb 300] [--jobs N] [--repeat 3]
                                   [--keep DIR] [--markdown FILE] [--profile DIR]

1. Generates N signed packages of real content (``_bench_generate``: ELF programs and
   libraries with RPATHs and C strings naming their prefixes, text files, pkg-config files,
   symlinks, poorly compressible bulk data; applications depend on libraries), or reuses
   them from ``--keep DIR``.
2. Serves the mirror with nginx on 127.0.0.1 (``tests/nginx_harness.py``) and writes a
   manifest naming it, the pinned key, a cache root for its URL and all N specs.
3. Measures, ``--repeat`` times, interleaved: the floor (``sha256sum`` + ``tar -xzf`` of every
   tarball, one at a time and ``--jobs`` at a time); the cold floor (the same after ``curl``
   downloads each tarball from the same nginx); a cold apply (empty cache root and
   install root); a warm apply (install root wiped, cache root kept); a no-op plan over the
   installed specs. Each reconcile step is a whole ``python -m reconcile`` process; nginx's
   access log says what crossed the wire. An installed program is run to check relocation.
4. Prints min / median / max, run-by-run ratios and bytes, and whether the targets are met
   (warm apply at most 1.2x the floor, cold apply at most 1.5x the cold floor, peak RSS at
   most 120 MB, no-op plan under 1 s, no tarball downloaded by the warm apply): a missed
   one is printed as MISSED. The exit status is 0 unless a step failed.

``--profile DIR`` then profiles a warm apply (all threads) and a no-op plan, and records the
no-op plan's import times (``_bench_profile``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
from _bench_generate import generate
from _bench_measure import Traffic, floor_parallel, floor_sequential, tree_size
from _bench_profile import profile_steps
from _bench_report import Results, print_results, write_markdown
from _bench_steps import (
    Setup,
    StepFailedError,
    apply,
    check_installed_program,
    make_setup,
    noop_plan,
    serve,
    warm_up,
    wipe,
)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--packages", type=int, default=200, help="how many packages")
    parser.add_argument("--size-mb", type=int, default=300, help="MiB of tarballs in all")
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="reconcile apply --jobs, and the parallel floor's processes (default: CPUs)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of every step (median)")
    parser.add_argument(
        "--keep", type=Path, help="work folder to keep; a rerun reuses the generated cache"
    )
    parser.add_argument("--markdown", type=Path, help="also write the results as markdown")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another reconcile checkout: its cold and warm applies are measured too, "
        "interleaved with this one's (before / after a change, under the same load)",
    )
    parser.add_argument(
        "--profile", type=Path, help="also profile a warm apply and a no-op plan into DIR"
    )
    args = parser.parse_args()
    if args.jobs < 1 or args.repeat < 1 or args.size_mb < 1 or args.packages < 2:
        parser.error("--jobs, --repeat and --size-mb must be at least 1, --packages at least 2")
    return args


@contextmanager
def _work_folder(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep.resolve()
        return
    folder = Path(tempfile.mkdtemp(prefix="rcb-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _measure(setup: Setup, args: argparse.Namespace) -> Results:
    tarballs = setup.generated.tarballs()
    scratch = setup.run_dir / "floor"
    load_before = os.getloadavg()[0]
    sequential, parallel, cold_floor, cold, warm, plans = [], [], [], [], [], []
    rss: dict[str, int] = {"cold": 0, "warm": 0}
    baseline_cold: list[float] = []
    baseline_warm: list[float] = []
    before = _baseline_setup(setup, args.baseline)
    mirror = setup.generated.mirror
    urls = [f"{setup.server.url}/{t.relative_to(mirror).as_posix()}" for t in tarballs]
    traffic: dict[str, Traffic] = {}
    reported: dict[str, dict[str, object]] = {}
    files = unpacked = 0
    check = ""
    for number in range(1, args.repeat + 1):
        print(f"run {number} of {args.repeat}: floor", end="", flush=True)
        sequential.append(floor_sequential(tarballs, scratch))
        if args.jobs > 1:
            parallel.append(floor_parallel(tarballs, scratch, args.jobs))
        print(", cold floor", end="", flush=True)
        cold_floor.append(floor_parallel(tarballs, scratch, args.jobs, urls=urls))
        print(", cold apply", end="", flush=True)
        wipe(setup.install_root, setup.cache_root)
        run, traffic["cold"] = apply(setup, args.jobs, "the cold apply")
        cold.append(run.seconds)
        rss["cold"] = max(rss["cold"], run.peak_rss)
        reported["cold"] = json.loads(run.stdout)
        if number == 1:
            files, unpacked = tree_size(setup.install_root)
        print(", warm apply", end="", flush=True)
        wipe(setup.install_root)
        run, traffic["warm"] = apply(setup, args.jobs, "the warm apply")
        warm.append(run.seconds)
        rss["warm"] = max(rss["warm"], run.peak_rss)
        reported["warm"] = json.loads(run.stdout)
        check = check_installed_program(setup)
        if before is not None:
            print(", baseline cold and warm apply", end="", flush=True)
            wipe(setup.install_root, setup.cache_root)
            baseline_cold.append(apply(before, args.jobs, "the baseline's cold apply")[0].seconds)
            wipe(setup.install_root)
            baseline_warm.append(apply(before, args.jobs, "the baseline's warm apply")[0].seconds)
        print(", no-op plan", flush=True)
        run, traffic["plan"] = noop_plan(setup)
        plans.append(run.seconds)
    return Results(
        packages=len(setup.generated.specs),
        tarballs=len(tarballs),
        tarball_bytes=sum(t.stat().st_size for t in tarballs),
        unpacked_files=files,
        unpacked_bytes=unpacked,
        jobs=args.jobs,
        cpus=os.cpu_count() or 1,
        generated_seconds=setup.generated.seconds,
        floor_sequential=tuple(sequential),
        floor_parallel=tuple(parallel),
        floor_cold=tuple(cold_floor),
        cold=tuple(cold),
        peak_rss=rss,
        baseline=str(args.baseline or ""),
        baseline_cold=tuple(baseline_cold),
        baseline_warm=tuple(baseline_warm),
        cold_traffic=traffic["cold"],
        cold_reported=reported["cold"],
        warm=tuple(warm),
        warm_traffic=traffic["warm"],
        warm_reported=reported["warm"],
        plans=tuple(plans),
        plan_traffic=traffic["plan"],
        relocation_check=check,
        load_averages=(load_before, os.getloadavg()[0]),
    )


def _baseline_setup(setup: Setup, baseline: Path | None) -> Setup | None:
    """``setup`` running the reconcile of the checkout ``baseline`` (bytecode compiled)."""
    if baseline is None:
        return None
    env = {**setup.env, "PYTHONPATH": str(baseline.resolve())}
    other = attrs.evolve(setup, env=env)
    compiled = [sys.executable, "-m", "compileall", "-q", str(baseline / "reconcile")]
    subprocess.run(compiled, env=env, check=True, capture_output=True)
    return other


def _run(work: Path, args: argparse.Namespace) -> int:
    generated = generate(
        work / "generated", packages=args.packages, size_mb=args.size_mb, jobs=args.jobs
    )
    run_dir = work / "run"
    wipe(run_dir)
    run_dir.mkdir()
    with serve(generated.mirror, tmp=run_dir / "nginx") as server:
        setup = make_setup(run_dir, server, generated)
        try:
            warm_up(setup)
            results = _measure(setup, args)
            print_results(results)
            if args.markdown is not None:
                write_markdown(results, args.markdown)
                print(f"wrote {args.markdown}")
            if args.profile is not None:
                profile_steps(setup, args.profile.resolve())
        except StepFailedError as exc:
            print(f"\nFAILED: {exc}", file=sys.stderr)
            return 1
    return 0


def main() -> int:
    args = _parse_args()
    with _work_folder(args.keep) as work:
        return _run(work, args)


if __name__ == "__main__":
    raise SystemExit(main())
