"""Rotating the gpg key of a ``[[publish]]`` entry: Spack's own metadata (layout 2's
``.spec.json.sig``, layout 3's signed spec manifest) is clear-signed again by the new key, the
old key's signature replaced, the new public key offered in the mirror, so a consumer that
trusts only the new key installs; tarballs, the index and the signed text stay as they were,
and a second plan is clean. Metadata that no GnuPG key that counts vouches for is never
clear-signed by the new key."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from paused import paused_at
from support import run
from test_ed25519_trust import consumer, homes, publish  # noqa: F401  (homes is a fixture)
from test_fixture_install import check_hello_works

from reconcile.errors import VerificationError
from reconcile.trust.clearsign import unverified_text
from reconcile.trust.policy import TrustPolicy
from reconcile.trust.sign import GpgSigner, generate_key


def metadata_files(mirror: Path) -> list[Path]:
    """The clear-signed files Spack verifies: one per package."""
    found = sorted(mirror.rglob("*.spec.json.sig")) or sorted(mirror.rglob("*.spec.manifest.json"))
    assert len(found) == 3
    return found


def other_files(mirror: Path) -> dict[str, str]:
    """sha256 of every file but the signed metadata and the published keys."""
    signed = set(metadata_files(mirror))
    return {
        str(path.relative_to(mirror)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(mirror.rglob("*"))
        if path.is_file()
        and path not in signed
        and "_pgp" not in path.parts
        and "key" not in path.parts  # v3/manifests/key
        and not path.name.endswith(".lock")
    }


def gpg_entry(name: str, fingerprint: str, public: Path) -> str:
    return (
        f'[[key]]\nname = "{name}"\nkind = "gpg"\nfingerprint = "{fingerprint}"\n'
        f'file = "{public}"\n'
    )


def new_gpg_key(home: Path, public: Path) -> str:
    fingerprint = generate_key(home, "Publisher 2026", "publisher-2026@example.invalid")
    signer = GpgSigner(gnupghome=home, fingerprint=fingerprint)
    try:
        public.write_bytes(signer.public_key())
    finally:
        signer.close()
    return fingerprint


def verifies_with(document: bytes, fingerprint: str, public: Path) -> bool:
    with TrustPolicy.gpg({fingerprint: public.read_bytes()}) as policy:
        try:
            policy.verify_clearsigned(document, what="metadata")
        except VerificationError:
            return False
    return True


@pytest.mark.parametrize("layout", [2, 3])
def test_a_new_gpg_key_clear_signs_spack_metadata_again(
    tmp_path: Path,
    homes: tuple[str, Path],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    layout: int,
) -> None:
    old_fingerprint, old_public = homes
    publish(tmp_path / "publisher", old_fingerprint, old_public, layout, capsys)
    manifest = tmp_path / "publisher" / "reconcile.toml"
    mirror = tmp_path / "publisher" / "published"
    before = {path: path.read_bytes() for path in metadata_files(mirror)}
    assert all(verifies_with(data, old_fingerprint, old_public) for data in before.values())
    unchanged = other_files(mirror)

    # Declare the new key beside the old one and make the entry sign with it instead.
    new_public = tmp_path / "publisher-2026.pub"
    new_fingerprint = new_gpg_key(tmp_path / "signing", new_public)
    text = manifest.read_text().replace(
        'key = ["publisher", "site"]', 'key = ["publisher-2026", "site"]'
    )
    manifest.write_text(text + "\n" + gpg_entry("publisher-2026", new_fingerprint, new_public))

    capsys.readouterr()
    assert run(manifest, "plan", "--detailed-exitcode") == 2
    shown = capsys.readouterr().out
    assert shown.count("~ resign ") == 3, shown
    assert "(metadata clear-signed again by publisher-2026; tarball untouched)" in shown
    assert (
        "its metadata in mirror 'published' is not clear-signed by publisher-2026, which "
        "publish[0] signs with (signed now by: publisher, site)"
    ) in shown

    assert run(manifest, "apply", "--yes") == 0, capsys.readouterr().err
    assert "3 signed again" in capsys.readouterr().out
    after = other_files(mirror)
    # tarballs, spec blobs, index and sidecars untouched; layout 3 adds the key's blobs only
    assert unchanged.items() <= after.items()
    assert len(after) - len(unchanged) == (0 if layout == 2 else 2)
    for path, old in before.items():
        new = path.read_bytes()
        assert new.startswith(b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n")
        assert unverified_text(new) == unverified_text(old)  # the same text, signed anew
        assert verifies_with(new, new_fingerprint, new_public)
        assert not verifies_with(new, old_fingerprint, old_public)  # the old one is gone
    # The new public key is offered where `spack buildcache keys` finds it.
    if layout == 2:
        keys = mirror / "build_cache" / "_pgp"
        assert (keys / f"{new_fingerprint}.pub").read_bytes() == new_public.read_bytes()
        assert new_fingerprint in json.loads((keys / "index.json").read_text())["keys"]
    else:
        listed = mirror / "v3" / "manifests" / "key" / f"{new_fingerprint}.key.manifest.json"
        assert listed.is_file()

    # Idempotent: nothing more to do.
    assert run(manifest, "plan", "--detailed-exitcode") == 0, capsys.readouterr().out
    capsys.readouterr()
    # A consumer that trusts only the new gpg key installs (binaries run) ...
    only_new = consumer(
        tmp_path / "consumer", mirror, gpg_entry("publisher-2026", new_fingerprint, new_public)
    )
    assert run(only_new, "apply", "--yes") == 0, capsys.readouterr().err
    check_hello_works(tmp_path / "consumer" / "opt")
    records = (tmp_path / "consumer" / "opt" / ".reconcile" / "records").glob("*.json")
    assert {json.loads(r.read_text())["signer"] for r in records} == {new_fingerprint}
    # ... and one that trusts only the old key is refused.
    only_old = consumer(
        tmp_path / "old-consumer", mirror, gpg_entry("publisher", old_fingerprint, old_public)
    )
    capsys.readouterr()
    assert run(only_old, "apply", "--yes") == 1
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("how", ["removed", "not counted", "unsigned"])
def test_metadata_no_trusted_gpg_key_signed_is_never_clear_signed_by_the_new_key(
    tmp_path: Path,
    homes: tuple[str, Path],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    how: str,
) -> None:
    """The old gpg key is removed before the rotation (or no longer counts for the mirror,
    or the specs were published unsigned): only the ed25519 sidecar vouches for them, and it
    covers the tarball and the graph, not the whole spec document the new gpg key would sign.
    Apply refuses; nothing in the mirror changes."""
    old_fingerprint, old_public = homes
    publish(tmp_path / "publisher", old_fingerprint, old_public, 2, capsys)
    manifest = tmp_path / "publisher" / "reconcile.toml"
    mirror = tmp_path / "publisher" / "published"
    new_public = tmp_path / "publisher-2026.pub"
    new_fingerprint = new_gpg_key(tmp_path / "signing", new_public)
    text = manifest.read_text().replace(
        'key = ["publisher", "site"]', 'key = ["publisher-2026", "site"]'
    )
    if how == "removed":
        text = text.replace(gpg_entry("publisher", old_fingerprint, old_public), "")
        assert 'name = "publisher"' not in text
    elif how == "unsigned":  # published before any gpg key was named: a plain .spec.json
        for signed in metadata_files(mirror):
            plain = signed.with_name(signed.name.removesuffix(".sig"))
            plain.write_bytes(unverified_text(signed.read_bytes()))
            signed.unlink()
    else:
        text = text.replace("layout = 2\n", 'layout = 2\ntrust = ["site", "publisher-2026"]\n')
        assert "trust = " in text
    manifest.write_text(text + "\n" + gpg_entry("publisher-2026", new_fingerprint, new_public))
    before = {p: p.read_bytes() for p in sorted(mirror.rglob("*")) if p.is_file()}

    capsys.readouterr()
    assert run(manifest, "plan") == 0
    assert capsys.readouterr().out.count("is not clear-signed by publisher-2026") == 3
    assert run(manifest, "apply", "--yes") == 1
    err = capsys.readouterr().err
    assert "error[no-gnupg-signature-to-replace]" in err, err
    assert "cannot clear-sign " in err and "again with publisher-2026" in err
    assert "the sidecar's statement covers only the tarball" in err
    assert "Traceback" not in err
    assert {p: p.read_bytes() for p in sorted(mirror.rglob("*")) if p.is_file()} == before


def test_metadata_swapped_after_its_check_is_not_clear_signed(
    tmp_path: Path,
    homes: tuple[str, Path],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A co-tenant swaps hello-app's metadata, once verified, for greetlib's (validly signed
    by the old key too): the new key signs only the bytes that were checked, so apply
    refuses and leaves the swapped file as it found it."""
    old_fingerprint, old_public = homes
    publish(tmp_path / "publisher", old_fingerprint, old_public, 2, capsys)
    manifest = tmp_path / "publisher" / "reconcile.toml"
    mirror = tmp_path / "publisher" / "published"
    new_public = tmp_path / "publisher-2026.pub"
    new_fingerprint = new_gpg_key(tmp_path / "signing", new_public)
    text = manifest.read_text().replace(
        'key = ["publisher", "site"]', 'key = ["publisher-2026", "site"]'
    )
    manifest.write_text(text + "\n" + gpg_entry("publisher-2026", new_fingerprint, new_public))
    hello = next(mirror.rglob("*hello-app-3.0-*.spec.json.sig"))
    greetlib = next(mirror.rglob("*greetlib-*.spec.json.sig"))

    with paused_at(
        manifest,
        "resign-verified@hello-app",
        "apply",
        "--yes",
        folder=tmp_path / "pause",
    ) as paused:
        hello.write_bytes(greetlib.read_bytes())
        paused.resume()
        code, _, err = paused.finish()
    assert code == 1, err
    assert "the metadata of hello-app@3.0/" in err and "changed while it was read" in err
    assert "Traceback" not in err
    assert hello.read_bytes() == greetlib.read_bytes()  # not signed by the new key
    assert verifies_with(hello.read_bytes(), old_fingerprint, old_public)


