"""The lock file: ``reconcile lock`` pins what each selector resolves to; plan and apply use
it, ``--locked`` refuses anything else. Against the Spack-made fixtures of both formats."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path

import jsonschema
import pytest
from conftest import FIXTURE_FPR, FIXTURE_KEY, FIXTURES, REPO, SIGNED_CACHE
from support import installed_prefix, run, run_hello

SCHEMA = json.loads((REPO / "schemas" / "lock.schema.json").read_text())
PLAN_SCHEMA = json.loads((REPO / "schemas" / "plan.schema.json").read_text())
SPACK1 = FIXTURES / "spack1-v3-signed"
SPACK1_FPR = "E19558C059B19311A4EB227B03683E7D4E8545AB"
TEAM_HELLO = "d7r6xmzoqurk6flnbcq6ygnn57fqrl35"  # hello-app@3.0 in the Spack 0.23 cache
SPACK1_HELLO = "ysrcvre4xvqeyafearwsb2xo5uvmbqmr"  # hello-app@3.0 in the Spack 1.1 cache
TEAM_CLOSURE = sorted(
    [TEAM_HELLO, "yrhiacwgupby4tv3k7q335q6ovlg2ts2", "75b4t5rehtewc6bh4sj3aqwpli7tah3f"]
)
MIRRORS = {
    "team": (SIGNED_CACHE, "team-gpg", FIXTURE_FPR, FIXTURE_KEY),
    "spack1": (SPACK1, "spack1-gpg", SPACK1_FPR, FIXTURES / "keys" / f"{SPACK1_FPR}.pub"),
}


def project(
    folder: Path,
    specs: list[str],
    *,
    mirrors: tuple[str, ...] = ("team", "spack1"),
    urls: dict[str, Path] | None = None,
    extra: str = "",
) -> Path:
    """A manifest with the fixture caches as mirrors (both offer a hello-app@3.0 build)."""
    lines = ["version = 1", "", "[install]", 'root = "opt"', f"specs = {json.dumps(specs)}"]
    for name in mirrors:
        url, key, fingerprint, key_file = MIRRORS[name]
        url = (urls or {}).get(name, url)
        lines += ["", "[[mirror]]", f'name = "{name}"', f'url = "{url}"']
        lines += ["", "[[key]]", f'name = "{key}"', f'fingerprint = "{fingerprint}"']
        lines.append(f'file = "{key_file}"')
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "reconcile.toml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def lock_of(manifest: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads(manifest.with_suffix(".lock").read_text())
    return data


def planned_installs(manifest: Path, capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    capsys.readouterr()
    assert run(manifest, "plan", "--json", *args) == 0, capsys.readouterr().err
    plan = json.loads(capsys.readouterr().out)
    return sorted(a["details"]["hash"] for a in plan["actions"] if a["action"] == "install")


def test_lock_then_locked_plan_in_a_fresh_copy_plans_exactly_the_locked_hashes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = project(tmp_path / "work", ["hello-app"])
    assert run(manifest, "lock", "--pick", "newest") == 0
    out = capsys.readouterr().out
    assert f"+ hello-app -> hello-app@3.0/{TEAM_HELLO[:7]} (3 nodes)" in out
    lock = lock_of(manifest)
    jsonschema.Draft202012Validator(SCHEMA).validate(lock)
    assert lock["specs"] == {"hello-app": {"hash": TEAM_HELLO, "closure": TEAM_CLOSURE}}
    nodes = {n["hash"]: n for n in lock["nodes"]}  # type: ignore[attr-defined]
    assert nodes[TEAM_HELLO] == {
        "name": "hello-app",
        "version": "3.0",
        "hash": TEAM_HELLO,
        "mirror": "team",
        "tarball": {
            "sha256": "ef1205a792c3b247df955a6c0a7ece622883c2ef5e0d9a65ad6630c2439fb393",
            "size": 9861,
        },
        "signer": {"scheme": "gpg", "id": FIXTURE_FPR},
    }
    # A fresh clone: the same manifest and lock, nothing installed; its mirrors listed in
    # the other order, so that resolving anew (--pick newest) would now take spack1's build.
    clone = project(tmp_path / "clone", ["hello-app"], mirrors=("spack1", "team"))
    shutil.copy(manifest.with_suffix(".lock"), clone.with_suffix(".lock"))
    assert planned_installs(clone, capsys, "--locked") == TEAM_CLOSURE
    assert planned_installs(clone, capsys) == TEAM_CLOSURE  # the lock is used without --locked
    # Without the lock the same manifest is ambiguous: the lock is what decided.
    bare = project(tmp_path / "bare", ["hello-app"], mirrors=("spack1", "team"))
    assert run(bare, "plan") == 1
    assert "'hello-app' matches 2 specs" in capsys.readouterr().err
    assert run(clone, "apply", "--yes", "--locked") == 0
    lines = run_hello(installed_prefix(tmp_path / "clone" / "opt", "hello-app"))
    assert lines[0].startswith("hello-app 3.0 installed at ")
    capsys.readouterr()
    assert run(clone, "plan", "--locked", "--detailed-exitcode") == 0


def test_locking_twice_gives_the_same_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = project(tmp_path, ["hello-app target=x86_64_v4", "greetlib target=icelake"])
    lock_file = manifest.with_suffix(".lock")
    assert run(manifest, "lock") == 0
    first = lock_file.read_bytes()
    assert first.endswith(b"}\n") and b"\t" not in first
    assert run(manifest, "lock") == 0
    assert "is up to date (2 selectors, 5 nodes, 0 sources)" in capsys.readouterr().out
    lock_file.unlink()
    assert run(manifest, "lock", "--update") == 0
    assert lock_file.read_bytes() == first
    # the same selectors in another order: the same lock
    again = project(tmp_path / "again", ["greetlib target=icelake", "hello-app target=x86_64_v4"])
    assert run(again, "lock") == 0
    assert again.with_suffix(".lock").read_bytes() == first
    # one node per block: each node's name sits in its own object, nodes sorted by name
    names = [n["name"] for n in json.loads(first)["nodes"]]
    assert names == sorted(names)
    assert first.decode().count('"name": ') == 5


def test_an_ambiguous_selector_refuses_to_lock_unless_pick_newest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = project(tmp_path, ["hello-app"])
    assert run(manifest, "lock") == 1
    err = capsys.readouterr().err
    assert "error[plan-failed]: 'hello-app' matches 2 specs that are not installed" in err
    assert f"hello-app@3.0/{TEAM_HELLO[:7]}  linux-debian12-x86_64_v4" in err
    assert f"hello-app@3.0/{SPACK1_HELLO[:7]}  linux-debian12-icelake" in err
    assert "or pass --pick newest" in err
    assert "'reconcile lock --pick newest'" in err
    assert not manifest.with_suffix(".lock").exists()


def test_changing_the_manifest_makes_locked_fail_naming_each_selector(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = project(tmp_path, ["hello-app target=x86_64_v4"])
    assert run(manifest, "lock") == 0
    project(tmp_path, ["hello-app target=icelake", "greetlib@2.1 target=x86_64_v4"])
    capsys.readouterr()
    assert run(manifest, "plan", "--locked") == 1
    err = capsys.readouterr().err
    assert "error[not-locked]" in err
    assert "'hello-app target=icelake': reconcile.lock has no entry for it" in err
    assert "'greetlib@2.1 target=x86_64_v4': reconcile.lock has no entry for it" in err
    assert "--locked does not resolve it anew" in err
    assert run(manifest, "apply", "--yes", "--locked") == 1
    assert "error[not-locked]" in capsys.readouterr().err
    assert not (tmp_path / "opt").exists() or not any((tmp_path / "opt").iterdir())
    # without --locked: resolved anew, with a note naming each selector
    assert run(manifest, "plan") == 0
    out = capsys.readouterr().out
    assert "! lock:hello-app target=icelake: reconcile.lock has no entry for it" in out
    assert "! lock:greetlib@2.1 target=x86_64_v4: reconcile.lock has no entry for it" in out
    assert run(manifest, "plan", "--json") == 0
    plan = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator(PLAN_SCHEMA).validate(plan)
    notes = {n["resource"]: n for n in plan["noops"] if n["resource"].startswith("lock:")}
    assert notes["lock:hello-app target=icelake"]["differs"] is True
    # once locked again, --locked plans
    assert run(manifest, "lock") == 0
    out = capsys.readouterr().out
    assert f"+ hello-app target=icelake -> hello-app@3.0/{SPACK1_HELLO[:7]}" in out
    assert "- hello-app target=x86_64_v4 (no longer declared)" in out
    assert run(manifest, "plan", "--locked") == 0


def test_locked_without_a_lock_file_names_every_selector(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = project(tmp_path, ["hello-app target=x86_64_v4", "greetlib target=icelake"])
    assert run(manifest, "plan", "--locked") == 1
    err = capsys.readouterr().err
    for selector in ("hello-app target=x86_64_v4", "greetlib target=icelake"):
        assert f"'{selector}': there is no lock file reconcile.lock" in err


def test_a_mirror_offering_another_build_keeps_the_locked_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The second mirror is empty when locking; then it gets a hello-app@3.0 build too."""
    second = tmp_path / "second"
    second.mkdir()
    manifest = project(tmp_path, ["hello-app"], urls={"spack1": second})
    assert run(manifest, "lock") == 0
    before = manifest.with_suffix(".lock").read_bytes()
    shutil.copytree(SPACK1, second, dirs_exist_ok=True)
    assert planned_installs(manifest, capsys, "--locked") == TEAM_CLOSURE
    assert planned_installs(manifest, capsys) == TEAM_CLOSURE
    assert run(manifest, "lock") == 0  # kept: the lock still satisfies the selector
    assert f"  hello-app -> hello-app@3.0/{TEAM_HELLO[:7]}" in capsys.readouterr().out
    assert manifest.with_suffix(".lock").read_bytes() == before
    # re-resolving is asked for explicitly, and is then ambiguous
    assert run(manifest, "lock", "--update", "hello-app") == 1
    assert "matches 2 specs" in capsys.readouterr().err
    assert manifest.with_suffix(".lock").read_bytes() == before


