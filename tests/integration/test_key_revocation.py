"""Key rotation end to end: installs verified by a key that is then revoked (or removed) are
re-verified from a mirror that also carries a signature by a declared key that still counts;
their prefixes are not touched, their records name the new signer, and drift is clean."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jsonschema
import pytest
from conftest import REPO
from support import run
from test_ed25519_trust import (  # noqa: F401  (published_v2 is a fixture)
    HELLO_SIDECAR,
    consumer,
    copy_mirror,
    published_v2,
)
from test_fixture_install import check_hello_works

PLAN_SCHEMA = json.loads((REPO / "schemas" / "plan.schema.json").read_text())


def records(root: Path) -> dict[str, dict[str, object]]:
    found = (root / ".reconcile" / "records").glob("*.json")
    return {path.stem: json.loads(path.read_text()) for path in found}


def prefix_state(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under the install tree (records aside) with its inode and mtime."""
    return {
        str(path.relative_to(root)): (path.lstat().st_ino, path.lstat().st_mtime_ns)
        for path in root.rglob("*")
        if ".reconcile" not in path.parts
    }


@pytest.mark.parametrize("how", ["revoked = true", "removed"])
def test_revoking_the_signer_re_verifies_from_the_other_signature(
    tmp_path: Path,
    published_v2: tuple[Path, str, str],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    how: str,
) -> None:
    source, ed25519_entry, gpg_entry = published_v2
    # Key A (GnuPG, "publisher") and key B (ed25519, "site") are declared; the envelope's
    # GnuPG signature is the one recorded.
    manifest = consumer(tmp_path / "c", source, gpg_entry + "\n" + ed25519_entry)
    root = tmp_path / "c" / "opt"
    assert run(manifest, "apply", "--yes") == 0, capsys.readouterr().err
    before = records(root)
    assert len(before) == 3
    (fingerprint,) = {r["signer"] for r in before.values()}
    assert isinstance(fingerprint, str) and not fingerprint.startswith("ed25519:")
    files = prefix_state(root)

    if how == "removed":
        manifest.write_text(manifest.read_text().replace(gpg_entry, ""))
    else:
        manifest.write_text(manifest.read_text().replace(gpg_entry, gpg_entry + "revoked = true\n"))
    capsys.readouterr()
    assert run(manifest, "drift") != 0 or how == "removed"
    capsys.readouterr()

    assert run(manifest, "plan", "--detailed-exitcode") == 2
    shown = capsys.readouterr().out
    assert shown.count("~ reverify ") == 3, shown
    assert "~ reverify hello-app@3.0/d7r6xmz (from published, signed by ed25519:site)" in shown
    assert "over the same tarball" in shown
    assert "3 to re-verify" in shown
    assert run(manifest, "plan", "--json") == 0
    planned = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator(PLAN_SCHEMA).validate(planned)
    assert planned["summary"]["reverify"] == 3

    assert run(manifest, "apply", "--yes") == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "3 re-verified" in out
    after = records(root)
    for dag_hash, record in after.items():
        assert record["signer"] == "ed25519:site"
        assert isinstance(record["verified_at"], str)
        assert record["installed_at"] == before[dag_hash]["installed_at"]
        assert record["entries"] == before[dag_hash]["entries"]
        assert record["tarball_sha256"] == before[dag_hash]["tarball_sha256"]
    # The prefixes were not touched: same inodes and times, and the binaries still run.
    assert prefix_state(root) == files
    check_hello_works(root)

    assert run(manifest, "drift") == 0, capsys.readouterr().out
    capsys.readouterr()
    assert run(manifest, "plan", "--detailed-exitcode") == 0
    assert "No changes" in capsys.readouterr().out


