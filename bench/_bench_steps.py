"""The benchmark's steps against one served mirror: the manifest, reconcile's commands run
as whole processes, what nginx logged for each, and the check that installed programs run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
from _bench_generate import GeneratedCache, expected_output, run_program
from _bench_measure import Run, Traffic, reconcile_command, run_timed, traffic

from reconcile.spack.projection import pad_root

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from nginx_harness import NginxServer, nginx_server  # noqa: E402

INSTALL_PADDED_LENGTH = 128
# The cache root's prefix is the mirror's URL as written in [[mirror]].
MANIFEST = """version = 1

[install]
root = "opt"
padded_length = {padded_length}
specs = {specs}

[[mirror]]
name = "bench"
url = "{url}"

[[cache]]
root = "cache"
prefixes = ["{url}"]

[[key]]
name = "bench"
kind = "gpg"
fingerprint = "{fingerprint}"
file = "{key}"
"""


class StepFailedError(Exception):
    """A step failed or installed something wrong: the measurement means nothing."""


@attrs.frozen(kw_only=True)
class Setup:
    run_dir: Path
    manifest: Path
    install_root: Path
    cache_root: Path
    generated: GeneratedCache
    server: NginxServer
    env: dict[str, str]  # for reconcile's processes


@contextmanager
def serve(mirror: Path, *, tmp: Path) -> Iterator[NginxServer]:
    """nginx serving ``mirror`` on 127.0.0.1, with its configuration and logs in ``tmp``."""
    with nginx_server(mirror, tmp=tmp) as server:
        yield server


def reconcile_env(pycache: Path) -> dict[str, str]:
    """This environment with Python's bytecode cache on, kept in ``pycache``: an installed
    reconcile has its ``.pyc`` files, while this checkout may run with
    PYTHONDONTWRITEBYTECODE set, which would add compiling every module to every command."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def make_setup(run_dir: Path, server: NginxServer, generated: GeneratedCache) -> Setup:
    manifest = run_dir / "reconcile.toml"
    manifest.write_text(
        MANIFEST.format(
            padded_length=INSTALL_PADDED_LENGTH,
            specs=json.dumps(list(generated.specs)),
            url=server.url,
            fingerprint=generated.fingerprint,
            key=generated.key_file,
        )
    )
    return Setup(
        run_dir=run_dir,
        manifest=manifest,
        install_root=run_dir / "opt",
        cache_root=run_dir / "cache",
        generated=generated,
        server=server,
        env=reconcile_env(run_dir / "pycache"),
    )


def warm_up(setup: Setup) -> None:
    """Compile reconcile's modules into the bytecode cache and run one plan, so that no
    measured command pays for compiling (the plan's requests are not measured)."""
    package = REPO / "reconcile"
    compiled = [sys.executable, "-m", "compileall", "-q", str(package)]
    subprocess.run(compiled, env=setup.env, check=True, capture_output=True)
    require(reconcile(setup, "plan"), "the warm-up plan")


def reconcile(setup: Setup, *args: str) -> Run:
    return run_timed(reconcile_command(setup.manifest, *args), cwd=setup.run_dir, env=setup.env)


def require(run: Run, what: str, *, exit_codes: tuple[int, ...] = (0,)) -> Run:
    if run.exit_code not in exit_codes:
        raise StepFailedError(
            f"{what} exited {run.exit_code}:\n{run.stderr.strip() or run.stdout.strip()}"
        )
    return run


def with_traffic(setup: Setup, *args: str) -> tuple[Run, Traffic]:
    """Run reconcile with ``args``; also return the requests nginx logged meanwhile."""
    before = len(setup.server.access_log_entries())
    run = reconcile(setup, *args)
    return run, traffic(setup.server.access_log_entries()[before:])


def apply(setup: Setup, jobs: int, what: str) -> tuple[Run, Traffic]:
    run, seen = with_traffic(setup, "apply", "--yes", "--json", "--jobs", str(jobs))
    require(run, what)
    installed = json.loads(run.stdout)["installed"]
    if len(installed) != len(setup.generated.specs):
        raise StepFailedError(
            f"{what} installed {len(installed)} specs, expected {len(setup.generated.specs)}"
        )
    return run, seen


def noop_plan(setup: Setup) -> tuple[Run, Traffic]:
    run, seen = with_traffic(setup, "plan", "--detailed-exitcode")
    require(run, "the no-op plan (exit 2 means it found changes)")
    return run, seen


def wipe(*folders: Path) -> None:
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def check_installed_program(setup: Setup) -> str:
    """Run an installed application: its ELF, C strings, text files and links must name
    the new prefixes (the old build root no longer exists)."""
    generated = setup.generated
    root = pad_root(str(setup.install_root), INSTALL_PADDED_LENGTH).rstrip("/")
    app, library = generated.probe_app, generated.probe_library
    app_prefix = f"{root}/{app}-1.0-{generated.hashes[app]}"
    library_prefix = f"{root}/{library}-1.0-{generated.hashes[library]}"
    expected = expected_output(app_prefix, library_prefix, library)
    for program in (app, "run", f"{app}-wrapper"):
        printed = run_program(f"{app_prefix}/bin/{program}")
        if printed != expected:
            raise StepFailedError(
                f"the installed {program} printed:\n{printed}\nexpected:\n{expected}"
            )
    return f"{app} (and its library {library}) runs from its new prefix, all paths relocated"
