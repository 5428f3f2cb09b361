"""Progress output: a live display on a terminal, plain lines in CI logs."""

from __future__ import annotations

import os
import pty
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


def test_live_display_on_a_terminal(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path)
    primary, secondary = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(PYTHONPATH=str(REPO), COLUMNS="120", TERM="xterm")
    process = subprocess.Popen(
        [sys.executable, "-m", "reconcile", "-m", str(manifest), "apply", "--yes"],
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
    assert process.wait(timeout=120) == 0
    text = output.decode(errors="replace")
    assert "\x1b[" in text  # a live display, drawn with terminal control sequences
    assert "total" in text and "MiB" in text
    assert "Apply complete: 3 installed" in text
