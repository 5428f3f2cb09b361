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

WARM_TARGET = 1.2  # warm apply / floor
COLD_TARGET = 1.5  # cold apply / cold floor (the same downloads with curl, then the floor)
PLAN_TARGET = 1.0  # seconds
RSS_TARGET = 120 << 20  # bytes, peak resident set of an apply


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
    floor_cold: tuple[float, ...]  # curl, then the floor, --jobs tarballs at a time
    cold: tuple[float, ...]
    cold_traffic: Traffic
    cold_reported: dict[str, Any]  # apply --json
    warm: tuple[float, ...]
    warm_traffic: Traffic
    warm_reported: dict[str, Any]
    plans: tuple[float, ...]
    plan_traffic: Traffic
    relocation_check: str
    peak_rss: dict[str, int]  # "cold", "warm": the largest of the runs, bytes
    baseline: str  # --baseline: another checkout, measured in the same runs ("" without)
    baseline_cold: tuple[float, ...]
    baseline_warm: tuple[float, ...]
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

    def paired_ratios(self, times: tuple[float, ...], *, cold: bool = False) -> list[float]:
        """Each run's time over the same run's floor (the cold floor for a cold apply): the
        ratio a burst of load on the shared machine changes least."""
        floors = self.floor_cold if cold else (self.floor_parallel or self.floor_sequential)
        return [time / floor for time, floor in zip(times, floors, strict=True)]

    @property
    def warm_share(self) -> float:
        return self.warm_traffic.body_bytes / max(1, self.cold_traffic.body_bytes)

    def targets(self) -> list[tuple[str, bool, str]]:
        """(target, met, what was measured): medians of the run-by-run ratios."""
        warm_ratio = statistics.median(self.paired_ratios(self.warm))
        cold_ratio = statistics.median(self.paired_ratios(self.cold, cold=True))
        plan = self.median(self.plans)
        warm = self.warm_traffic
        rss = max(self.peak_rss.values())
        return [
            (
                f"warm apply <= {WARM_TARGET}x the floor",
                warm_ratio <= WARM_TARGET,
                f"{warm_ratio:.2f}x",
            ),
            (
                f"cold apply <= {COLD_TARGET}x the cold floor (curl + the floor)",
                cold_ratio <= COLD_TARGET,
                f"{cold_ratio:.2f}x",
            ),
            (
                f"peak RSS <= {RSS_TARGET >> 20} MB at --jobs {self.jobs}",
                rss <= RSS_TARGET,
                f"{rss / 2**20:.0f} MiB (cold {self.peak_rss['cold'] / 2**20:.0f}, warm "
                f"{self.peak_rss['warm'] / 2**20:.0f})",
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
    return f"{min(times):.2f} / {median:.2f} / {max(times):.2f} s"


def _ratios(ratios: list[float]) -> str:
    """min / median / max of run-by-run ratios."""
    return f"{min(ratios):.2f} / {statistics.median(ratios):.2f} / {max(ratios):.2f}x"


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
    rows.append(
        (
            f"cold floor: curl, then sha256sum + tar -xzf, {r.jobs} at a time",
            _times(r, r.floor_cold),
            f"{r.median(r.floor_cold) / floor:.2f}x",
            "",
            "",
        )
    )
    for step, times, seen, cold in (
        ("cold apply (empty cache root and install root)", r.cold, r.cold_traffic, True),
        ("warm apply (install root wiped, cache root kept)", r.warm, r.warm_traffic, False),
    ):
        against = "the cold floor" if cold else "the floor"
        ratio = f"{_ratios(r.paired_ratios(times, cold=cold))} {against}"
        rows.append((step, _times(r, times), ratio, *_traffic_cells(seen)))
    for step, times, cold in (
        ("baseline: cold apply", r.baseline_cold, True),
        ("baseline: warm apply", r.baseline_warm, False),
    ):
        if times:
            against = "the cold floor" if cold else "the floor"
            ratio = f"{_ratios(r.paired_ratios(times, cold=cold))} {against}"
            rows.append((f"{step} ({r.baseline})", _times(r, times), ratio, "", ""))
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
        f"wall times are min / median / max of {r.repeat} interleaved runs, each step after a "
        "sync; ratios are taken run by run (against the floor measured just before) and "
        "given as min / median / max; requests count tarball GETs / HEADs in brackets",
        f"1-minute load average {r.load_averages[0]:.1f} before, {r.load_averages[1]:.1f} after",
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
        "| step | wall time | vs floor (run by run) | over the wire | requests (GET / HEAD) |",
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
