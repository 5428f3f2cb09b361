"""Helpers for end-to-end tests: manifests, running the CLI, snapshots of the install root."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from conftest import FIXTURE_FPR, FIXTURE_KEY, REPO, SIGNED_CACHE

from reconcile.cli.main import main


def manifest_text(
    *,
    root: str = "opt",
    specs: Sequence[str] = ("hello-app",),
    mirror: str | Path = SIGNED_CACHE,
    signed: bool = True,
    key_file: str | Path | None = FIXTURE_KEY,
    fingerprint: str = FIXTURE_FPR,
    key_source: str | None = None,
    projection: str | None = None,
    padded_length: int | None = None,
    permissions: dict[str, str] | None = None,
    extra: str = "",
) -> str:
    lines = ["version = 1", "", "[install]", f'root = "{root}"']
    if projection is not None:
        lines.append(f'projection = "{projection}"')
    if padded_length is not None:
        lines.append(f"padded_length = {padded_length}")
    lines.append("specs = [" + ", ".join(f'"{s}"' for s in specs) + "]")
    if permissions:
        lines.append("[install.permissions]")
        lines.extend(f'{k} = "{v}"' for k, v in permissions.items())
    lines += ["", "[[mirror]]", 'name = "team"', f'url = "{mirror}"']
    lines.append(f"signed = {'true' if signed else 'false'}")
    if key_file is not None or key_source is not None:
        lines += ["", "[[key]]", 'name = "team-gpg"', 'kind = "gpg"']
        lines.append(f'fingerprint = "{fingerprint}"')
        if key_source is not None:
            lines.append(f'source = "{key_source}"')
        else:
            lines.append(f'file = "{key_file}"')
    return "\n".join(lines) + "\n" + extra


def write_manifest(folder: Path, **options: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "reconcile.toml"
    path.write_text(manifest_text(**options))  # type: ignore[arg-type]
    return path


def run(manifest: Path, *args: str) -> int:
    """Run the CLI in this process (capture output with capsys)."""
    return main(["-m", str(manifest), *args])


def run_subprocess(
    manifest: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m reconcile`` as a user would, without a terminal."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "reconcile", "-m", str(manifest), *args],
        capture_output=True,
        text=True,
        env=full_env,
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=600,
    )


def snapshot(root: Path) -> dict[str, tuple[str, int, str]]:
    """Every path under ``root`` with its type, mode and content/target, ignoring the lock
    file and the (emptied) staging and partial-download folders that an apply may leave (their
    contents, if any, are still compared)."""
    result: dict[str, tuple[str, int, str]] = {}
    if not root.exists():
        return result
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            if rel in (".reconcile", ".reconcile/lock", ".reconcile/staging", ".reconcile/partial"):
                continue
            st = path.lstat()
            if path.is_symlink():
                result[rel] = ("link", st.st_mode, os.readlink(path))
            elif path.is_dir():
                result[rel] = ("dir", st.st_mode, "")
            else:
                result[rel] = ("file", st.st_mode, path.read_bytes().hex()[:64])
    return result


def installed_prefix(root: Path, name: str) -> Path:
    """The one installed prefix of package ``name`` under ``root``, found via the records."""
    import json

    records = list((root / ".reconcile" / "records").glob("*.json"))
    matches = [json.loads(r.read_text()) for r in records]
    prefixes = [m["prefix"] for m in matches if m["name"] == name]
    assert len(prefixes) == 1, (name, prefixes)
    return Path(prefixes[0])


def run_hello(prefix: Path, program: str = "bin/hello-app") -> list[str]:
    done = subprocess.run(
        [str(prefix / program)], capture_output=True, text=True, check=False, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()
