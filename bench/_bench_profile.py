"""Where the time goes: a profiled warm apply and no-op plan, and the plan's import times.

The warm apply is profiled with ``--jobs 1``, so that the times of its threads add up to its
wall time (the main thread only waits for the worker; that wait is left out of the lists).
cProfile slows Python code down (by about a third here), not system calls or C code: read
the numbers as shares, and the unprofiled times printed alongside as the real ones.
"""

from __future__ import annotations

import io
import pstats
import re
import sys
from pathlib import Path

from _bench_measure import reconcile_command, run_timed
from _bench_steps import Setup, reconcile, require, wipe

TOP = 20
WAITING = (
    "<method 'acquire' of '_thread.lock' objects>",
    "<method 'poll' of 'select.poll' objects>",
)
_IMPORT_LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def _where(function: tuple[str, int, str]) -> str:
    filename, line, name = function
    if filename == "~":
        return name  # a built-in
    parts = Path(filename).parts
    if "reconcile" in parts:
        index = len(parts) - 1 - parts[::-1].index("reconcile")
        return f"{'/'.join(parts[index:])}:{line}:{name}"
    for marker in ("site-packages", "python3.11"):
        if marker in parts:
            return f"{'/'.join(parts[parts.index(marker) + 1 :])}:{line}:{name}"
    return f"{Path(filename).name}:{line}:{name}"


def top_functions(
    profile: Path, *, key: str, only: str | None = None, limit: int = TOP
) -> list[tuple[str, float, int]]:
    """(file:line:function, seconds, calls) by ``key`` ("cumulative" or "tottime"),
    restricted to names containing ``only``; waiting for other threads is left out."""
    stats = pstats.Stats(str(profile), stream=io.StringIO())
    rows = []
    for function, (_, calls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = _where(function)
        if where in WAITING or (only is not None and only not in where):
            continue
        rows.append((where, cumtime if key == "cumulative" else tottime, calls))
    rows.sort(key=lambda row: row[1], reverse=True)
    return rows[:limit]


def import_times(
    stderr: str, *, reconcile_modules: bool, limit: int = TOP
) -> list[tuple[str, float]]:
    """Modules by cumulative import seconds from ``python -X importtime`` output, at any
    depth (so the times overlap): reconcile's own, or the others (third-party and standard
    library) whose parent package is not listed already."""
    rows = []
    for line in stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if match is None:
            continue
        name, seconds = match.group(4), int(match.group(2)) / 1e6
        if name.startswith("reconcile") == reconcile_modules:
            rows.append((name, seconds))
    if not reconcile_modules:
        packages = {name for name, _ in rows if "." not in name}
        rows = [(n, s) for n, s in rows if "." not in n or n.split(".")[0] not in packages]
    return sorted(rows, key=lambda row: row[1], reverse=True)[:limit]


def _listing(title: str, rows: list[tuple[str, float, int]]) -> list[str]:
    return [title, *(f"  {seconds:7.3f} s {calls:>8}x  {where}" for where, seconds, calls in rows)]


def profile_steps(setup: Setup, folder: Path) -> None:
    """Profile a warm apply and a no-op plan into ``folder``; print and keep a summary."""
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nprofiling into {folder}")
    wrapper = [sys.executable, str(Path(__file__).with_name("_bench_cprofile.py"))]
    manifest = ["-m", str(setup.manifest)]
    apply_args = ["apply", "--yes", "--json", "--jobs", "1"]
    plan_args = ["plan", "--detailed-exitcode"]

    def profiled(out: Path, args: list[str], what: str) -> float:
        run = run_timed([*wrapper, str(out), *manifest, *args], cwd=setup.run_dir, env=setup.env)
        return require(run, what).seconds

    wipe(setup.install_root)
    plain_apply = require(reconcile(setup, *apply_args), "the warm apply with --jobs 1").seconds
    wipe(setup.install_root)
    apply_profile, plan_profile = folder / "warm-apply.prof", folder / "noop-plan.prof"
    profiled_apply = profiled(apply_profile, apply_args, "the profiled warm apply")
    plain_plan = require(reconcile(setup, *plan_args), "the no-op plan").seconds
    profiled_plan = profiled(plan_profile, plan_args, "the profiled no-op plan")
    command = reconcile_command(setup.manifest, *plan_args)
    imports = run_timed(
        [command[0], "-X", "importtime", *command[1:]], cwd=setup.run_dir, env=setup.env
    )
    require(imports, "the no-op plan with -X importtime")
    (folder / "noop-plan.importtime.txt").write_text(imports.stderr)
    bare = run_timed([sys.executable, "-c", "pass"], cwd=setup.run_dir, env=setup.env)
    cli = run_timed(
        [sys.executable, "-c", "import reconcile.cli.main"], cwd=setup.run_dir, env=setup.env
    )
    out = [
        f"warm apply --jobs 1: {plain_apply:.2f} s ({profiled_apply:.2f} s profiled)",
        f"no-op plan: {plain_plan:.2f} s ({profiled_plan:.2f} s profiled); of which "
        f"python start-up {bare.seconds:.2f} s, importing reconcile.cli.main "
        f"{cli.seconds - bare.seconds:.2f} s",
        "no-op plan, reconcile's modules by cumulative import time (-X importtime):",
        *(
            f"  {seconds:7.3f} s  {name}"
            for name, seconds in import_times(imports.stderr, reconcile_modules=True, limit=12)
        ),
        "no-op plan, other packages by cumulative import time:",
        *(
            f"  {seconds:7.3f} s  {name}"
            for name, seconds in import_times(imports.stderr, reconcile_modules=False, limit=12)
        ),
    ]
    for title, profile in (("warm apply", apply_profile), ("no-op plan", plan_profile)):
        out += _listing(
            f"{title}: reconcile's functions by cumulative time",
            top_functions(profile, key="cumulative", only="reconcile/"),
        )
        out += _listing(
            f"{title}: all functions by own time", top_functions(profile, key="tottime")
        )
    (folder / "summary.txt").write_text("\n".join(out) + "\n")
    print("\n".join(out))
