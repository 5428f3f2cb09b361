"""Property: for any manifest the generators produce, a real apply followed by plan is empty,
and a second apply changes nothing on disk."""

from __future__ import annotations

import grp
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from conftest import GCC_RUNTIME_HASH, GREETLIB_HASH, HELLO_HASH, UNSIGNED_CACHE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import installed_prefix, run, run_hello, snapshot, write_manifest

SELECTORS = {
    "hello-app": [
        "hello-app",
        "hello-app@3.0",
        "hello-app@=3.0",
        f"/{HELLO_HASH[:6]}",
        f"hello-app@3.0/{HELLO_HASH[:4]}",
    ],
    "greetlib": ["greetlib", "greetlib@2", "greetlib@=2.1", f"greetlib/{GREETLIB_HASH[:7]}"],
    "gcc-runtime": ["gcc-runtime", f"/{GCC_RUNTIME_HASH}"],
}
PROJECTIONS = [
    None,
    "{name}/{version}-{hash:7}",
    "{arch}/{compiler.name}-{compiler.version}/{name}-{version}-{hash}",
]
VALID_PERMISSIONS = [
    None,
    {"read": "world", "write": "user"},
    {"read": "group", "write": "group"},
    {"read": "user", "write": "user"},
    {"read": "group", "write": "user", "group": grp.getgrgid(os.getgid()).gr_name},
]


@st.composite
def manifests(draw: st.DrawFn) -> dict[str, object]:
    packages = draw(
        st.lists(st.sampled_from(sorted(SELECTORS)), min_size=1, max_size=3, unique=True)
    )
    signed = draw(st.booleans())
    options: dict[str, object] = {
        "specs": [draw(st.sampled_from(SELECTORS[p])) for p in packages],
        "root": draw(st.sampled_from(["opt", "sw/tree", "a"])),
        "projection": draw(st.sampled_from(PROJECTIONS)),
        "padded_length": draw(st.sampled_from([None, 100, 128])),
        "permissions": draw(st.sampled_from(VALID_PERMISSIONS)),
    }
    if not signed:
        options.update(mirror=UNSIGNED_CACHE, signed=False, key_file=None)
    return options


@pytest.mark.slow
@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(options=manifests())
def test_plan_after_apply_is_empty(
    options: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    folder = Path(tempfile.mkdtemp(prefix="rc-prop-"))
    try:
        manifest = write_manifest(folder, **options)
        assert run(manifest, "apply", "--yes") == 0, capsys.readouterr()
        assert run(manifest, "plan", "--detailed-exitcode") == 0, capsys.readouterr()
        root = folder / str(options["root"])
        before = snapshot(root)
        assert run(manifest, "apply", "--yes") == 0
        assert snapshot(root) == before
        if any(str(s).startswith(("hello-app", f"/{HELLO_HASH[:6]}")) for s in options["specs"]):  # type: ignore[attr-defined]
            lines = run_hello(installed_prefix(root, "hello-app"))
            assert lines[2] == "greetlib 2.1 says hello."
        capsys.readouterr()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
