"""``reconcile env``'s lines, evaluated by real shells: each folder arrives in the variable
exactly as named, whatever quotes, spaces or shell characters the view's path holds, and
the variable's earlier value is kept after it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from reconcile.errors import ReconcileError
from reconcile.views.environment import render_environment, view_variables

HOSTILE = [
    "plain",
    "with space",
    "it's",
    'dollar $HOME and "double"',
    "back`tick`",
    "bang!",
    "star * and ? and [x]",
    "back\\slash",
    "two\\\\backslashes",
    "semi;colon & amp | pipe",
    "ünïcode",
]

# how each shell runs a script, and prints a variable (fish keeps PATH as a list)
SHELLS = {
    "sh": (["sh", "-c"], 'printf "%s\\n" "${VAR}"'),
    "csh": (["tcsh", "-f", "-c"], 'printf "%s\\n" "$VAR:q"'),
    "fish": (["fish", "--no-config", "-c"], "string join : -- $VAR; true"),
}


def evaluate(shell: str, lines: str, variable: str, env: dict[str, str]) -> str:
    command, show = SHELLS[shell]
    if shutil.which(command[0]) is None:
        pytest.skip(f"{command[0]} is not installed")
    done = subprocess.run(
        [*command, lines + show.replace("VAR", variable)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=30,
    )
    return done.stdout.rstrip("\n")


@pytest.mark.parametrize("shell", list(SHELLS))
@pytest.mark.parametrize("name", HOSTILE)
def test_each_shell_gets_the_folder_exactly(shell: str, name: str, tmp_path: Path) -> None:
    view = tmp_path / name / "view"
    (view / "bin").mkdir(parents=True)
    (view / "lib" / "pkgconfig").mkdir(parents=True)
    lines = render_environment(view_variables(view, [""]), shell)  # type: ignore[arg-type]
    env = {"PATH": "/usr/bin:/bin", "PKG_CONFIG_PATH": "/old/pc", "HOME": str(tmp_path)}
    assert evaluate(shell, lines, "PATH", env) == f"{view}/bin:/usr/bin:/bin"
    assert evaluate(shell, lines, "PKG_CONFIG_PATH", env) == f"{view}/lib/pkgconfig:/old/pc"
    # unset before: the folder alone
    del env["PKG_CONFIG_PATH"]
    assert evaluate(shell, lines, "CMAKE_PREFIX_PATH", env) == str(view)


def test_only_existing_folders_and_never_ld_library_path(tmp_path: Path) -> None:
    view = tmp_path / "view"
    for folder in ("bin", "share/man", "lib64/pkgconfig", "share/aclocal", "lib"):
        (view / folder).mkdir(parents=True)
    variables = view_variables(view, ["", "apps/x"])
    assert variables == {
        "PATH": [f"{view}/bin"],
        "MANPATH": [f"{view}/share/man"],
        "ACLOCAL_PATH": [f"{view}/share/aclocal"],
        "PKG_CONFIG_PATH": [f"{view}/lib64/pkgconfig"],
        "CMAKE_PREFIX_PATH": [str(view)],
    }


def test_projection_folders_are_each_inspected(tmp_path: Path) -> None:
    view = tmp_path / "view"
    (view / "a" / "bin").mkdir(parents=True)
    (view / "b" / "bin").mkdir(parents=True)
    variables = view_variables(view, ["a", "b", "a"])
    assert variables["PATH"] == [f"{view}/a/bin", f"{view}/b/bin"]
    assert variables["CMAKE_PREFIX_PATH"] == [f"{view}/a", f"{view}/b"]


@pytest.mark.parametrize("name", ["co:lon", "new\nline"])
def test_a_folder_no_search_path_can_hold_is_refused(name: str, tmp_path: Path) -> None:
    view = tmp_path / name
    (view / "bin").mkdir(parents=True)
    with pytest.raises(ReconcileError) as caught:
        render_environment(view_variables(view, [""]), "sh")
    assert caught.value.reference == "view-path-unusable"
