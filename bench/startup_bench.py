"""Benchmark: start-up, and a no-op plan and apply on the quickstart, against ``python -c pass``.

Usage: python bench/startup_bench.py [--repeat 5] [--markdown FILE] [--spack]

1. Copies ``examples/quickstart`` to a scratch folder, names its mirror with a ``file://`` URL
   and applies it once.
2. Measures, ``--repeat`` times (at least 3), interleaved: ``python -c pass`` (the
   interpreter's own start-up, the floor), ``reconcile --version``, a no-op ``reconcile plan``
   and a no-op ``reconcile apply --yes``; each a whole process with bytecode cached. Wall and
   CPU time (user + system) are both given: on a busy machine the wall time is mostly waiting
   for a CPU, and CPU time shows what reconcile itself costs.
3. With ``--spack`` and a ``spack`` on PATH: the same signed cache of Spack-made packages
   (``../shared/fixtures/spack-v2-signed``) installed by ``spack buildcache install`` and by
   ``reconcile apply``, then installed again (nothing to do), in a private Spack
   configuration (its own install tree and mirror, recipe stubs for the cache's own
   namespace, the key trusted with ``spack gpg trust``: this adds it to that Spack's
   keyring); without a ``spack`` the comparison is skipped with a message.

Targets: ``--version`` within 60 ms of ``python -c pass``, a no-op plan within 150 ms of it,
a no-op apply within 1.1x a no-op plan (round by round). A missed one is printed as MISSED.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from _bench_noise import (
    REPO,
    Rounds,
    Timing,
    interleave,
    python_env,
    reconcile,
    run_process,
    scratch,
    spack_or_none,
)

VERSION_TARGET = 0.060  # s over python -c pass
PLAN_TARGET = 0.150  # s over python -c pass
APPLY_TARGET = 1.1  # no-op apply / no-op plan
SHARED = Path(os.environ.get("RECONCILE_SHARED") or REPO.parent / "shared")
SPACK_CACHE = SHARED / "fixtures" / "spack-v2-signed"
SPACK_KEY = SHARED / "fixtures" / "keys" / "E4A1C447981D70AB30BD8B09643A47B4E5E41176.pub"


def quickstart(base: Path, env: dict[str, str]) -> Path:
    folder = base / "quickstart"
    shutil.copytree(
        REPO / "examples" / "quickstart", folder, ignore=shutil.ignore_patterns("opt", ".reconcile")
    )
    manifest = folder / "reconcile.toml"
    text = manifest.read_text().replace('url = "mirror"', f'url = "{(folder / "mirror").as_uri()}"')
    manifest.write_text(text)
    run_process(reconcile("apply", "--yes"), cwd=folder, env=env)
    return folder


def steps(folder: Path, env: dict[str, str]) -> dict[str, Callable[[], Timing]]:
    def step(*command: str, expect: tuple[int, ...] = (0,)) -> Callable[[], Timing]:
        return lambda: run_process(list(command), cwd=folder, env=env, expect=expect)

    return {
        "python -c pass": step(sys.executable, "-c", "pass"),
        "reconcile --version": step(*reconcile("--version")),
        "no-op reconcile plan": step(*reconcile("plan", "--detailed-exitcode")),
        "no-op reconcile apply --yes": step(*reconcile("apply", "--yes")),
    }


def render(rounds: Rounds) -> str:
    lines = [
        "- each step is a whole process with bytecode cached; the quickstart's mirror is a "
        "file:// URL",
        f"- {rounds.rounds} interleaved rounds; {rounds.load()}",
        "",
        "| step | wall: median (min-max) | CPU: median (min-max) |",
        "| --- | ---: | ---: |",
    ]
    for name in rounds.walls:
        lines.append(f"| {name} | {rounds.walls[name].millis()} | {rounds.cpus[name].millis()} |")
    version = rounds.paired_difference("reconcile --version", "python -c pass")
    plan = rounds.paired_difference("no-op reconcile plan", "python -c pass")
    plan_cpu = rounds.paired_difference("no-op reconcile plan", "python -c pass", cpu=True)
    version_cpu = rounds.paired_difference("reconcile --version", "python -c pass", cpu=True)
    apply = rounds.paired("no-op reconcile apply --yes", "no-op reconcile plan")
    apply_cpu = rounds.paired("no-op reconcile apply --yes", "no-op reconcile plan", cpu=True)
    lines += [
        "",
        "| target (round by round) | wall: median (min-max) | CPU: median (min-max) | wall |",
        "| --- | ---: | ---: | --- |",
        f"| --version - python -c pass <= {VERSION_TARGET * 1000:.0f} ms | {version.millis()} "
        f"| {version_cpu.millis()} | {_met(version.median <= VERSION_TARGET)} |",
        f"| no-op plan - python -c pass <= {PLAN_TARGET * 1000:.0f} ms | {plan.millis()} "
        f"| {plan_cpu.millis()} | {_met(plan.median <= PLAN_TARGET)} |",
        f"| no-op apply / no-op plan <= {APPLY_TARGET} | {apply.ratio()} | {apply_cpu.ratio()} "
        f"| {_met(apply.median <= APPLY_TARGET)} |",
    ]
    return "\n".join(lines)


def _stub_recipes(repo: Path) -> list[str]:
    """A Spack package repository with a recipe stub for each spec of the fixture cache that
    is in no repository Spack ships (namespace ``myns``): Spack needs a recipe to install even
    from a binary cache. Returns the repositories to configure."""
    index = json.loads((SPACK_CACHE / "build_cache" / "index.json").read_text())
    repos: dict[str, Path] = {}
    for entry in index["database"]["installs"].values():
        spec = entry["spec"]
        namespace = spec.get("namespace", "builtin")
        if namespace == "builtin" or "external" in spec:
            continue
        folder = repos.setdefault(namespace, repo / namespace)
        (folder / "repo.yaml").parent.mkdir(parents=True, exist_ok=True)
        (folder / "repo.yaml").write_text(f"repo:\n  namespace: {namespace}\n")
        name, version = spec["name"], spec["version"]
        recipe = folder / "packages" / name / "package.py"
        recipe.parent.mkdir(parents=True)
        recipe.write_text(
            "from spack.package import *\n\n\n"
            f"class {''.join(part.capitalize() for part in name.split('-'))}(Package):\n"
            '    """A stub: installed from a binary cache only."""\n\n'
            '    homepage = "https://example.invalid"\n'
            f'    url = "https://example.invalid/{name}-{version}.tar.gz"\n\n'
            f'    version("{version}", sha256="{"0" * 64}")\n'
        )
    return [str(path) for path in repos.values()]


def spack_comparison(spack: str, base: Path, env: dict[str, str], repeat: int) -> str:
    """``spack buildcache install`` against ``reconcile apply`` of the same signed cache, in a
    private Spack configuration (its own install tree, mirror and recipe stubs)."""
    home = base / "spack-home"
    spack_env = {
        **os.environ,
        "SPACK_USER_CONFIG_PATH": str(home / "config"),
        "SPACK_USER_CACHE_PATH": str(home / "cache"),
    }
    (home / "config").mkdir(parents=True)
    repos = "".join(f"- {path}\n" for path in _stub_recipes(home / "repos"))
    (home / "config" / "config.yaml").write_text(
        f"config:\n  install_tree:\n    root: {home / 'opt'}\n"
    )
    (home / "config" / "repos.yaml").write_text(f"repos:\n{repos}")
    (home / "config" / "mirrors.yaml").write_text(f"mirrors:\n  fixture: {SPACK_CACHE.as_uri()}\n")
    run_process([spack, "gpg", "trust", str(SPACK_KEY)], cwd=base, env=spack_env)
    manifest = base / "spack-compare" / "reconcile.toml"
    manifest.parent.mkdir()
    manifest.write_text(
        'version = 1\n\n[install]\nroot = "opt"\nspecs = ["hello-app"]\n\n'
        f'[[mirror]]\nname = "fixture"\nurl = "{SPACK_CACHE.as_uri()}"\n\n'
        '[[key]]\nname = "fixture"\nkind = "gpg"\n'
        'fingerprint = "E4A1C447981D70AB30BD8B09643A47B4E5E41176"\n'
        f'file = "{SPACK_KEY}"\n'
    )
    # -o: the fixture's specs are for x86_64_v4, which this machine may not be
    install = [spack, "buildcache", "install", "-o", "hello-app"]

    def spack_install() -> Timing:
        shutil.rmtree(home / "opt", ignore_errors=True)  # its database lives there too
        return run_process(install, cwd=base, env=spack_env)

    def spack_again() -> Timing:
        return run_process(install, cwd=base, env=spack_env)

    def reconcile_install() -> Timing:
        shutil.rmtree(manifest.parent / "opt", ignore_errors=True)
        return run_process(reconcile("-m", str(manifest), "apply", "--yes"), cwd=base, env=env)

    def reconcile_again() -> Timing:
        return run_process(reconcile("-m", str(manifest), "apply", "--yes"), cwd=base, env=env)

    rounds = interleave(
        {
            "spack buildcache install (empty tree)": spack_install,
            "reconcile apply (empty tree)": reconcile_install,
            "spack buildcache install again (installed)": spack_again,
            "reconcile apply again (no-op)": reconcile_again,
        },
        repeat,
    )
    install = rounds.paired("spack buildcache install (empty tree)", "reconcile apply (empty tree)")
    again = rounds.paired(
        "spack buildcache install again (installed)", "reconcile apply again (no-op)"
    )
    lines = [
        f"Spack comparison ({SPACK_CACHE.name}: hello-app and its dependencies), "
        f"{rounds.rounds} interleaved rounds; {rounds.load()}",
        "",
        "| step | wall: median (min-max) | CPU: median (min-max) |",
        "| --- | ---: | ---: |",
        *(
            f"| {name} | {rounds.walls[name].seconds()} | {rounds.cpus[name].seconds()} |"
            for name in rounds.walls
        ),
        "",
        f"Spack / reconcile, round by round: install {install.ratio()}, again {again.ratio()}",
    ]
    return "\n".join(lines)


def _met(met: bool) -> str:
    return "met" if met else "**MISSED**"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--markdown", type=Path, help="also write the tables here")
    parser.add_argument("--spack", action="store_true", help="also compare with the spack on PATH")
    args = parser.parse_args()
    spack = spack_or_none(args.spack)
    base = scratch("reconcile-startup-")
    try:
        env = python_env(base / "pycache")
        folder = quickstart(base, env)
        timed = steps(folder, env)
        for step in timed.values():  # warm the page cache and the bytecode
            step()
        report = render(interleave(timed, args.repeat))
        if spack is not None:
            try:
                report += "\n\n" + spack_comparison(spack, base, env, args.repeat)
            except SystemExit as failed:  # a step of Spack's failed: say which, keep the rest
                report += f"\n\nThe Spack comparison did not run to its end: {failed}"
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(report)
    if args.markdown:
        args.markdown.write_text(report + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
