"""Progress output: a live display on a terminal, plain lines in CI logs."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO
from support import run_subprocess, write_manifest


def test_plain_lines_without_a_terminal(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path)
    done = run_subprocess(manifest, "apply", "--yes", env={"CI": "true"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "fetching gcc-runtime@12.2.0/75b4t5r (9566481 bytes) from mirror 'team'" in lines
    assert "fetched gcc-runtime@12.2.0/75b4t5r from mirror 'team' (sha256 verified)" in lines
    assert not any("\r" in line or "\x1b[" in line for line in lines)  # no bars, no colours


def _apply_on_a_terminal(manifest: Path, columns: int, **extra_env: str) -> str:
    """Run ``apply --yes`` with a pseudo-terminal as stdout and stderr; return what it drew."""
    primary, secondary = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "NO_COLOR")}
    env.update(PYTHONPATH=str(REPO), COLUMNS=str(columns), TERM="xterm", **extra_env)
    process = subprocess.Popen(
        [sys.executable, "-m", "reconcile", "apply", "-m", str(manifest), "--yes"],
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
    assert process.wait(timeout=120) == 0, output.decode(errors="replace")
    return output.decode(errors="replace")


_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_live_display_on_a_terminal(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path)
    text = _apply_on_a_terminal(manifest, 120)
    assert "\x1b[" in text  # a live display, drawn with terminal control sequences
    assert "total" in text and "MiB" in text
    assert "Apply complete: 3 installed" in text


def test_live_display_lines_are_plain_and_fit_the_terminal(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path)
    # Narrower than "staged gcc-runtime@12.2.0/75b4t5r (unpacked, relocated, checked)".
    text = _apply_on_a_terminal(manifest, 60, NO_COLOR="1")
    # What the live display drew: from the cursor being hidden to it being shown again (the
    # plan before it and the summary after it are plain output, full paths included).
    display = text[text.index("\x1b[?25l") : text.rindex("\x1b[?25h")]
    lines = [line for line in _CONTROL.sub("", display).replace("\r", "\n").split("\n") if line]
    assert any(line.startswith("staged gcc-runtime@12.2.0/75b4t5r (unpacked") for line in lines)
    # No debugging columns: neither a timestamp nor a source location.
    assert not any(re.search(r"\[\d\d:\d\d:\d\d\]", line) for line in lines)
    assert not any(re.search(r"\w+\.py:\d+", line) for line in lines)
    too_wide = [line for line in lines if len(line) > 60]
    assert too_wide == []
    assert not re.search(r"\x1b\[(3\d|38;)", text)  # NO_COLOR: no colour sequences
