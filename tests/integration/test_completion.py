"""Shell completion scripts, made from the parser, tried in a real bash."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reconcile.cli.completion import completion_script
from reconcile.cli.main import build_parser


def _complete(script: Path, *words: str) -> list[str]:
    line = " ".join(f'"{w}"' for w in words)
    program = (
        f"source {script}; COMP_WORDS=(reconcile {line}); COMP_CWORD={len(words)}; "
        '_reconcile; echo "${COMPREPLY[@]}"'
    )
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_bash_completes_verbs_sub_verbs_and_options(tmp_path: Path) -> None:
    script = tmp_path / "reconcile.bash"
    script.write_text(completion_script("bash", build_parser()))
    assert _complete(script, "ca") == ["cache"]
    assert {"gc", "list"} <= set(_complete(script, "cache", ""))
    assert "--older-than" in _complete(script, "cache", "gc", "--")
    assert "--detailed-exitcode" in _complete(script, "plan", "--d")
    assert "--detailed-exitcode" not in _complete(script, "apply", "--d")
    # Options before the verb do not hide it.
    assert "--check-contents" in _complete(script, "-m", "x.toml", "plan", "--che")


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_other_shells_scripts_parse(tmp_path: Path, shell: str) -> None:
    script = completion_script(shell, build_parser())
    assert "reconcile" in script and "cache" in script
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed here; the script's content was checked")
    path = tmp_path / f"reconcile.{shell}"
    path.write_text(script)
    subprocess.run([shell, "-n", str(path)], check=True)


def test_a_reader_that_goes_away_gets_no_traceback() -> None:
    from conftest import REPO

    done = subprocess.run(
        # `true` exits without reading: every write of reconcile's meets a closed pipe.
        ["sh", "-c", f"{sys.executable} -m reconcile completion fish | true"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=True,
    )
    assert done.stdout == ""
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
