"""Benchmark: apply the Spack-made fixture cache, against the physical floor.

Usage: python bench/apply_fixture.py [--repeat N]

The floor, measured in the same run on the same tarballs, is what any installer must do at
least: ``sha256sum`` of every tarball plus ``tar -xzf`` of every tarball. reconcile also
verifies signatures, checks every archive member, relocates and writes records; the ratio
says what that costs. A no-op plan over the installed tree is timed too. Each step runs
``--repeat`` times (at least 3), interleaved; min, median and max are reported, with the
ratio round by round and the load average (``_bench_noise``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from _bench_noise import Timing, interleave, python_env, run_process

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "fixtures"
CACHE = SHARED / "spack-v2-signed"
KEY = SHARED / "keys" / "E4A1C447981D70AB30BD8B09643A47B4E5E41176.pub"

MANIFEST = """version = 1
[install]
root = "opt"
padded_length = 128
specs = ["hello-app"]
[[mirror]]
name = "fixture"
url = "{cache}"
[[key]]
name = "fixture"
kind = "gpg"
fingerprint = "E4A1C447981D70AB30BD8B09643A47B4E5E41176"
file = "{key}"
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    tarballs = sorted(CACHE.rglob("*.spack"))
    total = sum(t.stat().st_size for t in tarballs)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        env = python_env(work / "pycache")
        (work / "reconcile.toml").write_text(MANIFEST.format(cache=CACHE, key=KEY))
        cli = [sys.executable, "-m", "reconcile", "-m", str(work / "reconcile.toml")]
        unpacked = work / "floor"

        def floor() -> Timing:
            shutil.rmtree(unpacked, ignore_errors=True)
            unpacked.mkdir()
            hashed = run_process(["sha256sum", *map(str, tarballs)], cwd=unpacked)
            wall, cpu = hashed.wall, hashed.cpu
            for tarball in tarballs:
                step = run_process(["tar", "-xzf", str(tarball)], cwd=unpacked)
                wall, cpu = wall + step.wall, cpu + step.cpu
            return Timing(wall=wall, cpu=cpu)

        def apply() -> Timing:
            shutil.rmtree(work / "opt", ignore_errors=True)
            return run_process([*cli, "apply", "--yes"], cwd=work, env=env)

        def plan() -> Timing:
            return run_process([*cli, "plan", "--detailed-exitcode"], cwd=work, env=env)

        rounds = interleave({"floor": floor, "apply": apply, "plan": plan}, args.repeat)
    ratio = rounds.paired("apply", "floor")
    print(f"fixture cache: {len(tarballs)} tarballs, {total / 2**20:.1f} MiB, {rounds.rounds} runs")
    print(rounds.load())
    print(f"floor (sha256sum + tar -xzf): {rounds.walls['floor'].seconds()}")
    print(f"reconcile apply (cold, whole process): {rounds.walls['apply'].seconds()}")
    print(f"  = {ratio.ratio()} the floor, round by round")
    print(f"reconcile plan, nothing to do: {rounds.walls['plan'].seconds()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
