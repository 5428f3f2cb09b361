"""Output under ``LC_ALL=C``: Python then writes UTF-8 (its UTF-8 mode), so plans, applies,
errors and JSON work with non-ASCII paths; a strict ASCII locale (UTF-8 mode turned off) ends
in a clear ``error[locale-encoding]``, never a traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path

from support import installed_prefix, run_hello, run_subprocess, write_manifest


def _c_locale(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG", "PYTHONUTF8"))}
    return {**env, "LC_ALL": "C", **extra}


def test_plan_apply_and_errors_under_lc_all_c(tmp_path: Path) -> None:
    folder = tmp_path / "sité"
    manifest = write_manifest(folder, root="opt-é")
    env = _c_locale()
    planned = run_subprocess(manifest, "plan", env=env)
    assert planned.returncode == 0, planned.stderr
    assert f"at {folder / 'opt-é'}/hello-app-3.0-" in planned.stdout
    as_json = run_subprocess(manifest, "plan", "--json", env=env)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["install_root"] == str(folder / "opt-é")
    applied = run_subprocess(manifest, "apply", "--yes", env=env)
    assert applied.returncode == 0, applied.stderr
    prefix = installed_prefix(folder / "opt-é", "hello-app")
    assert run_hello(prefix, "bin/hello-app")[2] == "greetlib 2.1 says hello."
    typo = write_manifest(tmp_path / "typo-é", specs=["helo-app"])
    failed = run_subprocess(typo, "plan", env=env)
    assert failed.returncode == 1
    assert "error[plan-failed]" in failed.stderr and "did you mean 'hello-app'?" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_a_strict_ascii_locale_is_a_clear_error(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "sité", root="opt-é")
    env = _c_locale(PYTHONUTF8="0", PYTHONCOERCECLOCALE="0")
    done = run_subprocess(manifest, "plan", env=env)
    assert done.returncode == 1
    assert "error[locale-encoding]" in done.stderr and "LC_ALL=C.UTF-8" in done.stderr
    assert "Traceback" not in done.stderr
    as_json = run_subprocess(manifest, "plan", "--json", env=env)
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["error"]["reference"] == "locale-encoding"
