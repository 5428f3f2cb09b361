"""``reconcile env``: the variables that put a view to use, for sh, csh and fish.

The variables and folders are Spack's default ``prefix_inspections`` (what ``spack env
activate`` and ``spack load`` set for a view): ``bin`` on PATH, ``man`` and ``share/man`` on
MANPATH, ``share/aclocal`` on ACLOCAL_PATH, ``lib/pkgconfig``, ``lib64/pkgconfig`` and
``share/pkgconfig`` on PKG_CONFIG_PATH, and the view itself on CMAKE_PREFIX_PATH. Like
Spack, LD_LIBRARY_PATH is left alone (installed binaries find their libraries by RPATH).
Only folders the current generation holds are named, and they are named through the view's
symlink, so the lines stay right when the view switches generations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from reconcile.errors import ReconcileError

Shell = Literal["sh", "csh", "fish"]
SHELLS: tuple[str, ...] = ("sh", "csh", "fish")

# (folder in the view, variable), in Spack's order
PREFIX_INSPECTIONS: tuple[tuple[str, str], ...] = (
    ("bin", "PATH"),
    ("man", "MANPATH"),
    ("share/man", "MANPATH"),
    ("share/aclocal", "ACLOCAL_PATH"),
    ("lib/pkgconfig", "PKG_CONFIG_PATH"),
    ("lib64/pkgconfig", "PKG_CONFIG_PATH"),
    ("share/pkgconfig", "PKG_CONFIG_PATH"),
    ("", "CMAKE_PREFIX_PATH"),
)


def view_variables(view_path: Path, projections: list[str]) -> dict[str, list[str]]:
    """Variable -> folders to prepend (first first), for each projection's folder in the view
    ("" is the view's root) that the current generation holds."""
    variables: dict[str, list[str]] = {}
    for projection in dict.fromkeys(projections):
        base = view_path / projection if projection else view_path
        for folder, variable in PREFIX_INSPECTIONS:
            path = base / folder if folder else base
            if path.is_dir():
                entries = variables.setdefault(variable, [])
                if str(path) not in entries:
                    entries.append(str(path))
    return variables


def _checked(value: str) -> str:
    if any(char in value for char in "\n\r\0:"):
        raise ReconcileError(
            f"cannot write {value!r} into a search path: it holds a colon or a line break",
            hint="move the view to a path without them",
            reference="view-path-unusable",
        )
    return value


def _sh_quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def _csh_quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''").replace("!", "\\!") + "'"


def _fish_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def render_environment(variables: dict[str, list[str]], shell: Shell) -> str:
    """Lines that prepend each variable's folders, for ``eval`` (sh), ``eval`` (csh) or
    ``source``/``eval`` (fish)."""
    lines = []
    for variable, folders in variables.items():
        joined = ":".join(_checked(folder) for folder in folders)
        if shell == "sh":
            lines.append(
                f'{variable}={_sh_quote(joined)}${{{variable}:+":${variable}"}}; export {variable}'
            )
        elif shell == "csh":
            value = _csh_quote(joined)
            lines.append(f"if ( ! $?{variable} ) setenv {variable} {value}")
            lines.append(
                f'if ( "${variable}" != {value} ) setenv {variable} {value}":${{{variable}}}"'
            )
        else:
            listed = " ".join(_fish_quote(folder) for folder in folders)
            lines.append(f"set -gx {variable} {listed} ${variable}")
    return "\n".join(lines) + ("\n" if lines else "")