def test_a_tarball_that_is_not_the_locked_one_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = project(tmp_path, ["hello-app target=x86_64_v4"], mirrors=("team",))
    assert run(manifest, "lock") == 0
    lock_file = manifest.with_suffix(".lock")
    lock = json.loads(lock_file.read_text())
    for node in lock["nodes"]:
        if node["name"] == "greetlib":
            node["tarball"]["sha256"] = "0" * 64
        if node["name"] == "hello-app":
            node["tarball"]["size"] += 1
    lock_file.write_text(json.dumps(lock))
    capsys.readouterr()
    for command in (["plan"], ["plan", "--locked"], ["apply", "--yes"]):
        assert run(manifest, *command) == 1
        err = capsys.readouterr().err
        assert "error[lock-mismatch]" in err
        assert "greetlib@2.1/yrhiacw: mirror 'team' serves a tarball of 9708 bytes" in err
        assert f"but reconcile.lock pins 9708 bytes with sha256 {'0' * 64}; refused" in err
        assert "hello-app@3.0/d7r6xmz: mirror 'team' serves a tarball of 9861 bytes" in err
        assert "reconcile.lock pins 9862 bytes" in err
    assert not (tmp_path / "opt").exists()


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"lock_version": 1,\n "specs": {', "reconcile.lock:2:12: not JSON: Expecting"),
        ("[]\n", "reconcile.lock:1:1: expected an object, got an array"),
        (
            '{"lock_version": 2, "specs": {}, "nodes": [], "sources": []}',
            "reconcile.lock:1:18: lock_version: lock format 2 is not supported",
        ),
        (
            '{"lock_version": 1, "specs": {},\n "nodes": [{"name": "x"}], "sources": [], "x": 1}',
            "reconcile.lock:2:48: x: unknown key 'x'",
        ),
        (
            '{"lock_version": 1, "specs": {},\n "nodes": [{"name": "x"}], "sources": []}',
            "reconcile.lock:2:12: nodes[0]: missing key 'hash'",
        ),
        (
            '{"lock_version": 1, "nodes": [], "sources": [],\n'
            '  "specs": {"hello-app": {"hash": "ABC", "closure": ["abc"]}}}',
            "reconcile.lock:2:35: specs[\"hello-app\"].hash: expected a DAG hash, got 'ABC'",
        ),
        (
            '{"lock_version": 1, "nodes": [], "sources": [],\n'
            '  "specs": {"hello-app": {"hash": "abc", "closure": ["abc"]}}}',
            'reconcile.lock:2:54: specs["hello-app"].closure[0]: abc is not one of the lock\'s',
        ),
        ("[" * 100_000, "not a lock: it nests lists and objects more than 64 deep"),
    ],
)
def test_a_tampered_lock_is_a_located_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, where: str
) -> None:
    manifest = project(tmp_path, ["hello-app target=x86_64_v4"], mirrors=("team",))
    manifest.with_suffix(".lock").write_text(text)
    for command in (["plan"], ["plan", "--locked"], ["apply", "--yes"], ["lock"]):
        assert run(manifest, *command) == 1
        err = capsys.readouterr().err
        assert err.startswith("error[invalid-lock]: "), err
        assert where in err, err
        assert "Traceback" not in err
    assert not (tmp_path / "opt").exists()
    # --update (all) resolves every selector anew: the broken lock is replaced
    assert run(manifest, "lock", "--update") == 0
    jsonschema.Draft202012Validator(SCHEMA).validate(lock_of(manifest))


