"""docs/tutorial.md, run as written: every ``$ `` line of its console blocks, in order, in one
bash session started at the repository root, with a scratch folder of our own."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

TUTORIAL = REPO / "docs" / "tutorial.md"
FAILS_ON_PURPOSE = "# fails on purpose"
CONSOLE_BLOCK = re.compile(r"^```console\n(.*?)^```", re.MULTILINE | re.DOTALL)


def tutorial_commands() -> list[str]:
    commands = []
    for block in CONSOLE_BLOCK.findall(TUTORIAL.read_text()):
        commands += [line[2:] for line in block.splitlines() if line.startswith("$ ")]
    return commands


def checked_script(commands: list[str]) -> str:
    """Each command, then a check of its exit status that names the command when it is wrong."""
    lines = []
    for number, command in enumerate(commands, 1):
        expect_failure = command.rstrip().endswith(FAILS_ON_PURPOSE)
        wrong = "-eq 0" if expect_failure else "-ne 0"
        lines += [
            f"echo {shlex.quote(f'>>> {number}: {command}')}",
            command,
            f"__status=$?; if [ $__status {wrong} ]; then "
            f"echo {shlex.quote(f'!!! command {number} exited ')}$__status >&2; exit 99; fi",
        ]
    return "\n".join(lines) + "\n"


def reconcile_on_path(folder: Path) -> Path:
    """A ``reconcile`` that runs this checkout with this interpreter."""
    folder.mkdir()
    wrapper = folder / "reconcile"
    wrapper.write_text(
        f"#!/bin/sh\nPYTHONPATH={shlex.quote(str(REPO))} exec {shlex.quote(sys.executable)} "
        '-m reconcile "$@"\n'
    )
    wrapper.chmod(0o755)
    return folder


def stop_gpg_agent(home: Path) -> None:
    if home.is_dir() and shutil.which("gpgconf"):
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
            check=False,
            capture_output=True,
        )


def test_tutorial_commands_are_what_the_text_promises() -> None:
    commands = tutorial_commands()
    assert commands[0].startswith("export TUTORIAL=${TUTORIAL:-")
    assert any(c.rstrip().endswith(FAILS_ON_PURPOSE) for c in commands)
    assert any("bundle import" in c for c in commands)
    assert any("keys generate" in c for c in commands)
    assert any("--check-contents" in c for c in commands)
    assert any(" rollback" in c for c in commands)


def test_the_tutorial_runs_as_written(tmp_path: Path) -> None:
    scratch = tmp_path / "tutorial"
    bin_folder = reconcile_on_path(tmp_path / "bin")
    env = {
        **os.environ,
        "TUTORIAL": str(scratch),
        "PATH": f"{bin_folder}{os.pathsep}{os.environ.get('PATH', '')}",
        "CI": "1",
    }
    env.pop("RECONCILE_MANIFEST", None)
    script = tmp_path / "tutorial.sh"
    script.write_text(checked_script(tutorial_commands()))
    try:
        done = subprocess.run(
            ["bash", str(script)],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            # a bound against a hang, not a speed check: the tutorial has grown to ~50
            # commands, and a loaded CI machine runs them several times slower
            timeout=280,
            check=False,
        )
    finally:
        stop_gpg_agent(scratch / "signing-home")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-4000:]
    programs = sorted((scratch / "airgap" / "site").glob("qs-hello-1.0-*/bin/qs-hello"))
    assert len(programs) == 1
    ran = subprocess.run([programs[0]], capture_output=True, text=True, check=True)
    assert "qs-greet 1.0 says hello." in ran.stdout
    assert str(scratch / "airgap" / "site") in ran.stdout


@pytest.mark.parametrize(
    "name", ["sources", "reconcile", "team", "padded", "shared", "airgap", "views"]
)
def test_tutorial_manifests_exist(name: str) -> None:
    assert (REPO / "examples" / "tutorial" / f"{name}.toml").is_file()
