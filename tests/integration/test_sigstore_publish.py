"""Publishing with a sigstore key: `[[publish]] key` names it, the identity token comes from
$SIGSTORE_ID_TOKEN, and sigstore-python's own signing clients talk to small Fulcio and Rekor
stand-ins on 127.0.0.1 (backed by a private instance). The published mirror then installs
with only the Sigstore identity trusted; a token for another identity publishes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import run, write_manifest
from test_ed25519_trust import consumer, published_v2  # noqa: F401  (a fixture)
from test_fixture_install import check_hello_works

from reconcile.trust.sign import GpgSigner, generate_key
from tests.trust.private_sigstore import PrivateSigstore
from tests.trust.sigstore_services import Services, running

IDENTITY = "https://ci.example/site/stack/.ci/release.yml@refs/tags/v3.0"
ISSUER = "https://issuer.ci.example"


@pytest.fixture
def services() -> Iterator[Services]:
    with running(PrivateSigstore()) as started:
        yield started


def sigstore_entry(root: Path, config: Path | None = None) -> str:
    text = (
        f'[[key]]\nname = "ci"\nkind = "sigstore"\nidentity = "{IDENTITY}"\n'
        f'issuer = "{ISSUER}"\ntrusted_root = "{root}"\n'
    )
    return text + (f'signing_config = "{config}"\n' if config is not None else "")


def publisher(tmp_path: Path, services: Services, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A manifest publishing hello-app's closure signed by a gpg key and the sigstore key."""
    home = tmp_path / "signing"
    home.mkdir(mode=0o700)
    fingerprint = generate_key(home, "Publisher", "publisher@example.invalid")
    monkeypatch.setenv("RECONCILE_SIGNING_HOME", str(home))
    public = tmp_path / "publisher.pub"
    public.write_bytes(GpgSigner(gnupghome=home, fingerprint=fingerprint).public_key())
    root = tmp_path / "private_root.json"
    root.write_text(services.instance.trusted_root_json())
    config = tmp_path / "signing_config.json"
    config.write_text(json.dumps(services.signing_config()))
    extra = f"""
[[mirror]]
name = "published"
url = "published"
layout = 3

[[key]]
name = "publisher"
kind = "gpg"
fingerprint = "{fingerprint}"
file = "{public}"

{sigstore_entry(root, config)}
[[publish]]
specs = ["hello-app"]
mirror = "published"
key = ["publisher", "ci"]
"""
    folder = tmp_path / "publisher"
    folder.mkdir()
    return write_manifest(folder, padded_length=128, extra=extra)


def test_publish_signs_with_sigstore_and_installs_with_only_that_identity(
    tmp_path: Path,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    manifest = publisher(tmp_path, services, monkeypatch)
    monkeypatch.setenv("SIGSTORE_ID_TOKEN", services.token(IDENTITY, ISSUER))
    assert run(manifest, "apply", "--yes") == 0, capsys.readouterr().err
    assert "3 published" in capsys.readouterr().out
    # One certificate for the run, one log entry per statement.
    assert services.requests == ["POST /api/v2/signingCert -> 201"] + 3 * [
        "POST /api/v1/log/entries -> 201"
    ]
    mirror = manifest.parent / "published"
    sidecars = sorted(mirror.rglob("*.reconcile-sig"))
    assert len(sidecars) == 3
    for sidecar in sidecars:
        [signature] = json.loads(sidecar.read_text())["signatures"]
        assert (signature["scheme"], signature["key"]) == ("sigstore", "ci")
        assert "bundle" in json.loads(signature["signature"])["mediaType"]
    # A consumer that trusts only the identity, under the private root, installs it.
    entry = sigstore_entry(tmp_path / "private_root.json")
    consumer_manifest = consumer(tmp_path / "consumer", mirror, entry)
    assert run(consumer_manifest, "apply", "--yes") == 0, capsys.readouterr().err
    check_hello_works(tmp_path / "consumer" / "opt")
    records = (tmp_path / "consumer" / "opt" / ".reconcile" / "records").glob("*.json")
    assert {json.loads(r.read_text())["signer"] for r in records} == {"sigstore:ci"}
    # Publishing again finds every spec signed: nothing to do, nothing logged.
    capsys.readouterr()
    assert run(manifest, "apply", "--yes") == 0
    assert len(services.requests) == 4


def test_a_token_for_another_identity_publishes_nothing(
    tmp_path: Path,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    manifest = publisher(tmp_path, services, monkeypatch)
    other = IDENTITY.replace("refs/tags/v3.0", "refs/heads/feature")
    monkeypatch.setenv("SIGSTORE_ID_TOKEN", services.token(other, ISSUER))
    assert run(manifest, "apply", "--yes") != 0
    captured = capsys.readouterr()
    text = captured.err + captured.out
    assert "Traceback" not in text
    assert "error[sigstore-signing-failed]" in text
    assert f"the identity token is for {other} (issuer {ISSUER})" in text
    assert "nothing was published" in text
    # The certificate was asked for, nothing was logged, nothing reached the mirror.
    assert services.requests == ["POST /api/v2/signingCert -> 201"]
    mirror = manifest.parent / "published"
    assert not mirror.exists() or not [p for p in mirror.rglob("*") if p.is_file()]


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (None, "$SIGSTORE_ID_TOKEN is not set"),
        ("not a token", "is not an identity token reconcile can sign with"),
        ("wrong-audience", "no signing certificate"),
    ],
)
def test_a_missing_or_bad_token_is_refused_before_publishing(
    tmp_path: Path,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    token: str | None,
    expected: str,
) -> None:
    manifest = publisher(tmp_path, services, monkeypatch)
    if token is None:
        monkeypatch.delenv("SIGSTORE_ID_TOKEN", raising=False)
    elif token == "wrong-audience":  # sigstore-python refuses it before asking the CA
        monkeypatch.setenv("SIGSTORE_ID_TOKEN", services.token(IDENTITY, ISSUER, audience="x"))
        expected = "is not an identity token reconcile can sign with"
    else:
        monkeypatch.setenv("SIGSTORE_ID_TOKEN", token)
    assert run(manifest, "apply", "--yes") != 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert expected in captured.err + captured.out
    mirror = manifest.parent / "published"
    assert not mirror.exists() or not [p for p in mirror.rglob("*") if p.is_file()]


