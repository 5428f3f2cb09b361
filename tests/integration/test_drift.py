"""``reconcile drift``: a read-only audit of real installs from the signed fixture cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import REPO
from support import installed_prefix, run, write_manifest

from reconcile.state.lock import install_root_lock

SCHEMA = json.loads((REPO / "schemas" / "drift.schema.json").read_text())


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    manifest = write_manifest(tmp_path)
    assert run(manifest, "apply", "--yes") == 0
    return manifest


def drift(manifest: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = run(manifest, "drift", *args)
    return code, capsys.readouterr().out


def findings(
    manifest: Path, capsys: pytest.CaptureFixture[str], *args: str
) -> set[tuple[str, str]]:
    """(kind, path relative to the install root) of every finding, from --json."""
    code, out = drift(manifest, capsys, "--json", *args)
    document = json.loads(out)
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    assert code == (0 if document["clean"] else 2)
    root = str(manifest.parent / "opt") + "/"
    return {
        (f["kind"], f["path"].removeprefix(root))
        for resource in document["resources"]
        for f in resource["findings"]
    }


def rel(manifest: Path, path: Path) -> str:
    return str(path.relative_to(manifest.parent / "opt"))


def test_a_fresh_install_has_no_drift(installed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = drift(installed, capsys)
    assert code == 0
    assert out.startswith("No drift: ")
    assert "fast check" in out
    code, out = drift(installed, capsys, "--check-contents")
    assert code == 0
    assert "contents check: every file hashed" in out


def test_an_overwritten_binary_is_reported(
    installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = installed_prefix(installed.parent / "opt", "hello-app") / "bin" / "hello-app"
    binary.write_bytes(b"garbage\n")
    code, out = drift(installed, capsys)
    assert code == 2
    assert "modified" in out and "bin/hello-app" in out
    assert "re-stages the prefix from its verified tarball" in out
    assert findings(installed, capsys) == {("modified", rel(installed, binary))}


def test_same_size_rewrite_is_found_by_hashing_when_mtime_moved(
    installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = installed_prefix(installed.parent / "opt", "hello-app") / "bin" / "hello-app"
    data = bytearray(binary.read_bytes())
    data[-1] ^= 0xFF
    binary.write_bytes(bytes(data))
    assert findings(installed, capsys) == {("modified", rel(installed, binary))}


def test_fast_mode_trusts_size_and_mtime_and_contents_mode_does_not(
    installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = installed_prefix(installed.parent / "opt", "hello-app") / "bin" / "hello-app"
    before = binary.stat()
    data = bytearray(binary.read_bytes())
    data[-1] ^= 0xFF
    binary.write_bytes(bytes(data))
    os.utime(binary, ns=(before.st_atime_ns, before.st_mtime_ns))  # a forged mtime
    assert findings(installed, capsys) == set()
    assert findings(installed, capsys, "--check-contents") == {("modified", rel(installed, binary))}


def test_every_kind_of_prefix_drift(installed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prefix = installed_prefix(installed.parent / "opt", "hello-app")
    files = sorted(p for p in prefix.rglob("*") if p.is_file() and not p.is_symlink())
    links = sorted(p for p in prefix.rglob("*") if p.is_symlink())
    folders = sorted(p for p in prefix.rglob("*") if p.is_dir() and not p.is_symlink())
    assert files and links and folders
    gone, retyped = files[0], files[1]
    gone.unlink()
    retyped.unlink()
    retyped.symlink_to("elsewhere")
    relinked = links[0]
    relinked.unlink()
    relinked.symlink_to("/etc/passwd")
    folders[0].chmod(0o700)
    (prefix / "extra").mkdir()
    (prefix / "extra" / "inside").write_text("x")
    (prefix / "stray.txt").write_text("x")
    assert findings(installed, capsys) == {
        ("missing", rel(installed, gone)),
        ("type", rel(installed, retyped)),
        ("link-target", rel(installed, relinked)),
        ("mode", rel(installed, folders[0])),
        ("added", rel(installed, prefix / "extra")),  # not its content again
        ("added", rel(installed, prefix / "stray.txt")),
    }


def test_group_drift_when_the_manifest_sets_a_group(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path, permissions={"group": "daemon", "read": "group"})
    assert run(manifest, "apply", "--yes") == 0
    prefix = installed_prefix(tmp_path / "opt", "hello-app")
    target = prefix / "bin"
    os.chown(target, -1, 0, follow_symlinks=False)
    assert findings(manifest, capsys) == {("group", rel(manifest, target))}


def test_missing_prefix_undeclared_and_unpinned(
    installed: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = installed.parent / "opt"
    app = installed_prefix(root, "hello-app")
    app.rename(app.with_name(app.name + ".aside"))
    assert ("prefix-missing", rel(installed, app)) in findings(installed, capsys)
    app.with_name(app.name + ".aside").rename(app)

    # the manifest no longer asks for anything that is installed, and pins another key
    text = installed.read_text().replace('specs = ["hello-app"]', 'specs = ["zlib"]')
    text = text.replace("E4A1C447981D70AB30BD8B09643A47B4E5E41176", "A" * 40)
    installed.write_text(text)
    found = findings(installed, capsys)
    kinds = {kind for kind, _ in found}
    assert kinds == {"undeclared", "unpinned-signer", "not-installed"}
    undeclared = {path for kind, path in found if kind == "undeclared"}
    records = [json.loads(p.read_text()) for p in (root / ".reconcile/records").glob("*.json")]
    assert undeclared == {str(Path(r["prefix"]).relative_to(root)) for r in records}


def test_a_dependency_removed_by_hand_is_reported(
    installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = installed.parent / "opt"
    records = {
        json.loads(p.read_text())["name"]: p for p in (root / ".reconcile/records").glob("*.json")
    }
    dependency = next(name for name in records if name != "hello-app")
    records[dependency].unlink()
    assert ("dependency-missing", rel(installed, installed_prefix(root, "hello-app"))) in findings(
        installed, capsys
    )


def test_leftovers_of_interrupted_runs_are_notices(
    installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = installed.parent / "opt" / ".reconcile"
    (state / "staging" / "run-1-dead").mkdir(parents=True)
    (state / "records" / ".abc.123.tmp").write_text("{")
    code, out = drift(installed, capsys)
    assert code == 2
    assert "notice" in out and "leftover" in out
    assert findings(installed, capsys) == {
        ("leftover", ".reconcile/staging/run-1-dead"),
        ("leftover", ".reconcile/records/.abc.123.tmp"),
    }


def test_junit_has_one_case_per_resource_and_a_failure_per_drift(
    installed: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    binary = installed_prefix(installed.parent / "opt", "hello-app") / "bin" / "hello-app"
    binary.write_bytes(b"x")
    report = tmp_path / "drift.xml"
    code, _ = drift(installed, capsys, "--junit", str(report))
    assert code == 2
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    records = list((installed.parent / "opt/.reconcile/records").glob("*.json"))
    assert len(cases) == len(records) + 1  # every prefix and the install root
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert len(failed) == 1 and failed[0] is not None and failed[0].startswith("spec:hello-app@")
    assert suite.get("failures") == "1"


def test_drift_takes_no_lock(installed: Path) -> None:
    """An apply holding the install root's lock does not block or fail an audit."""
    with install_root_lock(installed.parent / "opt"):
        done = subprocess.run(
            [sys.executable, "-m", "reconcile", "-m", str(installed), "drift"],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert "No drift" in done.stdout


def test_drift_never_writes(installed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = installed.parent / "opt"
    prefix = installed_prefix(root, "hello-app")
    (prefix / "bin" / "hello-app").write_bytes(b"x")

    def state() -> dict[str, Any]:
        return {
            str(p): (p.lstat().st_mtime_ns, p.lstat().st_mode) for p in [root, *root.rglob("*")]
        }

    before = state()
    drift(installed, capsys, "--check-contents")
    assert state() == before


def test_drift_without_an_install_table_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "reconcile.toml"
    manifest.write_text('version = 1\n\n[[mirror]]\nname = "m"\nurl = "m"\nsigned = false\n')
    assert run(manifest, "drift") == 1
    assert "nothing to audit" in capsys.readouterr().err


# --- source mirrors, mirror permissions, cache roots -------------------------------------------


def source_manifest(folder: Path) -> Path:
    from test_source_mirror_cli import source_manifest as make

    return make(folder)


def test_source_mirror_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = source_manifest(tmp_path)
    mirror = tmp_path / "sources"
    assert drift(manifest, capsys)[0] == 2  # nothing fetched yet: both archives missing
    assert run(manifest, "apply", "--yes") == 0
    assert findings(manifest, capsys) == set()
    archive = next((mirror / "_source-cache" / "archive").rglob("*.tar.gz"))
    link = mirror / "greetlib" / "greetlib-2.1.tar.gz"
    link.unlink()
    link.symlink_to("../elsewhere.tar.gz")
    data = bytearray(archive.read_bytes())
    data[100] ^= 0xFF
    archive.write_bytes(bytes(data))  # same size, new mtime: fast mode hashes it
    found = {
        (kind, str(Path(path).relative_to(mirror))) for kind, path in findings(manifest, capsys)
    }
    assert found == {
        ("source-archive", str(archive.relative_to(mirror))),
        ("source-link", "greetlib/greetlib-2.1.tar.gz"),
    }
    assert run(manifest, "apply", "--yes") == 0
    assert findings(manifest, capsys) == set()


def test_mirror_permission_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = source_manifest(tmp_path)
    permissions = '\n[mirror.permissions]\nread = "world"\nwrite = "user"\n'
    manifest.write_text(
        manifest.read_text().replace('url = "sources"\n', 'url = "sources"\n' + permissions, 1)
    )
    assert run(manifest, "apply", "--yes") == 0
    assert findings(manifest, capsys) == set()
    folder = tmp_path / "sources" / "greetlib"
    folder.chmod(0o777)
    assert findings(manifest, capsys) == {("mode", str(folder))}


def test_corrupt_cache_blob_and_cache_leftovers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path, extra='\n[[cache]]\nroot = "cache"\n')
    assert run(manifest, "apply", "--yes") == 0
    assert findings(manifest, capsys) == set()
    blobs = sorted(p for p in (tmp_path / "cache").rglob("*") if p.is_file() and len(p.name) == 64)
    assert blobs
    data = bytearray(blobs[0].read_bytes())
    data[10] ^= 0xFF
    blobs[0].write_bytes(bytes(data))  # same size: only --check-contents sees it
    assert findings(manifest, capsys) == set()
    assert findings(manifest, capsys, "--check-contents") == {("corrupt-blob", str(blobs[0]))}
    blobs[1].write_bytes(b"short")
    assert ("corrupt-blob", str(blobs[1])) in findings(manifest, capsys)


def test_drift_ignore_globs_leave_paths_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(
        tmp_path, extra='\n[drift]\nignore = ["**/__pycache__/**", "*.log"]\n'
    )
    assert run(manifest, "apply", "--yes") == 0
    prefix = installed_prefix(tmp_path / "opt", "hello-app")
    (prefix / "bin" / "__pycache__").mkdir()
    (prefix / "bin" / "__pycache__" / "x.pyc").write_bytes(b"x")
    (prefix / "run.log").write_text("x")
    (prefix / "bin" / "run.log").write_text("x")  # '*' stays within one folder
    assert findings(manifest, capsys) == {("added", rel(manifest, prefix / "bin" / "run.log"))}


@pytest.mark.parametrize(
    ("patterns", "message"),
    [
        ('["/etc/**"]', "is absolute"),
        ('["../x"]', "'..' component"),
        ('[""]', "the glob is empty"),
        ('"*.log"', "expected an array of path globs"),
    ],
)
def test_bad_ignore_globs_are_located_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], patterns: str, message: str
) -> None:
    manifest = write_manifest(tmp_path, extra=f"\n[drift]\nignore = {patterns}\n")
    assert run(manifest, "validate") == 1
    err = capsys.readouterr().err
    assert f"{manifest}:" in err and "drift.ignore" in err and message in err


