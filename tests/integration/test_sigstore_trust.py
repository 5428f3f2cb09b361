"""Sigstore end to end, against a private Sigstore instance built in-process (a CA issuing
short-lived certificates with an embedded SCT, a CT log, a transparency log with inclusion
proofs and signed checkpoints, written as a trusted_root.json): a published mirror's
statements are signed with it, and a manifest that trusts ONLY that identity and root
installs the spec (real relocated binaries, run); another identity, another issuer, the
public production root, or a broken part of the bundle is refused, naming each signature
and each key tried."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import run, write_manifest
from test_ed25519_trust import consumer, copy_mirror, published_v2, refused
from test_fixture_install import check_hello_works

from reconcile.trust.sidecar import SidecarSignature, merged, parse_sidecar, render_sidecar
from reconcile.trust.sign import GpgSigner, generate_key
from tests.trust.private_sigstore import PrivateSigstore

__all__ = ["published_v2"]  # a fixture, shared with the ed25519 tests

IDENTITY = "https://ci.example/site/stack/.ci/release.yml@refs/tags/v3.0"
ISSUER = "https://issuer.ci.example"


def sign_sidecars(mirror: Path, instance: PrivateSigstore, **options: str) -> int:
    """Add a Sigstore bundle over each sidecar's statement, as a CI job signing the mirror
    would (the ed25519 signatures stay)."""
    count = 0
    for path in sorted(mirror.rglob("*.reconcile-sig")):
        sidecar = parse_sidecar(path.read_bytes())
        statement = sidecar.statement.encode()
        bundle = instance.sign(
            statement,
            identity=options.get("identity", IDENTITY),
            issuer=options.get("issuer", ISSUER),
        )
        signature = SidecarSignature(scheme="sigstore", signature=bundle.decode())
        path.write_bytes(render_sidecar(merged(sidecar, statement, [signature])))
        count += 1
    return count


def sigstore_entry(root: Path | None, *, name: str = "ci", **fields: str) -> str:
    lines = [f'[[key]]\nname = "{name}"\nkind = "sigstore"']
    for field, value in {"identity": IDENTITY, "issuer": ISSUER, **fields}.items():
        lines.append(f'{field} = "{value}"')
    if root is not None:
        lines.append(f'trusted_root = "{root}"')
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def instance() -> PrivateSigstore:
    return PrivateSigstore()


@pytest.fixture
def signed(
    tmp_path: Path, published_v2: tuple[Path, str, str], instance: PrivateSigstore
) -> tuple[Path, Path]:
    """A copy of the published layout-2 mirror with Sigstore bundles in its sidecars, and the
    private instance's trusted_root.json."""
    source, _, _ = published_v2
    mirror = copy_mirror(source, tmp_path / "mirror")
    assert sign_sidecars(mirror, instance) == 3
    root = tmp_path / "private_root.json"
    root.write_text(instance.trusted_root_json())
    return mirror, root


def test_installs_trusted_only_through_a_sigstore_identity(
    tmp_path: Path, signed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    mirror, root = signed
    for sidecar in mirror.rglob("*.reconcile-sig"):
        schemes = [s["scheme"] for s in json.loads(sidecar.read_text())["signatures"]]
        assert schemes == ["ed25519", "sigstore"]
    manifest = consumer(tmp_path / "consumer", mirror, sigstore_entry(root))
    assert run(manifest, "apply", "--yes") == 0, capsys.readouterr().err
    check_hello_works(tmp_path / "consumer" / "opt")
    records = list((tmp_path / "consumer" / "opt" / ".reconcile" / "records").glob("*.json"))
    assert len(records) == 3
    assert {json.loads(r.read_text())["signer"] for r in records} == {"sigstore:ci"}
    capsys.readouterr()
    assert run(manifest, "drift") == 0, capsys.readouterr().out
    capsys.readouterr()
    assert run(manifest, "keys", "list", "--json") == 0
    (declared,) = json.loads(capsys.readouterr().out)["declared_keys"]
    assert declared["scheme"] == "sigstore" and declared["mirrors"] == ["published"]
    assert declared["identity"] == f"{IDENTITY} (issuer {ISSUER}, root {root})"
    assert len(declared["installs"]) == 3
    assert run(manifest, "keys", "export", "ci") != 0
    assert "error[nothing-to-export]: key 'ci' is a sigstore identity" in capsys.readouterr().err


def test_revoked_after_is_judged_by_the_log_time_of_each_signature(
    tmp_path: Path, signed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The bundles were logged at 2025-06-01T12:00:00Z. Revoked after a later moment, the
    installs stay valid however late reconcile verified them (and plan never asks to verify
    them again); revoked after an earlier moment, they are listed, and no mirror vouches."""
    mirror, root = signed
    manifest = consumer(tmp_path / "consumer", mirror, sigstore_entry(root))
    assert run(manifest, "apply", "--yes") == 0, capsys.readouterr().err
    records = list((tmp_path / "consumer" / "opt" / ".reconcile" / "records").glob("*.json"))
    assert {json.loads(r.read_text())["logged_at"] for r in records} == {"2025-06-01T12:00:00Z"}
    text = manifest.read_text()
    manifest.write_text(text + "revoked_after = 2025-06-01T12:00:01Z\n")
    capsys.readouterr()
    assert run(manifest, "plan") == 0
    out = capsys.readouterr().out
    assert "~ reverify" not in out and out.startswith("No changes")
    assert run(manifest, "drift") == 0, capsys.readouterr().out
    manifest.write_text(text + "revoked_after = 2025-06-01T12:00:00Z\n")
    capsys.readouterr()
    assert run(manifest, "plan") != 0
    captured = capsys.readouterr()
    out = captured.err + captured.out
    assert "error[no-valid-signer]" in out
    assert "signed (logged 2025-06-01T12:00:00Z) only by key 'ci', which is revoked after" in out
    assert "logged 2025-06-01T12:00:00+00:00" in out  # the mirror's bundle, refused too


def test_identity_glob_over_tags_installs(
    tmp_path: Path, signed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    mirror, root = signed
    entry = sigstore_entry(root).replace(
        f'identity = "{IDENTITY}"',
        'identity_glob = "https://ci.example/site/stack/.ci/release.yml@refs/tags/*"',
    )
    manifest = consumer(tmp_path / "consumer", mirror, entry)
    assert run(manifest, "apply", "--yes") == 0, capsys.readouterr().err
    check_hello_works(tmp_path / "consumer" / "opt")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"identity": IDENTITY.replace("v3.0", "v3.1")}, "SANs do not match"),
        ({"issuer": "https://another-issuer.example"}, "OIDCIssuer does not match"),
        (
            {"identity_glob": "https://ci.example/site/stack/.ci/release.yml@refs/heads/*"},
            "do not match the pattern",
        ),
    ],
    ids=["another-identity", "another-issuer", "glob-for-branches"],
)
def test_another_identity_or_issuer_is_refused(
    tmp_path: Path,
    signed: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    fields: dict[str, str],
    expected: str,
) -> None:
    mirror, root = signed
    entry = sigstore_entry(root, **fields)
    if "identity_glob" in fields:
        entry = entry.replace(f'identity = "{IDENTITY}"\n', "")
    text = refused(consumer(tmp_path / "c", mirror, entry), capsys)
    assert "requires 1 distinct trusted signature, found 0" in text
    assert "signature 2 (ed25519)" in text  # each signature found is listed
    assert "signature 3 (sigstore): " in text
    assert f"Sigstore signature by {IDENTITY} (issuer {ISSUER})" in text
    assert "key 'ci' (" in text and expected in text
    assert not list((tmp_path / "c").glob("opt/*/bin"))


def test_the_public_root_does_not_trust_a_private_instance(
    tmp_path: Path, signed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    mirror, _ = signed
    text = refused(consumer(tmp_path / "c", mirror, sigstore_entry(None)), capsys)
    assert "key 'ci' (" in text and "certificate chain" in text


def test_require_two_counts_sigstore_and_ed25519_as_distinct_signers(
    tmp_path: Path,
    signed: tuple[Path, Path],
    published_v2: tuple[Path, str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    mirror, root = signed
    _, ed25519_entry, _ = published_v2
    keys = sigstore_entry(root) + "\n" + ed25519_entry
    manifest = consumer(tmp_path / "two", mirror, keys)
    text = manifest.read_text().replace(
        'url = "' + str(mirror) + '"', 'url = "' + str(mirror) + '"\nrequire = 2'
    )
    manifest.write_text(text)
    assert run(manifest, "apply", "--yes") == 0, capsys.readouterr().err
    # Without the Sigstore bundles, one signer is missing and is named.
    for sidecar in mirror.rglob("*.reconcile-sig"):
        document = json.loads(sidecar.read_text())
        document["signatures"] = [s for s in document["signatures"] if s["scheme"] != "sigstore"]
        sidecar.write_text(json.dumps(document))
    manifest = consumer(tmp_path / "again", mirror, keys)
    manifest.write_text(text.replace(str(tmp_path / "two"), str(tmp_path / "again")))
    out = refused(manifest, capsys)
    assert "requires 2 distinct trusted signatures, found 1" in out
    assert "missing: ci" in out


def test_bundle_from_a_ca_outside_the_root_is_refused(
    tmp_path: Path,
    published_v2: tuple[Path, str, str],
    instance: PrivateSigstore,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Another private instance signs: same identity, same issuer, its own CA and logs."""
    source, _, _ = published_v2
    mirror = copy_mirror(source, tmp_path / "mirror")
    sign_sidecars(mirror, PrivateSigstore(name="impostor.example"))
    root = tmp_path / "root.json"
    root.write_text(instance.trusted_root_json())
    text = refused(consumer(tmp_path / "c", mirror, sigstore_entry(root)), capsys)
    assert "certificate chain" in text


@pytest.mark.parametrize("layout", [3])
def test_layout_3_mirror_installs_through_sigstore(
    tmp_path: Path,
    instance: PrivateSigstore,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    layout: int,
) -> None:
    home = tmp_path / "signing"
    home.mkdir(mode=0o700)
    fingerprint = generate_key(home, "Publisher", "publisher@example.invalid")
    monkeypatch.setenv("RECONCILE_SIGNING_HOME", str(home))
    monkeypatch.delenv("RECONCILE_ED25519_SECRET_KEY", raising=False)
    public = tmp_path / "publisher.pub"
    public.write_bytes(GpgSigner(gnupghome=home, fingerprint=fingerprint).public_key())
    folder = tmp_path / "publisher"
    folder.mkdir()
    assert run(folder / "reconcile.toml", "keys", "generate", "--kind", "ed25519", "site") == 0
    entry = capsys.readouterr().out
    extra = f"""
[[mirror]]
name = "published"
url = "published"
layout = {layout}

[[key]]
name = "publisher"
kind = "gpg"
fingerprint = "{fingerprint}"
file = "{public}"

{entry}
[[publish]]
specs = ["hello-app"]
mirror = "published"
key = ["publisher", "site"]
"""
    manifest = write_manifest(folder, padded_length=128, extra=extra)
    assert run(manifest, "apply", "--yes") == 0, capsys.readouterr().err
    mirror = folder / "published"
    assert sign_sidecars(mirror, instance) == 3
    root = tmp_path / "root.json"
    root.write_text(instance.trusted_root_json())
    consumer_manifest = consumer(tmp_path / "consumer", mirror, sigstore_entry(root))
    assert run(consumer_manifest, "apply", "--yes") == 0, capsys.readouterr().err
    check_hello_works(tmp_path / "consumer" / "opt")