def test_a_private_root_without_signing_config_cannot_sign(
    tmp_path: Path,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    manifest = publisher(tmp_path, services, monkeypatch)
    text = manifest.read_text()
    config_line = next(line for line in text.splitlines() if line.startswith("signing_config"))
    manifest.write_text(text.replace(config_line + "\n", ""))
    monkeypatch.setenv("SIGSTORE_ID_TOKEN", services.token(IDENTITY, ISSUER))
    assert run(manifest, "apply", "--yes") != 0
    out = capsys.readouterr().err
    assert "declares its own trusted_root but no signing_config" in out
    assert services.requests == []


def test_a_bundle_that_does_not_verify_is_never_written(
    tmp_path: Path,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The signing config sends log entries to another instance's log: the certificate is
    right, the bundle is not, and it is refused before it reaches a sidecar. (The package
    itself was already written: the next apply signs it again.)"""
    manifest = publisher(tmp_path, services, monkeypatch)
    with running(PrivateSigstore(name="another.example")) as other:
        config = services.signing_config()
        config["rekorTlogUrls"][0]["url"] = other.url
        (tmp_path / "signing_config.json").write_text(json.dumps(config))
        monkeypatch.setenv("SIGSTORE_ID_TOKEN", services.token(IDENTITY, ISSUER))
        assert run(manifest, "apply", "--yes") != 0
    out = capsys.readouterr().err
    assert "error[sigstore-signing-failed]" in out
    assert "does not verify under that key" in out and "invalid log entry" in out
    mirror = manifest.parent / "published"
    assert not list(mirror.rglob("*.reconcile-sig"))
    # With the right log, the next apply converges: what is there is signed.
    (tmp_path / "signing_config.json").write_text(json.dumps(services.signing_config()))
    assert run(manifest, "apply", "--yes") == 0, capsys.readouterr().err
    assert len(list(mirror.rglob("*.reconcile-sig"))) == 3


def test_sync_sign_with_a_sigstore_key_signs_the_copied_sidecars(
    tmp_path: Path,
    services: Services,
    published_v2: tuple[Path, str, str],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A mirror filled by sync with ``sign_with = ["ci"]``: each copied spec's sidecar keeps
    the source's ed25519 signature and gains a Sigstore bundle, and a consumer trusting only
    the identity installs from the copy."""
    source, ed25519_entry, gpg_entry = published_v2
    root = tmp_path / "private_root.json"
    root.write_text(services.instance.trusted_root_json())
    config = tmp_path / "signing_config.json"
    config.write_text(json.dumps(services.signing_config()))
    syncer = tmp_path / "syncer" / "reconcile.toml"
    syncer.parent.mkdir()
    syncer.write_text(
        f'version = 1\n\n[[mirror]]\nname = "published"\nurl = "{source}"\n\n'
        '[[mirror]]\nname = "copy"\nurl = "copy"\nlayout = 3\nspecs = ["hello-app"]\n'
        'sign_with = ["ci"]\n\n'
        f"{gpg_entry}\n{ed25519_entry}\n{sigstore_entry(root, config)}"
    )
    monkeypatch.setenv("SIGSTORE_ID_TOKEN", services.token(IDENTITY, ISSUER))
    assert run(syncer, "apply", "--yes") == 0, capsys.readouterr().err
    assert services.requests == ["POST /api/v2/signingCert -> 201"] + 3 * [
        "POST /api/v1/log/entries -> 201"
    ]
    copy = tmp_path / "syncer" / "copy"
    found = sorted(copy.rglob("*.reconcile-sig"))
    assert len(found) == 3
    for sidecar in found:
        schemes = [s["scheme"] for s in json.loads(sidecar.read_text())["signatures"]]
        assert schemes == ["ed25519", "sigstore"]
    only_identity = consumer(tmp_path / "consumer", copy, sigstore_entry(root))
    assert run(only_identity, "apply", "--yes") == 0, capsys.readouterr().err
    check_hello_works(tmp_path / "consumer" / "opt")


def test_a_sigstore_key_added_later_signs_what_was_published(
    tmp_path: Path,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Rotation towards a CI identity: published with the gpg key alone, then the sigstore key
    is added to ``[[publish]] key``: plan asks to sign the three specs again (sidecar only) and
    apply gets one certificate and logs three signatures."""
    manifest = publisher(tmp_path, services, monkeypatch)
    text = manifest.read_text()
    manifest.write_text(text.replace('key = ["publisher", "ci"]', 'key = ["publisher"]'))
    monkeypatch.delenv("SIGSTORE_ID_TOKEN", raising=False)
    assert run(manifest, "apply", "--yes") == 0, capsys.readouterr().err
    assert services.requests == []
    manifest.write_text(text)
    capsys.readouterr()
    assert run(manifest, "plan") == 0, capsys.readouterr().err
    assert capsys.readouterr().out.count("~ resign") == 3
    monkeypatch.setenv("SIGSTORE_ID_TOKEN", services.token(IDENTITY, ISSUER))
    assert run(manifest, "apply", "--yes") == 0, capsys.readouterr().err
    assert services.requests == ["POST /api/v2/signingCert -> 201"] + 3 * [
        "POST /api/v1/log/entries -> 201"
    ]
    sidecars = sorted((manifest.parent / "published").rglob("*.reconcile-sig"))
    assert len(sidecars) == 3
    capsys.readouterr()
    assert run(manifest, "plan") == 0
    assert "~ resign" not in capsys.readouterr().out
