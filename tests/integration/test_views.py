"""Views with generations: each apply that changes what a [[view]] holds builds a new
generation beside it and switches the view's symlink atomically; rollback switches back;
prune never removes a prefix a kept generation links; env puts the view on PATH."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FIXTURES
from support import installed_prefix, run, run_subprocess, write_manifest

from reconcile.views.generations import tree_digest

SPACK1 = FIXTURES / "spack1-v3-signed"
SPACK1_FPR = "E19558C059B19311A4EB227B03683E7D4E8545AB"
SPACK1_MIRROR = (
    f'\n[[mirror]]\nname = "spack1"\nurl = "{SPACK1}"\n'
    f'\n[[key]]\nname = "spack1"\nkind = "gpg"\nfingerprint = "{SPACK1_FPR}"\n'
    f'file = "{FIXTURES / "keys" / f"{SPACK1_FPR}.pub"}"\n'
)


def view_table(**options: object) -> str:
    lines = ["", "[[view]]", 'name = "default"', 'path = "view"']
    for key, value in options.items():
        lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def set_specs(manifest: Path, *specs: str) -> None:
    text = manifest.read_text()
    start = text.index("specs = [")
    end = text.index("\n", start)
    listed = "[" + ", ".join(f'"{s}"' for s in specs) + "]"
    manifest.write_text(text[:start] + f"specs = {listed}" + text[end:])


def generations(manifest: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    capsys.readouterr()
    assert run(manifest, "generations", "--json") == 0
    document: dict[str, object] = json.loads(capsys.readouterr().out)
    return document


def linked_names(view: Path) -> set[str]:
    return {p.name for p in (view / "bin").iterdir()} if (view / "bin").is_dir() else set()


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    return write_manifest(
        tmp_path, specs=["hello-app"], extra=view_table(run_dependencies=True, keep=3)
    )


def test_three_applies_give_three_generations_and_rollback_restores(
    manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    view = manifest.parent / "view"
    assert run(manifest, "apply", "--yes") == 0
    assert os.readlink(view) == "view.generations/1"
    assert linked_names(view) == {"hello-app", "ha", "hello-app-wrapper"}
    done = subprocess.run([view / "bin" / "hello-app"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("hello-app 3.0 installed at")

    set_specs(manifest, "greetlib")
    capsys.readouterr()
    assert run(manifest, "plan") == 0
    out = capsys.readouterr().out
    assert "~ view default: a new generation of 2 spec(s)" in out
    assert "generation 1 differs: specs -hello-app@3.0/d7r6xmz" in out
    assert run(manifest, "apply", "--yes") == 0
    assert os.readlink(view) == "view.generations/2"
    assert linked_names(view) == set()
    assert (view / "lib" / "pkgconfig" / "greet2.pc").is_file()

    set_specs(manifest, "gcc-runtime")
    assert run(manifest, "apply", "--yes") == 0
    assert os.readlink(view) == "view.generations/3"
    assert not (view / "lib" / "pkgconfig").exists()

    listing = generations(manifest, capsys)
    assert listing["current"] == 3
    numbers = [g["number"] for g in listing["generations"]]  # type: ignore[attr-defined]
    assert numbers == [1, 2, 3]
    first = listing["generations"][0]  # type: ignore[index]
    assert {s["name"] for s in first["specs"]} == {"hello-app", "greetlib", "gcc-runtime"}
    assert first["created"].endswith("Z")
    capsys.readouterr()
    assert run(manifest, "generations") == 0
    text = capsys.readouterr().out
    assert "*    3" in text and "hello-app@3.0/d7r6xmz" in text

    assert run(manifest, "rollback") == 0
    assert "switched from generation 3 to generation 2" in capsys.readouterr().out
    assert os.readlink(view) == "view.generations/2"
    assert (view / "lib" / "pkgconfig" / "greet2.pc").is_file()
    assert run(manifest, "rollback", "--to", "1") == 0
    assert linked_names(view) == {"hello-app", "ha", "hello-app-wrapper"}
    log = (manifest.parent / "view.generations" / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["reason"] for line in log] == [
        "apply",
        "apply",
        "apply",
        "rollback",
        "rollback",
    ]
    # the manifest still asks for gcc-runtime alone: plan says the view will change again
    capsys.readouterr()
    assert run(manifest, "plan") == 0
    assert "generation 1 differs" in capsys.readouterr().out


def test_unchanged_view_is_a_noop_and_keep_trims(
    manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(manifest, "apply", "--yes") == 0
    capsys.readouterr()
    assert run(manifest, "plan") == 0
    assert "No changes" in capsys.readouterr().out
    for specs in (["greetlib"], ["gcc-runtime"], ["hello-app"], ["greetlib"]):
        set_specs(manifest, *specs)
        assert run(manifest, "apply", "--yes") == 0
    listing = generations(manifest, capsys)
    assert [g["number"] for g in listing["generations"]] == [3, 4, 5]  # type: ignore[attr-defined]
    folder = manifest.parent / "view.generations"
    assert sorted(p.name for p in folder.iterdir()) == [
        "3",
        "3.json",
        "4",
        "4.json",
        "5",
        "5.json",
        "log.jsonl",
    ]


READER = """
import sys, time
from pathlib import Path
path, ready, stop = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
reads = misses = 0
while not stop.exists():
    try:
        with open(path, "rb") as stream:
            stream.read()
        reads += 1
    except OSError:
        misses += 1
    if reads == 100:
        ready.touch()
