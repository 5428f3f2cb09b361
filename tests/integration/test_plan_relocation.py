"""Plan says what apply would refuse: a root too long for the prefixes the binaries were built
in is warned about at plan time (both lengths, and the longest root that fits), and refused
under ``[install] strict_relocation`` before anything is downloaded. Plan knows where a
package was built only from a tarball a cache root holds; without one it says so."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from conftest import REPO
from support import run, write_manifest

PLAN_SCHEMA = json.loads((REPO / "schemas" / "plan.schema.json").read_text())

CACHE = '\n[[cache]]\nroot = "{cache}"\n'
WARNED = re.compile(
    r"(\S+): its new prefix \((\d+) characters\) is longer than the prefix it was built in "
    r"\((\d+) characters\).*an install root of at most (\d+) characters with its padding"
)


def _root_of_length(base: Path, length: int) -> Path:
    room = length - len(str(base)) - 1
    assert room > 0
    return base / ("r" * room)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache root holding the fixture's tarballs (an apply into a short root filled it)."""
    base = tmp_path_factory.mktemp("filled")
    folder = base / "cache"
    assert run(write_manifest(base, extra=CACHE.format(cache=folder)), "apply", "--yes") == 0
    return folder


def _manifest(folder: Path, root: Path, cache: Path | None, *, strict: bool = False) -> Path:
    manifest = write_manifest(
        folder, root=str(root), extra=CACHE.format(cache=cache) if cache else ""
    )
    if strict:
        text = manifest.read_text().replace("specs = ", "strict_relocation = true\nspecs = ", 1)
        manifest.write_text(text)
    return manifest


def test_a_too_long_root_is_warned_at_plan_time_with_the_limit_apply_finds(
    cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _root_of_length(tmp_path, 200)
    manifest = _manifest(tmp_path / "long", root, cache)
    assert run(manifest, "plan") == 0
    out = capsys.readouterr().out
    warned = {m.group(1): m.groups()[1:] for m in WARNED.finditer(out)}
    assert set(warned) == {
        "gcc-runtime@12.2.0/75b4t5r",
        "greetlib@2.1/yrhiacw",
        "hello-app@3.0/d7r6xmz",
    }
    for new, old, _ in warned.values():
        assert int(new) > int(old)
    [longest] = {int(limit) for *_, limit in warned.values()}
    assert run(manifest, "plan", "--json") == 0
    plan = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator(PLAN_SCHEMA).validate(plan)
    built = {a["details"]["name"]: a["details"]["built_prefix"] for a in plan["actions"]}
    assert set(built) == {"gcc-runtime", "greetlib", "hello-app"}
    assert all("__spack_path_placeholder__" in prefix for prefix in built.values())
    # apply, which sees the binaries' strings, names the same limit
    assert run(manifest, "apply", "--yes") == 1
    err = capsys.readouterr().err
    assert "error[cannot-grow-string]" in err
    assert f"use an install root of at most {longest} characters" in err


def test_strict_relocation_refuses_before_any_download(
    cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _root_of_length(tmp_path, 200)
    manifest = _manifest(tmp_path / "strict", root, cache, strict=True)
    assert run(manifest, "plan") == 1
    err = capsys.readouterr().err
    assert "error[prefix-longer-than-built]" in err
    assert "longer than the prefix it was built in" in err
    blobs = sorted(p.name for p in cache.rglob("*") if p.is_file())
    assert run(manifest, "apply", "--yes") == 1
    captured = capsys.readouterr()
    assert "error[prefix-longer-than-built]" in captured.err
    assert "fetch" not in captured.out  # refused by the plan: nothing fetched or unpacked
    assert sorted(p.name for p in cache.rglob("*") if p.is_file()) == blobs
    assert not any(root.glob("*-*-*")), "a prefix was created"


def test_a_root_that_fits_is_not_warned_even_under_strict_relocation(
    cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _manifest(tmp_path / "fits", tmp_path / "opt", cache, strict=True)
    assert run(manifest, "plan", "-v") == 0
    out = capsys.readouterr().out
    assert "warning" not in out
    assert re.search(r"built in /\S+hello-app-3\.0-\S+ \(\d+ characters\)", out)


def test_without_a_cached_tarball_plan_says_it_cannot_know(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _root_of_length(tmp_path, 200)
    manifest = _manifest(tmp_path / "uncached", root, None, strict=True)
    assert run(manifest, "plan", "-v") == 0  # no false refusal, and no false "fits"
    captured = capsys.readouterr()
    assert "warning" not in captured.out
    assert captured.out.count("built in a prefix known only from its tarball") == 3
    assert "plan cannot compare them with the new ones" in captured.err
    assert run(manifest, "plan", "--json") == 0
    plan = json.loads(capsys.readouterr().out)
    assert not any("built_prefix" in action["details"] for action in plan["actions"])
    # apply says the same before it starts, and its own check still refuses
    assert run(manifest, "apply", "--yes") == 1
    captured = capsys.readouterr()
    assert "plan cannot compare them with the new ones" in captured.err
    assert "error[cannot-grow-string]" in captured.err