def test_a_new_gpg_key_in_sign_with_clear_signs_what_a_sync_copied(
    tmp_path: Path,
    homes: tuple[str, Path],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A mirror filled by sync (verbatim: the source's GnuPG signature kept) whose sign_with
    then names a new gpg key: what it holds is clear-signed again by that key."""
    old_fingerprint, old_public = homes
    ed25519_entry = publish(tmp_path / "publisher", old_fingerprint, old_public, 3, capsys)
    source = tmp_path / "publisher" / "published"
    old_entry = gpg_entry("publisher", old_fingerprint, old_public)
    syncer = tmp_path / "syncer" / "reconcile.toml"
    syncer.parent.mkdir()
    mirrors = (
        f'version = 1\n\n[[mirror]]\nname = "published"\nurl = "{source}"\n\n'
        f'[[mirror]]\nname = "copy"\nurl = "copy"\nlayout = 3\nspecs = ["hello-app"]\n'
    )
    syncer.write_text(f"{mirrors}\n{old_entry}\n{ed25519_entry}")
    assert run(syncer, "apply", "--yes") == 0, capsys.readouterr().err
    copy = tmp_path / "syncer" / "copy"
    before = {path: path.read_bytes() for path in metadata_files(copy)}

    new_public = tmp_path / "publisher-2026.pub"
    new_fingerprint = new_gpg_key(tmp_path / "signing", new_public)
    new_entry = gpg_entry("publisher-2026", new_fingerprint, new_public)
    syncer.write_text(
        f'{mirrors}sign_with = "publisher-2026"\n\n{old_entry}\n{ed25519_entry}\n{new_entry}'
    )
    capsys.readouterr()
    assert run(syncer, "plan", "--detailed-exitcode") == 2
    shown = capsys.readouterr().out
    assert shown.count("(metadata clear-signed again by publisher-2026; tarball untouched)") == 3
    assert "which the sign_with of mirror 'copy' names (signed now by: publisher, site)" in shown
    assert run(syncer, "apply", "--yes") == 0, capsys.readouterr().err
    assert "3 signed again" in capsys.readouterr().out
    for path, old in before.items():
        new = path.read_bytes()
        assert unverified_text(new) == unverified_text(old)
        assert verifies_with(new, new_fingerprint, new_public)
        assert not verifies_with(new, old_fingerprint, old_public)
    assert run(syncer, "plan", "--detailed-exitcode") == 0, capsys.readouterr().out
    capsys.readouterr()

    only_new = consumer(tmp_path / "consumer", copy, new_entry)
    assert run(only_new, "apply", "--yes") == 0, capsys.readouterr().err
    check_hello_works(tmp_path / "consumer" / "opt")