print(reads, misses)
"""


def test_a_reader_never_sees_a_missing_file_while_the_view_switches(
    manifest: Path, tmp_path: Path
) -> None:
    view = manifest.parent / "view"
    assert run(manifest, "apply", "--yes") == 0  # 1: hello-app with greetlib
    set_specs(manifest, "greetlib")
    assert run(manifest, "apply", "--yes") == 0  # 2: greetlib alone
    ready, stop = tmp_path / "ready", tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(view / "lib/pkgconfig/greet2.pc"), ready, stop],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        while not ready.exists():
            assert reader.poll() is None
            time.sleep(0.01)
        for _ in range(40):
            assert run(manifest, "rollback", "--to", "1") == 0
            assert run(manifest, "rollback", "--to", "2") == 0
    finally:
        stop.touch()
        out, _ = reader.communicate(timeout=60)
    reads, misses = (int(n) for n in out.split())
    assert reads > 100
    assert misses == 0


def test_prune_keeps_every_prefix_a_kept_generation_links(
    manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = manifest.parent / "opt"
    assert run(manifest, "apply", "--yes") == 0  # generation 1 links hello-app
    app = installed_prefix(root, "hello-app")
    manifest.write_text(manifest.read_text().replace("[install]\n", "[install]\nprune = true\n"))
    set_specs(manifest, "greetlib")
    capsys.readouterr()
    assert run(manifest, "plan") == 0
    out = capsys.readouterr().out
    assert "- remove" not in out
    assert "generation 1 of view 'default' links it" in out
    assert run(manifest, "apply", "--yes") == 0  # generation 2
    assert app.is_dir()
    assert run(manifest, "rollback") == 0  # back to 1: it works, hello-app is there
    done = subprocess.run(
        [manifest.parent / "view/bin/hello-app"], capture_output=True, text=True, check=True
    )
    assert "hello-app 3.0" in done.stdout
    for _ in range(3):  # generations 3, 4, 5 (2 again, gcc-runtime alone, greetlib): keep = 3
        set_specs(manifest, "gcc-runtime")
        assert run(manifest, "apply", "--yes") == 0
        set_specs(manifest, "greetlib")
        assert run(manifest, "apply", "--yes") == 0
        if not any(
            "hello-app" in {s["name"] for s in g["specs"]}
            for g in generations(manifest, capsys)["generations"]  # type: ignore[attr-defined]
        ):
            break
    capsys.readouterr()
    assert run(manifest, "plan") == 0
    assert "- remove hello-app@3.0/" in capsys.readouterr().out
    assert run(manifest, "apply", "--yes") == 0
    assert not app.exists()
    assert installed_prefix(root, "greetlib").is_dir()


def test_conflict_names_both_prefixes_and_first_keeps_the_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = ["hello-app target=x86_64_v4", "hello-app target=icelake"]
    manifest = write_manifest(tmp_path, specs=specs, extra=SPACK1_MIRROR + view_table())
    capsys.readouterr()
    assert run(manifest, "apply", "--yes") == 1
    err = capsys.readouterr().err
    assert "error[view-conflict]" in err
    assert "view 'default' was not switched" in err
    root = tmp_path / "opt"
    (first, second) = sorted(root.glob("hello-app-3.0-*"))
    assert f"bin/hello-app is in both {first}" in err or f"bin/hello-app is in both {second}" in err
    assert str(first) in err and str(second) in err
    assert not (tmp_path / "view").exists()
    assert sorted(p.name for p in (tmp_path / "view.generations").iterdir()) == []

    manifest.write_text(manifest.read_text() + 'conflicts = "first"\n')
    assert run(manifest, "apply", "--yes") == 0
    target = os.readlink(tmp_path / "view" / "bin" / "hello-app")
    x86 = next(p for p in (first, second) if p.name.endswith(installed_hash(root, "x86_64_v4")))
    assert target == str(x86 / "bin" / "hello-app")


def installed_hash(root: Path, target: str) -> str:
    for record in (root / ".reconcile" / "records").glob("*.json"):
        data = json.loads(record.read_text())
        if data["name"] == "hello-app" and target in json.dumps(data["spec"]):
            return str(data["hash"])
    raise AssertionError(target)


def test_env_lines_put_the_view_on_path_in_a_real_shell(
    manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(manifest, "apply", "--yes") == 0
    capsys.readouterr()
    assert run(manifest, "env") == 0
    lines = capsys.readouterr().out
    assert "LD_LIBRARY_PATH" not in lines
    done = subprocess.run(
        [
            "sh",
            "-c",
            'eval "$1"; hello-app; echo "$PKG_CONFIG_PATH|$CMAKE_PREFIX_PATH"',
            "sh",
            lines,
        ],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    view = manifest.parent / "view"
    assert done.stdout.startswith("hello-app 3.0 installed at")
    assert done.stdout.splitlines()[-1] == f"{view}/lib/pkgconfig|{view}"


def test_view_of_copies_relocates_text_files_to_the_view(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, specs=["greetlib"], extra=view_table(link="copy"))
    assert run(manifest, "apply", "--yes") == 0
    view = tmp_path / "view"
    pc = view / "lib" / "pkgconfig" / "greet2.pc"
    assert not pc.is_symlink()
    assert f"prefix={view}\n" in pc.read_text()
    library = view / "lib" / "libgreet2.so.2"
    prefix = installed_prefix(tmp_path / "opt", "greetlib")
    assert library.read_bytes() == (prefix / "lib" / "libgreet2.so.2").read_bytes()
    assert os.readlink(view / "lib" / "libgreet2.so") == "libgreet2.so.2"


def test_a_view_path_that_is_not_a_reconcile_link_is_refused(
    manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (manifest.parent / "view").mkdir()
    (manifest.parent / "view" / "mine.txt").write_text("keep me")
    capsys.readouterr()
    assert run(manifest, "plan") == 1
    assert "error[view-not-reconcile]" in capsys.readouterr().err
    assert (manifest.parent / "view" / "mine.txt").read_text() == "keep me"


def test_generation_tree_digest_matches_its_metadata(manifest: Path) -> None:
    assert run(manifest, "apply", "--yes") == 0
    folder = manifest.parent / "view.generations"
    metadata = json.loads((folder / "1.json").read_text())
    assert tree_digest(folder / "1") == (metadata["tree"], metadata["files"])


def drift_findings(manifest: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, str]]:
    capsys.readouterr()
    code = run(manifest, "drift", "--json")
    report = json.loads(capsys.readouterr().out)
    (view,) = [a for a in report["resources"] if a["resource"] == "view:default"]
    assert code == (2 if view["findings"] else 0)
    return list(view["findings"])


def test_drift_reports_a_changed_generation_and_a_missing_prefix(
    manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(manifest, "apply", "--yes") == 0
    assert drift_findings(manifest, capsys) == []
    tree = manifest.parent / "view.generations" / "1"
    (tree / "bin" / "intruder").write_text("#!/bin/sh\n")
    (kind,) = {f["kind"] for f in drift_findings(manifest, capsys)}
    assert kind == "view-differs"
    (tree / "bin" / "intruder").unlink()
    app = installed_prefix(manifest.parent / "opt", "hello-app")
    app.rename(app.with_name("elsewhere"))
    findings = drift_findings(manifest, capsys)
    assert [(f["kind"], f["path"]) for f in findings] == [("view-prefix-missing", str(app))]


def test_a_planted_link_for_the_generations_folder_is_refused(
    manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Someone who can write the view's folder plants '<view>.generations' pointing
    elsewhere: reconcile refuses to build through it and writes nothing there."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (manifest.parent / "view.generations").symlink_to(elsewhere)
    capsys.readouterr()
    assert run(manifest, "apply", "--yes") == 1
    assert "error[link-in-root]" in capsys.readouterr().err
    assert list(elsewhere.iterdir()) == []
    assert not (manifest.parent / "view").exists()


def test_a_view_link_pointing_elsewhere_is_never_replaced(
    manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mine").mkdir()
    (manifest.parent / "view").symlink_to(tmp_path / "mine")
    capsys.readouterr()
    assert run(manifest, "plan") == 1
    err = capsys.readouterr().err
    assert "error[view-not-reconcile]" in err and "reconcile did not make it" in err
    assert os.readlink(manifest.parent / "view") == str(tmp_path / "mine")


def test_a_saved_plan_switches_the_view_and_is_stale_after_a_rollback(
    manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(manifest, "apply", "--yes") == 0
    set_specs(manifest, "greetlib")
    assert run(manifest, "apply", "--yes") == 0
    set_specs(manifest, "gcc-runtime")
    saved = tmp_path / "plan.json"
    assert run(manifest, "plan", "--out", str(saved)) == 0
    assert run(manifest, "rollback") == 0  # the view the plan started from changed
    capsys.readouterr()
    assert run(manifest, "apply", str(saved), "--yes") == 1
    assert "view:default" in capsys.readouterr().err
    assert run(manifest, "rollback", "--to", "2") == 0
    assert run(manifest, "apply", str(saved), "--yes") == 0
    assert os.readlink(manifest.parent / "view") == "view.generations/3"


def test_hardlink_view_shares_the_installed_files(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, specs=["greetlib"], extra=view_table(link="hardlink"))
    assert run(manifest, "apply", "--yes") == 0
    prefix = installed_prefix(tmp_path / "opt", "greetlib")
    linked = tmp_path / "view" / "lib" / "libgreet2.so.2"
    assert not linked.is_symlink()
    assert linked.stat().st_ino == (prefix / "lib" / "libgreet2.so.2").stat().st_ino
    assert not (tmp_path / "view" / ".spack").exists()


def test_projections_and_exclude(tmp_path: Path) -> None:
    extra = view_table(run_dependencies=True, exclude=["lib/*.so*"]) + (
        '[view.projections]\ngreetlib = "libs/{name}-{version}"\nall = "{name}"\n'
    )
    manifest = write_manifest(tmp_path, specs=["hello-app"], extra=extra)
    assert run(manifest, "apply", "--yes") == 0
    view = tmp_path / "view"
    assert sorted(p.name for p in view.iterdir()) == ["gcc-runtime", "hello-app", "libs"]
    assert (view / "libs" / "greetlib-2.1" / "lib" / "pkgconfig" / "greet2.pc").is_symlink()
    assert not (view / "libs" / "greetlib-2.1" / "lib" / "libgreet2.so.2").exists()
    assert (view / "hello-app" / "bin" / "hello-app").is_symlink()


@pytest.mark.parametrize("crash_at", ["view-building", "view-before-switch"])
def test_an_apply_killed_while_building_a_view_converges(manifest: Path, crash_at: str) -> None:
    view = manifest.parent / "view"
    assert run(manifest, "apply", "--yes") == 0
    set_specs(manifest, "greetlib")
    killed = run_subprocess(manifest, "apply", "--yes", env={"RECONCILE_CRASH_AT": crash_at})
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert os.readlink(view) == "view.generations/1"  # the old tree, whole
    assert (view / "bin" / "hello-app").exists()
    again = run_subprocess(manifest, "apply", "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert (view / "lib" / "pkgconfig" / "greet2.pc").exists()
    assert not (view / "bin").exists()
    left = [p.name for p in (manifest.parent / "view.generations").iterdir()]
    assert not [name for name in left if name.startswith(".building-")]
    planned = run_subprocess(manifest, "plan", "--detailed-exitcode")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    audit = json.loads(run_subprocess(manifest, "drift", "--json").stdout)
    (audited,) = [a for a in audit["resources"] if a["resource"] == "view:default"]
    assert audited["findings"] == []  # (hello-app, undeclared and kept, is drift of its own)


def test_rollback_to_a_generation_whose_prefix_is_gone_is_refused(
    manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(manifest, "apply", "--yes") == 0
    set_specs(manifest, "greetlib")
    assert run(manifest, "apply", "--yes") == 0
    app = installed_prefix(manifest.parent / "opt", "hello-app")
    app.rename(app.with_name("moved-away"))  # as a person removing it by hand would
    capsys.readouterr()
    assert run(manifest, "rollback") == 1
    err = capsys.readouterr().err
    assert "error[view-prefix-missing]" in err and str(app) in err
    assert os.readlink(manifest.parent / "view") == "view.generations/2"
    assert run(manifest, "rollback", "--to", "7") == 1
    assert "error[no-such-generation]" in capsys.readouterr().err
    assert run(manifest, "env", "--view", "other") == 1
    assert "error[no-such-view]" in capsys.readouterr().err


def test_a_view_of_copies_runs_through_the_view(tmp_path: Path) -> None:
    """The wrapper script names the binary's prefix: copied, it names the view instead; the
    copied binary still finds its libraries in the prefixes (RPATH), which stay kept."""
    manifest = write_manifest(
        tmp_path, specs=["hello-app"], extra=view_table(link="copy", run_dependencies=True)
    )
    assert run(manifest, "apply", "--yes") == 0
    view = tmp_path / "view"
    wrapper = view / "bin" / "hello-app-wrapper"
    assert not wrapper.is_symlink()
    assert str(view / "bin" / "hello-app") in wrapper.read_text()
    assert "/opt/" not in wrapper.read_text()
    done = subprocess.run([wrapper], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("hello-app 3.0 installed at")
    message = view / "share" / "hello-app" / "greetlib-message"
    assert os.readlink(message) == str(view / "share" / "greetlib" / "message.txt")
    assert os.readlink(view / "bin" / "ha") == "hello-app"
