"""Benchmark: apply the Spack-made fixture cache, against the physical floor.

Usage: python bench/apply_fixture.py [--repeat N]

The floor, measured in the same run on the same tarballs, is what any installer must do at
least: ``sha256sum`` of every tarball plus ``tar -xzf`` of every tarball. reconcile also
verifies signatures, checks every archive member, relocates and writes records; the ratio
says what that costs. A no-op plan over the installed tree is timed too.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    tarballs = sorted(CACHE.rglob("*.spack"))
    total = sum(t.stat().st_size for t in tarballs)
    floors, applies, plans = [], [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as scratch:
            work = Path(scratch)
            floors.append(
                timed(["sha256sum", *map(str, tarballs)], work)
                + sum(timed(["tar", "-xzf", str(t)], work) for t in tarballs)
            )
            (work / "reconcile.toml").write_text(MANIFEST.format(cache=CACHE, key=KEY))
            cli = [sys.executable, "-m", "reconcile", "-m", str(work / "reconcile.toml")]
            applies.append(timed([*cli, "apply", "--yes"], work))
            plans.append(timed([*cli, "plan", "--detailed-exitcode"], work))
            shutil.rmtree(work / "opt")
    floor, apply, plan = (statistics.median(x) for x in (floors, applies, plans))
    print(f"fixture cache: {len(tarballs)} tarballs, {total / 2**20:.1f} MiB, {args.repeat} runs")
    print(f"floor (sha256sum + tar -xzf): {floor:.3f} s")
    print(f"reconcile apply (cold, whole process): {apply:.3f} s  = {apply / floor:.1f}x floor")
    print(f"reconcile plan, nothing to do: {plan:.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