# --- binary mirrors this manifest writes ----------------------------------------------------


@pytest.mark.parametrize("layout", [2, 3])
def test_published_mirror_drift(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    layout: int,
) -> None:
    from test_publish_roundtrip import publishing_manifest

    from reconcile.trust.sign import GpgSigner, generate_key

    home = tmp_path / "signing"
    home.mkdir(mode=0o700)
    fingerprint = generate_key(home, "Publisher", "publisher@example.invalid")
    monkeypatch.setenv("RECONCILE_SIGNING_HOME", str(home))
    public = tmp_path / "publisher.pub"
    public.write_bytes(GpgSigner(gnupghome=home, fingerprint=fingerprint).public_key())
    manifest = publishing_manifest(tmp_path / "p", fingerprint, public, layout)

    def mirror_findings(*args: str) -> set[tuple[str, str]]:
        _, out = drift(manifest, capsys, "--json", *args)
        document = json.loads(out)
        jsonschema.Draft202012Validator(SCHEMA).validate(document)
        mirror_audit = next(r for r in document["resources"] if r["resource"] == "mirror:published")
        assert mirror_audit["skipped"] is None
        return {(f["kind"], f["path"]) for f in mirror_audit["findings"]}

    assert ("mirror-index-missing", str(tmp_path / "p" / "published")) in mirror_findings()
    assert run(manifest, "apply", "--yes") == 0
    assert mirror_findings() == set()
    assert mirror_findings("--check-contents") == set()

    mirror = tmp_path / "p" / "published"
    tarballs = sorted(
        p
        for p in mirror.rglob("*")
        if p.is_file()
        and (p.suffix == ".spack" or ("blobs" in p.parts and p.stat().st_size > 4096))
    )
    assert len(tarballs) >= 2
    corrupt, gone = tarballs[0], tarballs[1]
    data = bytearray(corrupt.read_bytes())
    data[200] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    gone.unlink()
    stray = (mirror / "build_cache" if layout == 2 else mirror / "blobs" / "sha256" / "00") / (
        "stray.spack" if layout == 2 else "00" * 32
    )
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"x")
    found = mirror_findings("--check-contents")
    assert found == {
        ("mirror-file-corrupt", str(corrupt)),
        ("mirror-file-missing", str(gone)),
        ("mirror-file-unlisted", str(stray)),
    }
    # the fast check sees what a stat shows; the same-size corruption needs the contents check
    fast = mirror_findings()
    assert ("mirror-file-missing", str(gone)) in fast
    assert ("mirror-file-corrupt", str(corrupt)) not in fast


