"""ed25519 end to end: publish with a GnuPG key and an ed25519 key at once, then install from
that mirror with ONLY the ed25519 key declared (real relocated binaries, run); another key,
a tampered statement or a missing sidecar is refused with every signature and key named."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from support import run, write_manifest
from test_fixture_install import check_hello_works

from reconcile.trust.ed25519 import Ed25519SecretKey
from reconcile.trust.sign import GpgSigner, generate_key


@pytest.fixture
def homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    home = tmp_path / "signing"
    home.mkdir(mode=0o700)
    fingerprint = generate_key(home, "Publisher", "publisher@example.invalid")
    monkeypatch.setenv("RECONCILE_SIGNING_HOME", str(home))
    monkeypatch.delenv("RECONCILE_ED25519_SECRET_KEY", raising=False)
    public = tmp_path / "publisher.pub"
    public.write_bytes(GpgSigner(gnupghome=home, fingerprint=fingerprint).public_key())
    return fingerprint, public


def generate_ed25519(manifest: Path, name: str, capsys: pytest.CaptureFixture[str]) -> str:
    """``reconcile keys generate --kind ed25519 NAME``: its [[key]] entry."""
    capsys.readouterr()
    assert run(manifest, "keys", "generate", "--kind", "ed25519", name) == 0
    entry = capsys.readouterr().out
    assert 'kind = "ed25519"' in entry
    return entry


def publish(
    folder: Path, fingerprint: str, public: Path, layout: int, capsys: pytest.CaptureFixture[str]
) -> str:
    """Publish hello-app's closure signed by a gpg key and the ed25519 key 'site'; returns
    the ed25519 [[key]] entry."""
    folder.mkdir(parents=True)
    entry = generate_ed25519(folder / "reconcile.toml", "site", capsys)
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
    assert "3 published" in capsys.readouterr().out
    return entry


def consumer(folder: Path, mirror: Path, key_entry: str) -> Path:
    """A manifest whose only key is the ed25519 one."""
    text = f"""version = 1

[install]
root = "opt"
specs = ["hello-app"]

[[mirror]]
name = "published"
url = "{mirror}"