def test_a_saved_reverify_plan_is_stale_when_the_record_changed(
    tmp_path: Path,
    published_v2: tuple[Path, str, str],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    source, ed25519_entry, gpg_entry = published_v2
    manifest = consumer(tmp_path / "c", source, gpg_entry + "\n" + ed25519_entry)
    assert run(manifest, "apply", "--yes") == 0, capsys.readouterr().err
    manifest.write_text(manifest.read_text().replace(gpg_entry, gpg_entry + "revoked = true\n"))
    saved = tmp_path / "plan.json"
    assert run(manifest, "plan", "--out", str(saved)) == 0
    actions = json.loads(saved.read_text())["actions"]
    assert {a["action"] for a in actions} == {"reverify"}
    # Someone rewrites a record meanwhile (as a re-verification would): the plan is stale.
    record_file = next((tmp_path / "c" / "opt" / ".reconcile" / "records").glob("*.json"))
    record = json.loads(record_file.read_text())
    record["verified_at"] = "2030-01-01T00:00:00Z"
    record_file.write_text(json.dumps(record))
    capsys.readouterr()
    assert run(manifest, "apply", str(saved)) == 1
    err = capsys.readouterr().err
    assert "error[stale-plan]" in err and "Traceback" not in err


@pytest.mark.parametrize("change", ["signs another tarball", "sidecar removed"])
def test_apply_verifies_again_and_refuses_what_changed_since_the_plan(
    tmp_path: Path,
    published_v2: tuple[Path, str, str],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    change: str,
) -> None:
    """Between plan and apply the mirror changes: apply fetches and verifies the metadata
    again, so it neither records a signer for a tarball other than the installed one nor
    records one whose signature is gone; nothing is written."""
    from reconcile.apply.events import SilentReporter
    from reconcile.apply.executor import apply_plan
    from reconcile.engine import observe_and_plan
    from reconcile.errors import ReconcileError
    from reconcile.manifest.load import load_manifest
    from reconcile.publish.sidecars import sign_stored_package
    from reconcile.spack.spec import parse_node
    from reconcile.transport.registry import TransportPool, endpoints_of
    from reconcile.trust.ed25519 import Ed25519SecretKey, Ed25519StatementSigner

    source, ed25519_entry, gpg_entry = published_v2
    mirror = copy_mirror(source, tmp_path / "m")
    manifest = consumer(tmp_path / "c", mirror, gpg_entry + "\n" + ed25519_entry)
    root = tmp_path / "c" / "opt"
    assert run(manifest, "apply", "--yes") == 0, capsys.readouterr().err
    manifest.write_text(manifest.read_text().replace(gpg_entry, gpg_entry + "revoked = true\n"))
    before = records(root)
    loaded = load_manifest(manifest)
    with TransportPool(endpoints_of(loaded)) as pool:
        plan = observe_and_plan(loaded, pool)
        assert [a.kind for a in plan.actions] == ["reverify"] * 3
        hello = next(r for r in before.values() if r["name"] == "hello-app")
        sidecar = next(mirror.rglob(HELLO_SIDECAR))
        if change == "sidecar removed":
            sidecar.unlink()
        else:
            spec = next(mirror.rglob("*hello-app-3.0-*.spec.json.sig"))
            spec.write_text(spec.read_text().replace(str(hello["tarball_sha256"]), "0" * 64))
            secret = source.parent.parent / "signing" / "ed25519" / "site.secret"
            signer = Ed25519StatementSigner(Ed25519SecretKey.parse(secret.read_text().strip()))
            tarball = next(mirror.rglob("*hello-app-3.0-*.spack"))
            sign_stored_package(
                mirror,
                node=parse_node(hello["spec"]),
                layout=2,
                tarball_sha256="0" * 64,
                tarball_size=tarball.stat().st_size,
                signers=[signer],
            )
        with pytest.raises(ReconcileError) as refused_apply:
            apply_plan(plan, loaded, pool, SilentReporter())
    message = refused_apply.value.message
    assert "cannot re-verify hello-app@3.0/d7r6xmz" in message
    if change == "sidecar removed":
        assert "no sidecar signatures" in message
    else:
        assert "now signs another tarball" in message
    assert records(root) == before  # nothing recorded, not even for the other two


def test_a_signature_that_counts_over_another_tarball_reinstalls(
    tmp_path: Path,
    published_v2: tuple[Path, str, str],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """After the old key is revoked, the mirror's new signature vouches for a re-compressed
    hello-app tarball (other bytes, same files): the install is not re-verified (its tarball
    is not the one vouched for) but re-staged from the new tarball at the same prefix."""
    import gzip

    from reconcile.publish.sidecars import sign_stored_package
    from reconcile.spack.spec import parse_node
    from reconcile.trust.ed25519 import Ed25519SecretKey, Ed25519StatementSigner

    source, ed25519_entry, gpg_entry = published_v2
    mirror = copy_mirror(source, tmp_path / "m")
    manifest = consumer(tmp_path / "c", mirror, gpg_entry + "\n" + ed25519_entry)
    root = tmp_path / "c" / "opt"
    assert run(manifest, "apply", "--yes") == 0, capsys.readouterr().err
    before = records(root)
    hello_hash, hello = next((h, r) for h, r in before.items() if r["name"] == "hello-app")

    tarball = next(mirror.rglob("*hello-app-3.0-*.spack"))
    tarball.write_bytes(gzip.compress(gzip.decompress(tarball.read_bytes()), mtime=1))
    new_sha = hashlib.sha256(tarball.read_bytes()).hexdigest()
    assert new_sha != hello["tarball_sha256"]
    spec = next(mirror.rglob("*hello-app-3.0-*.spec.json.sig"))
    spec.write_text(spec.read_text().replace(str(hello["tarball_sha256"]), new_sha))
    secret = source.parent.parent / "signing" / "ed25519" / "site.secret"
    sign_stored_package(
        mirror,
        node=parse_node(hello["spec"]),
        layout=2,
        tarball_sha256=new_sha,
        tarball_size=tarball.stat().st_size,
        signers=[Ed25519StatementSigner(Ed25519SecretKey.parse(secret.read_text().strip()))],
    )
    manifest.write_text(manifest.read_text().replace(gpg_entry, gpg_entry + "revoked = true\n"))

    capsys.readouterr()
    assert run(manifest, "plan") == 0
    shown = capsys.readouterr().out
    assert "~ repair hello-app@3.0/d7r6xmz" in shown
    assert "but over another tarball: reinstalled" in shown
    assert shown.count("~ reverify ") == 2  # its dependencies: same tarballs, new signature

    assert run(manifest, "apply", "--yes") == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "1 repaired" in out and "2 re-verified" in out
    after = records(root)
    assert after[hello_hash]["tarball_sha256"] == new_sha
    assert after[hello_hash]["installed_at"] == hello["installed_at"]
    assert {r["signer"] for r in after.values()} == {"ed25519:site"}
    assert all(isinstance(r["verified_at"], str) for r in after.values())
    check_hello_works(root)
    assert run(manifest, "drift") == 0, capsys.readouterr().out