def test_a_skipped_resource_is_never_called_clean() -> None:
    """Remote mirrors are skipped (drift reads local mirrors): every output says so."""
    from reconcile.drift.findings import DriftReport, ResourceAudit
    from reconcile.drift.render import render_junit, render_text, report_document

    report = DriftReport(
        mode="fast",
        audits=(
            ResourceAudit(resource="install-root", location="/opt", checked=3),
            ResourceAudit(
                resource="mirror:remote",
                location="s3://bucket/cache",
                skipped="a remote mirror: drift reads local (file://) mirrors only",
            ),
        ),
    )
    text = render_text(report)
    assert "skipped: a remote mirror" in text
    assert text.splitlines()[-1].startswith("No drift: 1 resource checked; 1 skipped")
    document = report_document(report)
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    assert [r["skipped"] for r in document["resources"]] == [
        None,
        "a remote mirror: drift reads local (file://) mirrors only",
    ]
    suite = ET.fromstring(render_junit(report)).find("testsuite")
    assert suite is not None and suite.get("skipped") == "1"


def test_a_record_with_an_unreadable_spec_is_a_clear_error(
    installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = next((installed.parent / "opt/.reconcile/records").glob("*.json"))
    document = json.loads(record.read_text())
    document["spec"] = {"name": "x"}  # no version, no arch
    record.write_text(json.dumps(document))
    capsys.readouterr()
    assert run(installed, "drift") == 1
    err = capsys.readouterr().err
    assert "error[corrupt-record]" in err and "cannot be read" in err
    assert run(installed, "list") == 1
    assert "error[corrupt-record]" in capsys.readouterr().err


# --- a hostile co-tenant: drift reads only regular files, never through links ---------------


def test_a_prefix_swapped_for_a_link_is_not_walked(
    installed: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    prefix = installed_prefix(installed.parent / "opt", "hello-app")
    elsewhere = tmp_path / "elsewhere"
    prefix.rename(elsewhere)
    prefix.symlink_to(elsewhere)
    found = findings(installed, capsys)
    assert found == {("type", rel(installed, prefix))}


def test_files_swapped_for_fifos_and_device_links_do_not_hang_drift(
    installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = installed_prefix(installed.parent / "opt", "hello-app")
    binary = prefix / "bin" / "hello-app"
    binary.unlink()
    os.mkfifo(binary)  # opening it for reading would block for ever
    found = findings(installed, capsys, "--check-contents")
    assert ("type", rel(installed, binary)) in found


@pytest.mark.parametrize("layout", [2, 3])
def test_mirror_metadata_swapped_for_dev_zero_is_refused_quickly(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    layout: int,
) -> None:
    from test_publish_roundtrip import publishing_manifest

    from reconcile.trust.sign import GpgSigner, generate_key

    home = tmp_path / "signing"
    home.mkdir(mode=0o700)
    fingerprint = generate_key(home, "Publisher", "publisher@example.invalid")
    monkeypatch.setenv("RECONCILE_SIGNING_HOME", str(home))
    public = tmp_path / "publisher.pub"
    public.write_bytes(GpgSigner(gnupghome=home, fingerprint=fingerprint).public_key())
    manifest = publishing_manifest(tmp_path / "p", fingerprint, public, layout)
    assert run(manifest, "apply", "--yes") == 0
    mirror = tmp_path / "p" / "published"
    metadata = sorted(
        p for p in mirror.rglob("*") if p.name.endswith((".spec.json.sig", ".spec.manifest.json"))
    )
    metadata[0].unlink()
    metadata[0].symlink_to("/dev/zero")
    code, out = drift(manifest, capsys, "--json", "--check-contents")
    assert code == 2
    document = json.loads(out)
    mirror_audit = next(r for r in document["resources"] if r["resource"] == "mirror:published")
    assert str(metadata[0]) in {f["path"] for f in mirror_audit["findings"]}