{key_entry}"""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "reconcile.toml"
    path.write_text(text)
    return path


def sidecars(mirror: Path) -> list[Path]:
    return sorted(mirror.rglob("*.reconcile-sig"))


@pytest.mark.parametrize("layout", [2, 3])
def test_a_mirror_signed_with_ed25519_installs_with_only_that_key(
    tmp_path: Path, homes: tuple[str, Path], capsys: pytest.CaptureFixture[str], layout: int
) -> None:
    fingerprint, public = homes
    entry = publish(tmp_path / "publisher", fingerprint, public, layout, capsys)
    mirror = tmp_path / "publisher" / "published"
    found = sidecars(mirror)
    assert len(found) == 3
    for sidecar in found:
        document = json.loads(sidecar.read_text())
        assert document["statement"].startswith("reconcile-sig-1;")
        assert [s["scheme"] for s in document["signatures"]] == ["ed25519"]
        assert document["signatures"][0]["signature"].startswith("site:")
    # Spack's own signature is still there, beside the sidecar.
    signed = list(mirror.rglob("*.spec.json.sig")) or list(mirror.rglob("*.spec.manifest.json"))
    assert signed and all(p.read_bytes().startswith(b"-----BEGIN PGP SIGNED") for p in signed)
    # No secret key went into the mirror: the secret's base64 appears in no file there.
    secret = (tmp_path / "signing" / "ed25519" / "site.secret").read_text().split(":", 1)[1]
    assert (tmp_path / "signing" / "ed25519" / "site.secret").stat().st_mode & 0o077 == 0
    assert not [
        p for p in mirror.rglob("*") if p.is_file() and secret.strip().encode() in p.read_bytes()
    ]

    manifest = consumer(tmp_path / "consumer", mirror, entry)
    assert run(manifest, "apply", "--yes") == 0, capsys.readouterr().err
    check_hello_works(tmp_path / "consumer" / "opt")
    records = list((tmp_path / "consumer" / "opt" / ".reconcile" / "records").glob("*.json"))
    assert {json.loads(r.read_text())["signer"] for r in records} == {"ed25519:site"}
    assert run(manifest, "drift") == 0, capsys.readouterr().out
    capsys.readouterr()
    # keys list: the declared key's scheme, the mirrors it counts for, the installs it signed
    assert run(manifest, "keys", "list", "--json") == 0
    (declared,) = json.loads(capsys.readouterr().out)["declared_keys"]
    assert declared["name"] == "site" and declared["scheme"] == "ed25519"
    assert declared["identity"].startswith("site:")
    assert declared["mirrors"] == ["published"]
    assert len(declared["installs"]) == 3
    assert any(label.startswith("hello-app@3.0/") for label in declared["installs"])
    assert run(manifest, "keys", "list") == 0
    listing = capsys.readouterr().out
    assert "counts for mirrors: 'published'" in listing and "3 installs signed by it" in listing


@pytest.fixture(scope="module")
def published_v2(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A layout-2 mirror signed by gpg and ed25519 (built once for the refusal tests)."""
    base = tmp_path_factory.mktemp("published")
    home = base / "signing"
    home.mkdir(mode=0o700)
    fingerprint = generate_key(home, "Publisher", "publisher@example.invalid")
    public = base / "publisher.pub"
    public.write_bytes(GpgSigner(gnupghome=home, fingerprint=fingerprint).public_key())
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECONCILE_SIGNING_HOME", str(home))
        patch.delenv("RECONCILE_ED25519_SECRET_KEY", raising=False)

        folder = base / "publisher"
        folder.mkdir()
        key = Ed25519SecretKey.generate("site")
        (home / "ed25519").mkdir(mode=0o700)
        secret = home / "ed25519" / "site.secret"
        secret.write_text(key.text() + "\n")
        secret.chmod(0o600)
        entry = (
            f'[[key]]\nname = "site"\nkind = "ed25519"\npublic_key = "{key.public_key().text()}"\n'
        )
        extra = f"""
[[mirror]]
name = "published"
url = "published"
layout = 2

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
        assert run(manifest, "apply", "--yes") == 0
    gpg_entry = (
        f'[[key]]\nname = "publisher"\nkind = "gpg"\nfingerprint = "{fingerprint}"\n'
        f'file = "{public}"\n'
    )
    return folder / "published", entry, gpg_entry


def copy_mirror(source: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(source, target)
    return target


HELLO_SIDECAR = "*hello-app-3.0-*.spec.json.reconcile-sig"


def refused(manifest: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert run(manifest, "apply", "--yes") != 0
    captured = capsys.readouterr()
    text = captured.err + captured.out
    assert "Traceback" not in text
    return text


def test_another_ed25519_key_is_refused_naming_each_signature_and_key(
    tmp_path: Path, published_v2: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    mirror, _, _ = published_v2
    impostor = Ed25519SecretKey.generate("site").public_key().text()
    other = Ed25519SecretKey.generate("other").public_key().text()
    entry = (
        f'[[key]]\nname = "site"\nkind = "ed25519"\npublic_key = "{impostor}"\n\n'
        f'[[key]]\nname = "other"\nkind = "ed25519"\npublic_key = "{other}"\n'
    )
    text = refused(consumer(tmp_path / "c", mirror, entry), capsys)
    assert "requires 1 distinct trusted signature, found 0" in text
    assert "GnuPG signature not checked: no gpg key counts" in text
    assert "signature 2 (ed25519)" in text
    assert "key ed25519:site: the signature does not match the signed data" in text
    assert "key ed25519:other is named 'other', not 'site'" in text
    assert not (tmp_path / "c" / "opt").exists() or not any((tmp_path / "c" / "opt").glob("*/bin"))


def test_a_tampered_sidecar_signature_is_refused(
    tmp_path: Path, published_v2: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    source, entry, _ = published_v2
    mirror = copy_mirror(source, tmp_path / "m")
    sidecar = next(mirror.rglob(HELLO_SIDECAR))
    document = json.loads(sidecar.read_text())
    signature = document["signatures"][0]["signature"]
    name, encoded = signature.split(":", 1)
    flipped = ("B" if encoded[0] == "A" else "A") + encoded[1:]
    document["signatures"][0]["signature"] = f"{name}:{flipped}"
    sidecar.write_text(json.dumps(document))
    text = refused(consumer(tmp_path / "c", mirror, entry), capsys)
    assert "hello-app@3.0" in text
    assert "key ed25519:site: the signature does not match the signed data" in text


def test_a_tampered_statement_is_refused(
    tmp_path: Path, published_v2: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The metadata names another tarball checksum (its GnuPG signature is not trusted
    here): the statement rebuilt from it is not what the ed25519 key signed."""
    source, entry, _ = published_v2
    mirror = copy_mirror(source, tmp_path / "m")
    spec = next(mirror.rglob("*hello-app-3.0-*.spec.json.sig"))
    text = spec.read_text()
    checksum = re.search(r'"hash":"([0-9a-f]{64})"', text)
    assert checksum is not None
    spec.write_text(text.replace(checksum.group(1), "0" * 64))
    out = refused(consumer(tmp_path / "c", mirror, entry), capsys)
    assert "the signature does not match the signed data" in out
    assert f";sha256:{'0' * 64};" in out  # the sidecar's statement and the metadata's differ


