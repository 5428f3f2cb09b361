"""What every benchmark reports about its own noise: runs interleaved, min/median/max, load.

The development machine has 2 cores shared by several people: one number per step says
little. Each step runs ``repeat`` times, interleaved (a, b, c, a, b, c, ...), so that a busy
spell slows every step rather than one; tables give min, median and max, and the load
average around the runs. Targets are ratios between steps of the same round, which a busy
machine moves far less than absolute times.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import attrs

REPO = Path(__file__).resolve().parents[1]


@attrs.frozen(kw_only=True)
class Spread:
    """Several timings of one step."""

    values: tuple[float, ...]

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def max(self) -> float:
        return max(self.values)

    def seconds(self) -> str:
        """``0.123 s (0.101-0.240)``: median, then min-max."""
        return f"{self.median:.3f} s ({self.min:.3f}-{self.max:.3f})"

    def millis(self) -> str:
        return f"{self.median * 1000:.0f} ms ({self.min * 1000:.0f}-{self.max * 1000:.0f})"

    def ratio(self) -> str:
        return f"{self.median:.2f}x ({self.min:.2f}-{self.max:.2f})"


def load_average() -> float:
    """The 1-minute load average (runnable processes, on a machine with os.cpu_count() CPUs)."""
    return os.getloadavg()[0]


@attrs.frozen(kw_only=True)
class Timing:
    wall: float
    cpu: float  # user + system of the process and its children


@attrs.frozen(kw_only=True)
class Rounds:
    """Each step's timings over interleaved rounds, and the load average before and after."""

    walls: Mapping[str, Spread]
    cpus: Mapping[str, Spread]
    load_before: float
    load_after: float
    rounds: int

    def paired(self, numerator: str, denominator: str, *, cpu: bool = False) -> Spread:
        """``numerator / denominator`` round by round (each pair ran back to back)."""
        table = self.cpus if cpu else self.walls
        pairs = zip(table[numerator].values, table[denominator].values, strict=True)
        return Spread(values=tuple(a / b for a, b in pairs))

    def paired_difference(self, minuend: str, subtrahend: str, *, cpu: bool = False) -> Spread:
        table = self.cpus if cpu else self.walls
        pairs = zip(table[minuend].values, table[subtrahend].values, strict=True)
        return Spread(values=tuple(a - b for a, b in pairs))

    def load(self) -> str:
        return (
            f"1-minute load average {self.load_before:.1f} before, {self.load_after:.1f} after, "
            f"on {os.cpu_count()} CPUs"
        )


def interleave(steps: Mapping[str, Callable[[], Timing]], repeat: int) -> Rounds:
    """Runs every step once per round, ``repeat`` rounds (at least 3)."""
    repeat = max(3, repeat)
    walls: dict[str, list[float]] = {name: [] for name in steps}
    cpus: dict[str, list[float]] = {name: [] for name in steps}
    before = load_average()
    for _ in range(repeat):
        for name, step in steps.items():
            timing = step()
            walls[name].append(timing.wall)
            cpus[name].append(timing.cpu)
    return Rounds(
        walls={name: Spread(values=tuple(v)) for name, v in walls.items()},
        cpus={name: Spread(values=tuple(v)) for name, v in cpus.items()},
        load_before=before,
        load_after=load_average(),
        rounds=repeat,
    )


def run_process(
    command: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    expect: Sequence[int] = (0,),
) -> Timing:
    """Runs ``command`` to its end; its wall time and the CPU time it and its children used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        command, cwd=cwd, env=dict(env) if env is not None else None, capture_output=True
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in expect:
        said = done.stderr.decode(errors="replace")
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{said}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timing(wall=wall, cpu=cpu)


def python_env(pycache: Path) -> dict[str, str]:
    """The environment a user's installed reconcile runs in: this checkout first on the path,
    bytecode written and read (in ``pycache``, not in the checkout) so that what is measured
    is not recompiling every module on every run."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def reconcile(*args: str) -> list[str]:
    return [sys.executable, "-m", "reconcile", *args]


def scratch(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


def spack_or_none(wanted: bool) -> str | None:
    """The ``spack`` on PATH when ``--spack`` asked for the comparison; says why it is skipped
    otherwise."""
    if not wanted:
        return None
    found = shutil.which("spack")
    if found is None:
        print(
            "--spack: no 'spack' on PATH, the Spack comparison is skipped "
            "(put Spack's bin/ on PATH, e.g. '. spack/share/spack/setup-env.sh')",
            file=sys.stderr,
        )
    return found
