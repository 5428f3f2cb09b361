"""The cache benchmark's results: the printed report, the targets, the markdown table.

Every step is run ``repeat`` times, interleaved (floor, cold, warm, plan, then again), so
that a machine that slows down for a while slows all of them; medians are reported.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import attrs
from _bench_measure import Traffic

WARM_TARGET = 1.5  # warm apply / floor
PLAN_TARGET = 1.0  # seconds


@attrs.frozen(kw_only=True)
class Results:
    packages: int
    tarballs: int
    tarball_bytes: int
    unpacked_files: int
    unpacked_bytes: int
    jobs: int
    cpus: int
    generated_seconds: float
    floor_sequential: tuple[float, ...]
    floor_parallel: tuple[float, ...]  # empty with --jobs 1
    cold: tuple[float, ...]
    cold_traffic: Traffic
    cold_reported: dict[str, Any]  # apply --json
    warm: tuple[float, ...]
    warm_traffic: Traffic
    warm_reported: dict[str, Any]
    plans: tuple[float, ...]
    plan_traffic: Traffic
    relocation_check: str
    load_averages: tuple[float, float]  # 1-minute load average before and after

    @property
    def repeat(self) -> int:
        return len(self.cold)

    @property
    def floor(self) -> float:
        """The parallel floor when apply ran with several jobs: it may use that many."""
        return statistics.median(self.floor_parallel or self.floor_sequential)

    def median(self, times: tuple[float, ...]) -> float:
        return statistics.median(times)

    def paired_ratios(self, times: tuple[float, ...]) -> list[float]:
        """Each run's time over the same run's floor: shows how steady the machine was."""
        floors = self.floor_parallel or self.floor_sequential
        return [time / floor for time, floor in zip(times, floors, strict=True)]

    @property
    def warm_share(self) -> float:
        return self.warm_traffic.body_bytes / max(1, self.cold_traffic.body_bytes)

    def targets(self) -> list[tuple[str, bool, str]]:
        """(target, met, what was measured)."""
        warm_ratio = self.median(self.warm) / self.floor
        plan = self.median(self.plans)
        warm = self.warm_traffic
        return [
            (
                f"warm apply <= {WARM_TARGET}x the floor",
                warm_ratio <= WARM_TARGET,
                f"{warm_ratio:.2f}x",
            ),
            (f"no-op plan < {PLAN_TARGET:.0f} s", plan < PLAN_TARGET, f"{plan:.2f} s"),
            (
                "warm apply downloads no tarball",
                warm.tarball_downloads == 0,
                f"{warm.tarball_downloads} tarball downloads, {_size(warm.body_bytes)} in all "
                f"({self.warm_share:.2%} of the cold apply's bytes)",
            ),
        ]


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _times(results: Results, times: tuple[float, ...]) -> str:
    median = results.median(times)
    if len(times) == 1:
        return f"{median:.2f} s"
    return f"{median:.2f} s ({min(times):.2f}-{max(times):.2f})"


def _ratios(ratios: list[float]) -> str:
    return ", ".join(f"{ratio:.2f}x" for ratio in ratios)


def _traffic_cells(seen: Traffic) -> tuple[str, str]:
    return _size(
        seen.body_bytes
    ), f"{seen.requests} ({seen.tarball_downloads} / {seen.tarball_heads})"


def _rows(results: Results) -> list[tuple[str, str, str, str, str]]:
    """(step, wall time, ratio to the floor, over the wire, requests (tarball GET / HEAD))."""
    r = results
    floor = r.floor
    rows = [
        (
            "floor: sha256sum + tar -xzf, one tarball at a time",
            _times(r, r.floor_sequential),
            f"{r.median(r.floor_sequential) / floor:.2f}x",
            "",
            "",
        )
    ]
    if r.floor_parallel:
        rows.append(
            (
                f"floor: the same, {r.jobs} tarballs at a time",
                _times(r, r.floor_parallel),
                "1.00x",
                "",
                "",
            )
        )
    for step, times, seen in (
        ("cold apply (empty cache root and install root)", r.cold, r.cold_traffic),
        ("warm apply (install root wiped, cache root kept)", r.warm, r.warm_traffic),
    ):
        rows.append(
            (step, _times(r, times), f"{r.median(times) / floor:.2f}x", *_traffic_cells(seen))
        )
    rows.append(("no-op plan", _times(r, r.plans), "", *_traffic_cells(r.plan_traffic)))
    return rows


def _description(results: Results) -> list[str]:
    r = results
    floor = (
        f"the floor is {r.jobs} tarballs at a time: apply ran with --jobs {r.jobs}, so the fair "
        "comparison lets the floor use as many processes (one at a time is shown too)"
        if r.floor_parallel
        else "the floor is one tarball at a time, as apply ran with --jobs 1"
    )
    return [
        f"{r.packages} packages ({r.tarballs} tarballs, {_size(r.tarball_bytes)}; unpacked "
        f"{r.unpacked_files} files, {_size(r.unpacked_bytes)}) served by nginx on 127.0.0.1",
        f"`reconcile apply --jobs {r.jobs}` on {r.cpus} CPUs; each reconcile step is a whole "
        "`python -m reconcile` process (bytecode cached)",
        floor,
        f"wall times are the median of {r.repeat} interleaved runs (min-max in brackets), "
        "each step after a sync; requests count tarball GETs / HEADs in brackets",
        f"warm apply / floor run by run: {_ratios(r.paired_ratios(r.warm))}; cold apply: "
        f"{_ratios(r.paired_ratios(r.cold))}; 1-minute load average {r.load_averages[0]:.1f} "
        f"before, {r.load_averages[1]:.1f} after",
    ]


def print_results(results: Results) -> None:
    r = results
    print()
    for line in _description(r):
        print(line.replace("`", ""))
    print()
    headers = ("step", "wall time", "vs floor", "over the wire", "requests (tarball GET / HEAD)")
    rows = [headers, *_rows(r)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    print()
    cold_mirror = r.cold_reported.get("mirrors", {}).get("bench", {})
    warm_mirror = r.warm_reported.get("mirrors", {}).get("bench", {})
    print(
        f"reconcile's own count: cold {_size(cold_mirror.get('bytes_downloaded', 0))} "
        f"downloaded; warm {_size(warm_mirror.get('bytes_downloaded', 0))} downloaded, "
        f"{_size(warm_mirror.get('bytes_from_cache', 0))} from the cache root"
    )
    print(
        f"HTTP statuses: cold {r.cold_traffic.statuses}, warm {r.warm_traffic.statuses}, "
        f"no-op plan {r.plan_traffic.statuses}"
    )
    print(f"relocation check: {r.relocation_check}")
    print()
    for target, met, measured in r.targets():
        print(f"{'met   ' if met else 'MISSED'}  {target}: {measured}")


def write_markdown(results: Results, out: Path) -> None:
    r = results
    lines = [
        "## Installing from an HTTP mirror through a cache root (`bench/cache_bench.py`)",
        "",
        *(f"- {line}" for line in _description(r)),
        "",
        "| step | wall time | vs floor | over the wire | requests (tarball GET / HEAD) |",
        "| --- | ---: | ---: | ---: | ---: |",
        *(f"| {' | '.join(row)} |" for row in _rows(r)),
        "",
        "| target | measured | |",
        "| --- | --- | --- |",
        *(
            f"| {target} | {measured} | {'met' if met else '**MISSED**'} |"
            for target, met, measured in r.targets()
        ),
        "",
        "Run it with `python bench/cache_bench.py [--packages 200] [--size-mb 300] [--jobs N] "
        "[--repeat 3] [--keep DIR] [--markdown FILE] [--profile DIR]`.",
        "",
    ]
    out.write_text("\n".join(lines))
