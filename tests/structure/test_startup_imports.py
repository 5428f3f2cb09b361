"""Start-up stays light: ``--version`` and a no-op local ``plan`` import only what they use.

Each case runs the command line in a fresh interpreter and lists ``sys.modules`` at exit.
An import added at the top of a module that these paths reach (rich, requests, yaml,
cryptography, ...) makes every run, in every CI job and cron line, pay for it; this test
names the module and the command that pulled it in. It measures no time: docs/benchmarks.md
and bench/startup_bench.py do.
"""

from __future__ import annotations

import gc
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

# What no local read-only run needs: network stacks, other trust schemes, ELF, YAML, XML,
# the terminal UI, and the code of the verbs that change things.
NEVER_FOR_A_LOCAL_PLAN = (
    "requests",
    "urllib3",
    "boto3",
    "botocore",
    "sigstore",
    "elftools",
    "yaml",
    "rich",
    "cryptography",
    "ssl",
    "http",
    "email",
    "xml",
    "tarfile",
    "jsonschema",
    "socket",
    "ctypes",
    "getpass",  # plan only reads the lock; taking it names the user
    "tomlkit",  # a manifest is read with tomllib; tomlkit places problems and writes TOML
    "cattrs",  # good manifests and records are built by plain functions; cattrs describes bad ones
    "concurrent",  # a few prefixes are stat'ed in the caller's thread; no fetch, no pool
    "logging",
    # nothing to verify: no gpg to run, no key to parse (each scheme's code waits for its key)
    "subprocess",
    "reconcile.trust.verify",
    "reconcile.trust.gnupg",
    "reconcile.trust.ed25519",
    "reconcile.trust.sigstore_key",
    "reconcile.cache.store",  # the quickstart declares no [[cache]] root
    "secrets",  # temporary names are drawn only to write
    "hmac",
    "difflib",  # "did you mean" is for a problem
    # the quickstart's mirror is layout 2: other layouts' readers wait for a mirror in them
    "reconcile.buildcache.layout_v3",
    "reconcile.buildcache.layout_oci",
    "reconcile.buildcache.manifest_v3",
    "reconcile.apply",
    "reconcile.archive",
    "reconcile.relocate",
    "reconcile.publish",
    "reconcile.bundle",
)
APPLY_ALSO_USES = (
    "reconcile.apply",
    "getpass",  # it takes the lock, which names its user
)
# A no-op apply plans, finds nothing to do, sweeps leftovers under the lock, and stops: the
# executor, archives, relocation and the progress display are for when there is work.
NEVER_FOR_A_NO_OP_APPLY = (
    *(name for name in NEVER_FOR_A_LOCAL_PLAN if name not in APPLY_ALSO_USES),
    "reconcile.apply.executor",
    "reconcile.apply.installs",
    "reconcile.cli.progress",
    "reconcile.trust.keystore",
    "reconcile.trust.sign",
)
# ``--version`` builds the parser and nothing else.
NEVER_FOR_VERSION = (*NEVER_FOR_A_LOCAL_PLAN, "attr", "attrs")
VERSION_MAY_IMPORT = {
    "reconcile",
    "reconcile.cli",
    "reconcile.cli.main",
    "reconcile.cli.parser",
    "reconcile.cli.verb_parsers",
    "reconcile.cli.completion",
    "reconcile.manifest",
    "reconcile.manifest.kinds",
    "reconcile.trust",
    "reconcile.trust.key_algorithms",
}

# Runs the command line as `python -m reconcile` does and prints the modules loaded at exit.
_PROBE = """
import json, sys
from reconcile.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print("\\n@@modules@@" + json.dumps(sorted(sys.modules)))
sys.exit(code)
"""


def _modules_after(argv: list[str], cwd: Path) -> tuple[set[str], str]:
    run = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=300,  # a safety net only
    )
    assert run.returncode == 0, run.stderr
    output, _, listed = run.stdout.rpartition("\n@@modules@@")
    return set(json.loads(listed)), output


