"""Mutation testing of reconcile's safety checks with mutmut (not part of .ci/run).

    python3 bench/mutation.py [AREA ...] [--jobs N] [--workdir DIR] [--fresh | --survivors]

Areas: trust, archive, fetch, cache, plan (default: all). For each area a scratch copy of
``reconcile/``, ``tests/`` and ``pyproject.toml`` is made in WORKDIR/AREA with a
``[tool.mutmut]`` table that mutates only that area's files and runs only that area's tests
(mutmut runs, per mutant, only the tests that reach the mutated function). The copy lives
elsewhere than the checkout, so the tests find the shared fixtures through
``RECONCILE_SHARED`` (set here to the ``../shared`` of this checkout).

Prints killed / survived / other counts per area, lists every survivor, and writes
WORKDIR/summary.json. ``--survivors`` tests again only the last run's survivors and the
mutants not tested yet (after adding tests); ``--fresh`` starts an area over.
``mutmut show NAME`` in WORKDIR/AREA shows a survivor's diff.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Area:
    files: tuple[str, ...]  # mutated
    tests: tuple[str, ...]  # run (only those that reach the mutated function, per mutant)
    # mutant names (fnmatch) to test; empty: all. Keeps the run to the safety decisions.
    only: tuple[str, ...] = ()
    # tests that read the source tree itself, which mutmut's copy changes (its trampolines)
    deselect: tuple[str, ...] = ()


AREAS: dict[str, Area] = {
    "trust": Area(
        files=(
            "reconcile/trust/verify.py",
            "reconcile/trust/policy.py",
        ),
        tests=("tests/trust",),
        deselect=(
            "tests/trust/test_trust_policy.py::test_only_the_policy_constructs_a_scheme_verifier",
        ),
        only=(
            "reconcile.trust.verify.*_judge__*",
            "reconcile.trust.verify.*_import__*",
            "reconcile.trust.verify.*_refuse_bad_result__*",
            "reconcile.trust.verify.*_primary_fingerprints__*",
            "reconcile.trust.policy.*_enforce__*",
            "reconcile.trust.policy.*counting_keys__*",
        ),
    ),
    "archive": Area(
        files=(
            "reconcile/archive/rules.py",
            "reconcile/archive/unpack.py",
        ),
        tests=("tests/archive",),
    ),
    "fetch": Area(files=("reconcile/apply/fetch.py",), tests=("tests/apply/test_fetch.py",)),
    "cache": Area(
        files=("reconcile/cache/store.py",),
        tests=("tests/cache/test_cache_store.py", "tests/cache/test_cache_store_selection.py"),
    ),
    "plan": Area(
        files=(
            "reconcile/plan/serialize.py",
            "reconcile/plan/codec.py",
            "reconcile/plan/planner.py",
        ),
        tests=("tests/plan",),
        only=(
            "reconcile.plan.planner.*",
            "reconcile.plan.codec.*",
            "reconcile.plan.serialize.x_plan_from_dict__*",
            "reconcile.plan.serialize.x_stale_resources__*",
            "reconcile.plan.serialize.x_observed_digest__*",
        ),
    ),
}


def _config(area: Area) -> str:
    def toml_list(items: tuple[str, ...]) -> str:
        return "[" + ", ".join(json.dumps(item) for item in items) + "]"

    return (
        "\n[tool.mutmut]\n"
        'source_paths = ["reconcile"]\n'
        f"only_mutate = {toml_list(area.files)}\n"
        f"pytest_add_cli_args_test_selection = {toml_list(area.tests)}\n"
        'pytest_add_cli_args = ["-q", "-p", "no:cacheprovider", "--hypothesis-profile=mutation"'
        + "".join(f", {json.dumps('--deselect=' + test)}" for test in area.deselect)
        + "]\n"
    )


def _prepare(area: str, folder: Path, fresh: bool) -> None:
    if fresh and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("reconcile", "tests"):
        target = folder / name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(REPO / name, target, ignore=shutil.ignore_patterns("__pycache__"))
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    (folder / "pyproject.toml").write_text(pyproject + _config(AREAS[area]), encoding="utf-8")


def _mutmut(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RECONCILE_SHARED": str(REPO.parent / "shared")}
    return subprocess.run(
        ["mutmut", *args], cwd=folder, env=env, text=True, capture_output=True, check=False
    )


# mutmut's exit codes per mutant (mutmut.stats.status_by_exit_code), folded
_STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", None: "untested"}


def _tally(folder: Path, area: Area) -> tuple[dict[str, int], list[str], list[str]]:
    """Counts per status of the area's mutants, the names of the survivors, and of those not
    tested yet (new, or in code that changed since they were)."""
    stats: dict[str, int] = {}
    survivors = []
    untested = []
    patterns = area.only
    for source in area.files:
        meta = folder / "mutants" / f"{source}.meta"
        if not meta.is_file():
            continue
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        for name, code in codes.items():
            if patterns and not any(fnmatch.fnmatchcase(name, p) for p in patterns):
                continue
            status = _STATUS.get(code, "timeout" if code in (24, -24, 36, 152, 255) else "other")
            stats[status] = stats.get(status, 0) + 1
            if status == "survived":
                survivors.append(name)
            elif status == "untested":
                untested.append(name)
    return stats, survivors, untested


def run_area(
    area: str, workdir: Path, jobs: int, fresh: bool, mutants: tuple[str, ...], survivors: bool
) -> dict[str, object]:
    folder = workdir / area
    if survivors and not fresh and (folder / "mutants").is_dir():
        # after adding tests: test again what survived last time, and what is not tested yet
        _, survived, untested = _tally(folder, AREAS[area])
        mutants = (*survived, *untested)
        if not mutants:
            return {**json.loads((workdir / "summary.json").read_text())[area], "seconds": 0}
    _prepare(area, folder, fresh)
    # which tests reach which function is measured again: tests may have been added
    (folder / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    started = time.monotonic()
    run = _mutmut(folder, "run", "--max-children", str(jobs), *(mutants or AREAS[area].only))
    if run.returncode != 0:
        sys.stderr.write(run.stdout[-4000:] + run.stderr[-4000:])
        raise SystemExit(f"mutmut run failed in {folder}")
    # the whole area: a run of a few named mutants updates their verdicts among the rest
    stats, survived, _ = _tally(folder, AREAS[area])
    return {
        "files": list(AREAS[area].files),
        "tests": list(AREAS[area].tests),
        "seconds": round(time.monotonic() - started),
        "stats": stats,
        "survivors": survived,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("areas", nargs="*", help=f"some of {', '.join(AREAS)} (default: all)")
    parser.add_argument("--jobs", type=int, default=1, help="mutants tested at once (default 1)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/reconcile-mutation"))
    parser.add_argument("--fresh", action="store_true", help="forget earlier results")
    parser.add_argument(
        "--mutants", nargs="+", default=(), help="test only these mutant names (fnmatch)"
    )
    parser.add_argument(
        "--survivors",
        action="store_true",
        help="test again only the last run's survivors and the mutants not tested yet",
    )
    options = parser.parse_args()
    unknown = set(options.areas) - set(AREAS)
    if unknown:
        parser.error(f"unknown area {', '.join(sorted(unknown))}; the areas: {', '.join(AREAS)}")
    summary_path = options.workdir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    for area in options.areas or list(AREAS):
        result = run_area(
            area,
            options.workdir,
            options.jobs,
            options.fresh,
            tuple(options.mutants),
            options.survivors,
        )
        summary[area] = result
        stats = result["stats"]
        assert isinstance(stats, dict)
        counts = "  ".join(f"{status} {count}" for status, count in sorted(stats.items()))
        print(f"{area:8} {counts}  ({result['seconds']} s)")
        for name in result["survivors"]:  # type: ignore[attr-defined]
            print(f"    survived: {name}")
        summary_path.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