def test_update_names_only_declared_selectors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = project(tmp_path, ["hello-app target=x86_64_v4"], mirrors=("team",))
    assert run(manifest, "lock", "--update", "hello-app", "greetlib") == 1
    err = capsys.readouterr().err
    assert "error[unknown-selector]: --update names 'hello-app', 'greetlib'" in err
    assert "(declared: 'hello-app target=x86_64_v4')" in err


def test_a_saved_plan_applied_with_locked_must_install_only_what_the_lock_pins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = project(tmp_path, ["hello-app target=x86_64_v4"], mirrors=("team",))
    saved = tmp_path / "plan.json"
    assert run(manifest, "plan", "--out", str(saved)) == 0  # made before any lock existed
    capsys.readouterr()
    assert run(manifest, "apply", str(saved), "--locked") == 1
    err = capsys.readouterr().err
    assert f"error[stale-plan]: the saved plan {saved} installs what reconcile.lock" in err
    for label in ("hello-app@3.0/d7r6xmz", "greetlib@2.1/yrhiacw", "gcc-runtime@12.2.0/75b4t5r"):
        assert f"{label}: reconcile.lock does not pin it" in err
    assert run(manifest, "lock") == 0
    lock_file = manifest.with_suffix(".lock")
    pinned = lock_file.read_text()
    lock_file.write_text(pinned.replace('"size": 9708', '"size": 9709'))
    capsys.readouterr()
    assert run(manifest, "apply", str(saved), "--locked") == 1
    err = capsys.readouterr().err
    assert "greetlib@2.1/yrhiacw: the plan fetches a tarball of 9708 bytes" in err
    assert "reconcile.lock pins 9709 bytes" in err
    assert not (tmp_path / "opt").exists()
    # the lock the saved plan agrees with: it binds and runs
    lock_file.write_text(pinned)
    assert run(manifest, "apply", str(saved), "--locked") == 0
    run_hello(installed_prefix(tmp_path / "opt", "hello-app"))
    # a saved plan made with --locked, once the manifest no longer matches the lock, fails
    # in the re-check as plan --locked does
    saved_again = tmp_path / "again.json"
    assert run(manifest, "plan", "--locked", "--out", str(saved_again)) == 0
    project(tmp_path, ["hello-app target=x86_64_v4", "greetlib"], mirrors=("team",))
    capsys.readouterr()
    assert run(manifest, "apply", str(saved_again), "--locked") == 1
    assert "error[stale-plan]" in capsys.readouterr().err  # the manifest changed


SOURCES = {
    ("greetlib", "2.1"): "fa2d16c7c3e49771597f3368c60265178be903aa6705b848ae6a82ef262e98df",
    ("hello-app", "3.0"): "7ba9fd213dbd67030b30b08d252aba22e364805d7625e31c21e86b3b5b50fb57",
}


def _source_entries(sha256s: dict[tuple[str, str], str]) -> str:
    lines = ["", "[[mirror]]", 'name = "sources"', 'url = "sources"', "signed = false", ""]
    archive = FIXTURES / "spack-source-mirror" / "_source-cache" / "archive"
    for (name, version), sha256 in sha256s.items():
        url = (archive / SOURCES[name, version][:2] / f"{SOURCES[name, version]}.tar.gz").as_uri()
        lines += ["[[source]]", f'name = "{name}"', f'version = "{version}"']
        lines += [f'url = "{url}"', f'sha256 = "{sha256}"', 'mirror = "sources"', ""]
    return "\n".join(lines)


def test_sources_are_locked_and_locked_names_a_source_that_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = ["hello-app target=x86_64_v4"]
    manifest = project(tmp_path, specs, mirrors=("team",), extra=_source_entries(SOURCES))
    assert run(manifest, "lock") == 0
    assert "(1 selector, 3 nodes, 2 sources)" in capsys.readouterr().out
    lock = lock_of(manifest)
    jsonschema.Draft202012Validator(SCHEMA).validate(lock)
    assert [(s["name"], s["sha256"]) for s in lock["sources"]] == [  # type: ignore[attr-defined]
        ("greetlib", SOURCES["greetlib", "2.1"]),
        ("hello-app", SOURCES["hello-app", "3.0"]),
    ]
    assert run(manifest, "plan", "--locked") == 0
    changed = {**SOURCES, ("greetlib", "2.1"): "f" * 64}
    project(tmp_path, specs, mirrors=("team",), extra=_source_entries(changed))
    capsys.readouterr()
    assert run(manifest, "plan", "--locked") == 1
    err = capsys.readouterr().err
    assert "error[not-locked]: source greetlib@2.1 (mirror sources): reconcile.lock records " in err
    assert "another sha256" in err and "hello-app@3.0" not in err
    assert run(manifest, "plan") == 0
    out = capsys.readouterr().out
    assert "! lock:source:sources/greetlib@2.1: reconcile.lock records another sha256" in out


def test_locked_fails_when_the_locked_spec_is_gone_or_no_longer_matches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = project(tmp_path, ["hello-app"])
    assert run(manifest, "lock", "--pick", "newest") == 0
    # the mirror that offered the locked build is no longer declared
    project(tmp_path, ["hello-app"], mirrors=("spack1",))
    capsys.readouterr()
    assert run(manifest, "plan", "--locked") == 1
    err = capsys.readouterr().err
    assert (
        f"'hello-app': its locked spec hello-app@3.0/{TEAM_HELLO[:7]} is neither installed nor "
        "offered by a declared mirror; --locked does not resolve it anew"
    ) in err
    assert run(manifest, "plan") == 0  # resolved anew, with a note
    assert "! lock:hello-app: its locked spec" in capsys.readouterr().out
    # install.arch now excludes the locked build
    project(tmp_path, ["hello-app"], extra="")
    text = manifest.read_text().replace(
        'root = "opt"', 'root = "opt"\narch = "linux-debian12-icelake"'
    )
    manifest.write_text(text)
    assert run(manifest, "plan", "--locked") == 1
    assert f"its locked spec hello-app@3.0/{TEAM_HELLO[:7]} does not match it" in (
        capsys.readouterr().err
    )


def test_locked_fails_when_the_locked_closure_is_not_the_signed_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = project(tmp_path, ["hello-app target=x86_64_v4"], mirrors=("team",))
    assert run(manifest, "lock") == 0
    lock_file = manifest.with_suffix(".lock")
    lock = json.loads(lock_file.read_text())
    lock["specs"]["hello-app target=x86_64_v4"]["closure"].remove(
        "yrhiacwgupby4tv3k7q335q6ovlg2ts2"
    )
    lock_file.write_text(json.dumps(lock))
    capsys.readouterr()
    assert run(manifest, "plan", "--locked") == 1
    err = capsys.readouterr().err
    assert "error[not-locked]: 'hello-app target=x86_64_v4': the closure reconcile.lock" in err
    assert "(not locked: greetlib@2.1/yrhiacw; locked but not needed: none)" in err
    assert run(manifest, "plan") == 0
    assert "! lock:hello-app target=x86_64_v4: the closure reconcile.lock" in (
        capsys.readouterr().out
    )


def test_a_locked_spec_whose_prefix_is_gone_and_no_mirror_offers_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = project(tmp_path, ["hello-app target=x86_64_v4"], mirrors=("team",))
    assert run(manifest, "lock") == 0
    assert run(manifest, "apply", "--yes", "--locked") == 0
    shutil.rmtree(installed_prefix(tmp_path / "opt", "hello-app"))  # its record stays
    project(tmp_path, ["hello-app target=x86_64_v4"], mirrors=("spack1",))
    capsys.readouterr()
    assert run(manifest, "plan", "--locked") == 1
    assert (
        f"its locked spec hello-app@3.0/{TEAM_HELLO[:7]} is neither installed nor offered"
    ) in capsys.readouterr().err


def test_a_locked_install_from_the_spack_1_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = project(tmp_path, ["hello-rpath %gcc"], mirrors=("spack1",))
    assert run(manifest, "lock") == 0
    lock = lock_of(manifest)
    jsonschema.Draft202012Validator(SCHEMA).validate(lock)
    assert {n["mirror"] for n in lock["nodes"]} == {"spack1"}  # type: ignore[attr-defined]
    assert {n["signer"]["id"] for n in lock["nodes"]} == {SPACK1_FPR}  # type: ignore[attr-defined]
    (root,) = [s["hash"] for s in lock["specs"].values()]  # type: ignore[attr-defined]
    assert run(manifest, "apply", "--yes", "--locked") == 0
    (prefix,) = (tmp_path / "opt").glob(f"hello-rpath-1.0-{root}")
    lines = run_hello(prefix, "bin/hello")
    assert lines[0].startswith("hello")


def test_bundle_export_carries_the_locked_closure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = project(tmp_path, ["hello-app"])
    bundle = tmp_path / "bundle.tar"
    assert run(manifest, "bundle", "export", "--out", str(bundle)) == 1  # ambiguous
    assert "'hello-app' matches 2 specs" in capsys.readouterr().err
    assert run(manifest, "lock", "--pick", "newest") == 0
    assert run(manifest, "bundle", "export", "--out", str(bundle)) == 0
    assert "3 specs" in capsys.readouterr().out
    with tarfile.open(bundle) as archive:
        names = archive.getnames()
    assert any(TEAM_HELLO in name for name in names)
    assert not any(SPACK1_HELLO in name for name in names)


@pytest.mark.parametrize("kind", ["fifo", "folder", "not-utf8", "huge"])
def test_a_lock_path_that_is_not_a_small_text_file_is_refused_without_waiting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    manifest = project(tmp_path, ["hello-app target=x86_64_v4"], mirrors=("team",))
    lock_file = manifest.with_suffix(".lock")
    if kind == "fifo":
        os.mkfifo(lock_file)  # nobody writes it: opening it for reading must not block
    elif kind == "folder":
        lock_file.mkdir()
    elif kind == "not-utf8":
        lock_file.write_bytes(b'{"lock_version": 1, "specs": {"\xff": 1}}')
    else:
        with lock_file.open("wb") as stream:
            stream.truncate(65 * 1024 * 1024)  # sparse: nothing is written
    expected = {
        "fifo": "is not a regular file",
        "folder": "is not a regular file",
        "not-utf8": "not UTF-8 text",
        "huge": f"is {65 * 1024 * 1024} bytes (expected at most 67108864 bytes)",
    }[kind]
    for command in (["plan"], ["plan", "--locked"], ["lock"]):
        assert run(manifest, *command) == 1
        err = capsys.readouterr().err
        assert err.startswith("error[invalid-lock]: 1 problem in the lock file"), err
        assert expected in err