def _loaded(modules: set[str], denied: tuple[str, ...]) -> list[str]:
    """The denied packages among ``modules`` (a package counts when any submodule loaded)."""
    return sorted(
        name for name in denied if any(m == name or m.startswith(name + ".") for m in modules)
    )


def test_version_imports_the_parser_and_nothing_else(tmp_path: Path) -> None:
    modules, output = _modules_after(["--version"], tmp_path)
    assert output.startswith("reconcile ")
    assert _loaded(modules, NEVER_FOR_VERSION) == []
    ours = {m for m in modules if m == "reconcile" or m.startswith("reconcile.")}
    assert ours - VERSION_MAY_IMPORT == set()


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The quickstart, its mirror given as a file:// URL, applied once."""
    if shutil.which("gpg") is None:
        pytest.skip("gpg is not installed")
    folder = tmp_path_factory.mktemp("startup") / "quickstart"
    shutil.copytree(
        REPO / "examples" / "quickstart",
        folder,
        ignore=shutil.ignore_patterns("opt", ".reconcile"),
    )
    manifest = folder / "reconcile.toml"
    text = manifest.read_text()
    text, replaced = re.subn(
        r'(?m)^url = "mirror"$', f'url = "{(folder / "mirror").as_uri()}"', text
    )
    assert replaced == 1
    manifest.write_text(text)
    applied = subprocess.run(
        [sys.executable, "-m", "reconcile", "apply", "--yes"],
        capture_output=True,
        text=True,
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=300,
    )
    assert applied.returncode == 0, applied.stderr
    return folder


@pytest.mark.parametrize("argv", [["plan"], ["plan", "--detailed-exitcode"], ["validate"]])
def test_a_local_no_op_plan_imports_nothing_it_does_not_use(
    quickstart: Path, argv: list[str]
) -> None:
    modules, output = _modules_after(argv, quickstart)
    if argv[0] == "plan":
        assert output.startswith("No changes"), output
    assert _loaded(modules, NEVER_FOR_A_LOCAL_PLAN) == []


def test_a_no_op_apply_loads_nothing_a_no_op_plan_does_not(quickstart: Path) -> None:
    modules, output = _modules_after(["apply", "--yes"], quickstart)
    assert output.startswith("No changes"), output
    assert _loaded(modules, NEVER_FOR_A_NO_OP_APPLY) == []


def test_the_probe_sees_an_eager_import(tmp_path: Path) -> None:
    """The listing is real: a run that does load a denied module is caught."""
    modules, _ = _modules_after(["--version"], tmp_path)
    assert _loaded(modules | {"yaml.loader"}, NEVER_FOR_VERSION) == ["yaml"]
    assert "argparse" in modules


# Runs `validate` as a program does (main() without argv) and reports the collector's state
# when the verb's code starts, and after main returns.
_GC_PROBE = """
import gc, sys
from reconcile.cli import commands
from reconcile.cli.main import main
seen = []
def validate(*args, **kwargs):
    seen.append((gc.isenabled(), gc.get_freeze_count()))
    return 0
commands.validate = validate
sys.argv = ["reconcile", "validate"]
code = main()
print(seen[0][0], seen[0][1] > 0, gc.isenabled(), code)
"""


def test_a_program_run_collects_garbage_once_its_code_is_imported(tmp_path: Path) -> None:
    """Start-up runs without the cyclic collector (it found no garbage, only the objects
    start-up makes, again and again); the verb itself runs with it, start-up's objects set
    aside, so a long apply still frees its cycles."""
    run = subprocess.run(
        [sys.executable, "-c", _GC_PROBE],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["True", "True", "True", "0"]


def test_main_called_with_argv_leaves_the_callers_collector_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from reconcile.cli import commands
    from reconcile.cli.main import main

    seen: list[bool] = []
    monkeypatch.setattr(commands, "validate", lambda *_, **__: seen.append(gc.isenabled()) or 0)
    frozen = gc.get_freeze_count()
    assert main(["validate"]) == 0
    assert seen == [True]
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen
