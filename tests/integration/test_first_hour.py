"""A newcomer's first hour, as a tested path: the README's commands in a fresh copy of the
repository with Debian's own Python, then the quickstart example driven the way a new user
drives it (typos, a missing mirror folder, ``-m`` after the verb, JSON errors, the live
progress on an 80-column terminal).

What other tests already cover in depth is referenced, not repeated:

- the same typo and mirror-folder messages on the Spack-made fixtures, a URL ending in
  ``/build_cache``, an empty publish target: ``test_plan_messages.py``;
- ``-m`` before and after the verb, each verb's ``--help``: ``test_cli_usage.py``;
- JSON errors of every verb against ``schemas/error.schema.json``: ``test_json_errors.py``;
- the live display at 60 columns, ``NO_COLOR``, plain lines in CI: ``test_progress.py``;
- the longest root the projection allows, computed for the hint: ``test_root_length_hint.py``;
- Ctrl-C or SIGKILL mid-download, then a Range request to nginx for the rest, with byte
  counts from its access log: ``test_resumed_download.py``;
- Ctrl-C and SIGTERM messages, Ctrl-D and no stdin at the prompt: ``test_signals.py``,
  ``test_cli.py``.
"""

from __future__ import annotations

import json
import os
import pty
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import jsonschema
import pytest
from conftest import REPO
from support import installed_prefix

DEBIAN_PYTHON = Path("/usr/bin/python3")
ERROR_SCHEMA = json.loads((REPO / "schemas" / "error.schema.json").read_text())
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Set to 1 to run the README's install line verbatim: pip then downloads the dependencies
# from the package index (about a minute).
NETWORK_VAR = "RECONCILE_TEST_PIP_INDEX"


def _readme_commands() -> list[str]:
    """The shell lines of the README's console blocks, in order."""
    text = (REPO / "README.md").read_text()
    return [
        line.strip()
        for block in re.findall(r"```console\n(.*?)```", text, flags=re.DOTALL)
        for line in block.splitlines()
        if line.strip()
    ]


def _install_line() -> str:
    """The README's quickstart line: make a venv, install, apply the example."""
    lines = [line for line in _readme_commands() if line.startswith("python3 -m venv")]
    assert lines, "the README has no quickstart line starting with python3 -m venv"
    return lines[0]