def test_a_missing_sidecar_is_refused(
    tmp_path: Path, published_v2: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    source, entry, _ = published_v2
    mirror = copy_mirror(source, tmp_path / "m")
    next(mirror.rglob(HELLO_SIDECAR)).unlink()
    text = refused(consumer(tmp_path / "c", mirror, entry), capsys)
    assert "no sidecar signatures" in text


def policy_consumer(folder: Path, mirror: Path, keys: str, policy: str) -> Path:
    """A consumer declaring ``keys`` with ``policy`` lines in its [[mirror]]."""
    path = consumer(folder, mirror, keys)
    text = path.read_text().replace(f'url = "{mirror}"\n', f'url = "{mirror}"\n{policy}\n', 1)
    path.write_text(text)
    return path


def test_require_two_installs_with_both_signatures_and_refuses_one(
    tmp_path: Path, published_v2: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    source, ed25519_entry, gpg_entry = published_v2
    keys = gpg_entry + "\n" + ed25519_entry
    both = policy_consumer(tmp_path / "both", source, keys, "require = 2")
    assert run(both, "apply", "--yes") == 0, capsys.readouterr().err
    check_hello_works(tmp_path / "both" / "opt")

    # The same policy on a copy without the ed25519 sidecar: one valid signature is not two.
    mirror = copy_mirror(source, tmp_path / "m")
    next(mirror.rglob(HELLO_SIDECAR)).unlink()
    one = policy_consumer(tmp_path / "one", mirror, keys, "require = 2")
    text = refused(one, capsys)
    assert "requires 2 distinct trusted signatures, found 1" in text
    assert "(valid by: publisher; missing: site)" in text
    assert "no sidecar signatures" in text


def test_trust_selects_the_keys_that_count(
    tmp_path: Path, published_v2: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    source, ed25519_entry, gpg_entry = published_v2
    keys = gpg_entry + "\n" + ed25519_entry
    mirror = copy_mirror(source, tmp_path / "m")
    next(mirror.rglob(HELLO_SIDECAR)).unlink()
    # Only the ed25519 key counts: the GnuPG signature by a declared key is not even checked.
    manifest = policy_consumer(tmp_path / "c", mirror, keys, 'trust = ["site"]')
    text = refused(manifest, capsys)
    assert "found 0 (valid by: none; missing: site)" in text
    assert "GnuPG signature not checked: no gpg key counts for mirror 'published'" in text
    # With the sidecar, it installs, and the record names the ed25519 signer.
    good = policy_consumer(tmp_path / "g", source, keys, 'trust = ["site"]')
    assert run(good, "apply", "--yes") == 0, capsys.readouterr().err
    records = (tmp_path / "g" / "opt" / ".reconcile" / "records").glob("*.json")
    assert {json.loads(r.read_text())["signer"] for r in records} == {"ed25519:site"}


def test_revoking_the_key_is_reported_by_plan_and_drift_and_refuses_new_installs(
    tmp_path: Path, published_v2: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    source, entry, _ = published_v2
    manifest = consumer(tmp_path / "c", source, entry)
    assert run(manifest, "apply", "--yes") == 0, capsys.readouterr().err
    capsys.readouterr()
    original = manifest.read_text()

    # Revoked from a date still to come: the key counts, nothing is reported.
    manifest.write_text(original + "revoked_after = 2999-01-01\n")
    assert run(manifest, "plan") == 0
    assert "revoked" not in capsys.readouterr().err
    assert run(manifest, "drift") == 0
    capsys.readouterr()

    for revocation in ("revoked = true\n", "revoked_after = 2001-01-01T00:00:00Z\n"):
        manifest.write_text(original + revocation)
        # No mirror carries a signature by a key that still counts: the plan refuses,
        # naming each install and why the mirror did not vouch for it again.
        assert run(manifest, "plan") == 1
        err = capsys.readouterr().err
        assert "error[no-valid-signer]" in err
        assert err.count("only by key 'site', which is revoked") == 3, err
        assert "hello-app@3.0/d7r6xmz was verified" in err
        assert "mirror 'published': spec hello-app@3.0/d7r6xmz" in err
        assert "Traceback" not in err
        assert run(manifest, "drift", "--json") != 0
        report = json.loads(capsys.readouterr().out)
        kinds = {f["kind"] for r in report["resources"] for f in r["findings"]}
        assert "revoked-signer" in kinds
        # A new install from the same mirror is refused: the revoked key verifies nothing.
        fresh = consumer(tmp_path / f"fresh-{len(revocation)}", source, entry + revocation)
        text = refused(fresh, capsys)
        assert "error[verification-failed]" in text
        assert "key 'site' is revoked in the manifest" in text


def test_a_synced_mirror_keeps_the_sidecars(
    tmp_path: Path, published_v2: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Mirror sync (verbatim, layout 2) copies each sidecar: a consumer trusting only the
    ed25519 key installs from the copy."""
    source, entry, _ = published_v2
    syncer = tmp_path / "syncer" / "reconcile.toml"
    syncer.parent.mkdir()
    syncer.write_text(
        f'version = 1\n\n[[mirror]]\nname = "published"\nurl = "{source}"\n\n'
        f'[[mirror]]\nname = "copy"\nurl = "copy"\nlayout = 2\nspecs = ["hello-app"]\n\n{entry}'
    )
    assert run(syncer, "apply", "--yes") == 0, capsys.readouterr().err
    copy = tmp_path / "syncer" / "copy"
    assert len(sidecars(copy)) == 3
    manifest = consumer(tmp_path / "c", copy, entry)
    assert run(manifest, "apply", "--yes") == 0, capsys.readouterr().err
    check_hello_works(tmp_path / "c" / "opt")