def _fresh_copy(dest: Path) -> Path:
    """The repository's files as a fresh clone has them (tracked, and new ones not ignored)."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=False,
    )
    if listed.returncode != 0:
        pytest.skip("the repository is not a git checkout")
    for name in listed.stdout.decode().split("\0"):
        source = REPO / name
        if not name or not (source.is_file() or source.is_symlink()):
            continue  # deleted in the work tree
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest / name, follow_symlinks=False)
    return dest


def _debian_python() -> Path:
    if not DEBIAN_PYTHON.is_file():
        pytest.skip(f"{DEBIAN_PYTHON} is not installed")
    probe = subprocess.run(
        [str(DEBIAN_PYTHON), "-c", "import sys, venv; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"{DEBIAN_PYTHON} has no venv module (apt-get install python3-venv)")
    if probe.stdout.strip() != str(sys.version_info[:2]):
        pytest.skip(f"{DEBIAN_PYTHON} is Python {probe.stdout.strip()}, not this one")
    return DEBIAN_PYTHON


def _shell(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``script`` in bash, as a user with only the system's Python on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYENV", "VIRTUAL"))}
    env["PATH"] = f"{DEBIAN_PYTHON.parent}:/bin:/usr/sbin:/sbin"
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )


def test_the_readme_names_a_venv_the_test_command_and_where_shared_comes_from() -> None:
    commands = _readme_commands()
    assert _install_line().startswith("python3 -m venv .venv && . .venv/bin/activate && ")
    assert _install_line().endswith("reconcile -m examples/quickstart/reconcile.toml apply --yes")
    assert any("python3 -m pytest" in command for command in commands)
    readme = (REPO / "README.md").read_text()
    assert "../shared/fixtures" in readme and "RECONCILE_SHARED" in readme


def test_system_wide_pip_is_refused_on_debian_so_the_readme_uses_a_venv(tmp_path: Path) -> None:
    python = _debian_python()
    if not list(Path("/usr/lib").glob("python3.*/EXTERNALLY-MANAGED")):
        pytest.skip("this system's Python is not marked externally managed")
    clone = _fresh_copy(tmp_path / "clone")
    refused = _shell(f"{python} -m pip install --dry-run --no-index -e .", clone)
    assert refused.returncode != 0
    assert "externally-managed-environment" in refused.stdout + refused.stderr


def test_the_readme_install_line_works_with_debians_python(tmp_path: Path) -> None:
    """The README's first line in a fresh copy, with Debian's ``/usr/bin/python3``.

    Offline (the default) pip cannot download the dependencies, so ``pip install -e .`` is
    run as ``pip install --no-index --no-build-isolation --no-deps -e .`` in a venv made with
    ``--system-site-packages`` (for Debian's setuptools and wheel), and the dependencies are
    the test interpreter's (a ``.pth`` file); everything else is verbatim: ``python3 -m
    venv``, the activation, the ``reconcile`` console script and the example's path. With
    ``RECONCILE_TEST_PIP_INDEX=1`` the line runs exactly as written."""
    _debian_python()
    clone = _fresh_copy(tmp_path / "clone")
    line = _install_line()
    if os.environ.get(NETWORK_VAR) != "1":
        deps = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
        pth = "\n".join(deps)
        line = line.replace(
            "python3 -m venv .venv && . .venv/bin/activate && pip install -e . && ",
            "python3 -m venv --system-site-packages .venv && . .venv/bin/activate && "
            f"printf %s {shlex.quote(pth)} > .venv/lib/python3.11/site-packages/deps.pth && "
            "pip install --no-index --no-build-isolation --no-deps -e . && ",
        )
        assert line != _install_line(), "the README's install line changed"
    done = _shell(line, clone)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Apply complete: 2 installed" in done.stdout
    assert (clone / ".venv/bin/reconcile").is_file()
    hello = installed_prefix(clone / "examples/quickstart/opt", "qs-hello")
    ran = subprocess.run(
        [str(hello / "bin/qs-hello")], capture_output=True, text=True, check=True, timeout=30
    )
    assert ran.stdout.startswith("qs-hello 1.0 installed at ")


def _quickstart(tmp_path: Path) -> Path:
    example = tmp_path / "quickstart"
    shutil.copytree(REPO / "examples/quickstart", example, ignore=shutil.ignore_patterns("opt"))
    return example


def _reconcile(
    example: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconcile", *args],
        cwd=example,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def _manifest_with(example: Path, name: str, old: str, new: str) -> str:
    text = (example / "reconcile.toml").read_text()
    assert old in text
    (example / name).write_text(text.replace(old, new))
    return name


def test_typos_a_missing_mirror_folder_and_json_errors(tmp_path: Path) -> None:
    example = _quickstart(tmp_path)
    typo = _manifest_with(example, "typo.toml", '"qs-hello"', '"qs-helo"')
    done = _reconcile(example, "plan", "-m", typo)  # -m after the verb
    assert done.returncode == 1
    assert "error[plan-failed]: no spec matches 'qs-helo' in mirror 'quickstart'" in done.stderr
    assert "did you mean 'qs-hello'?" in done.stderr
    assert "the mirrors offer: qs-greet, qs-hello" in done.stderr

    as_json = _reconcile(example, "plan", "-m", typo, "--json")
    assert as_json.returncode == 1
    document = json.loads(as_json.stdout)
    jsonschema.validate(document, ERROR_SCHEMA)
    assert document["error"]["reference"] == "plan-failed"
    assert "did you mean 'qs-hello'?" in document["error"]["message"]

    missing = _manifest_with(example, "missing.toml", 'url = "mirror"', 'url = "mirorr"')
    done = _reconcile(example, "plan", "-m", missing)
    assert done.returncode == 1
    assert f"the folder {example / 'mirorr'} does not exist" in done.stderr
    assert "check the selector's spelling" not in done.stderr
    assert "Traceback" not in done.stderr


def test_progress_on_an_80_column_terminal(tmp_path: Path) -> None:
    example = _quickstart(tmp_path)
    primary, secondary = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "NO_COLOR")}
    env.update(PYTHONPATH=str(REPO), COLUMNS="80", TERM="xterm")
    process = subprocess.Popen(
        [sys.executable, "-m", "reconcile", "apply", "-m", "reconcile.toml", "--yes"],
        cwd=example,
        stdout=secondary,
        stderr=secondary,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    os.close(secondary)
    output = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.close(primary)
    text = output.decode(errors="replace")
    assert process.wait(timeout=120) == 0, text
    lines = [line for line in _CONTROL.sub("", text).replace("\r", "\n").split("\n") if line]
    assert any(line.startswith("staged qs-hello@1.0/") for line in lines), lines
    assert not any(re.search(r"\[\d\d:\d\d:\d\d\]", line) for line in lines)  # no timestamp
    assert not any(re.search(r"\w+\.py:\d+", line) for line in lines)  # no source location
    # what the live display drew fits; the plan and the summary name full paths
    display = text[text.index("\x1b[?25l") : text.rindex("\x1b[?25h")]
    drawn = [line for line in _CONTROL.sub("", display).replace("\r", "\n").split("\n") if line]
    assert [line for line in drawn if len(line) > 80] == []
    assert "Apply complete: 2 installed" in text
