"""Where signing keys live, and the keys in them: real gpg in short-lived private homes."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FIXTURE_FPR, FIXTURE_KEY
from throwaway_gpg import NO_PASSPHRASE, gpg, make_signer

from reconcile.errors import ReconcileError
from reconcile.manifest.load import loads_manifest
from reconcile.manifest.model import Key, ManifestFile
from reconcile.trust.gnupg import isolated_home, remove_isolated_home
from reconcile.trust.key_files import (
    refuse_existing_public_key,
    write_public_key,
    write_secret_key,
)
from reconcile.trust.keygen import create_signing_key
from reconcile.trust.keystore import (
    generation_home,
    prepare_private_home,
    reconcile_key_folder,
    refuse_inside_mirror,
    require_gpg,
    signer_from_keystore,
    signing_homes,
)
from reconcile.trust.policy import TrustPolicy
from reconcile.trust.secret_keys import (
    export_public_key,
    export_secret_key,
    find_signing_key,
    list_signing_keys,
    parse_secret_listing,
)
from reconcile.trust.sign import GpgSigner
from reconcile.trust.signing_home import SigningHome
from reconcile.trust.verify import key_fingerprints


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def base() -> Iterator[Path]:
    """A short folder under /tmp (gpg-agent's socket path must stay under ~100 bytes); every
    GnuPG home made below it has its agent stopped afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="rk-", dir="/tmp"))
    try:
        yield folder
    finally:
        for home in [pubring.parent for pubring in folder.rglob("pubring.kbx")]:
            remove_isolated_home(home)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def home_at(path: Path) -> SigningHome:
    return SigningHome(path=path, origin="--home", explicit=True)


def manifest_with_mirror(folder: Path, mirror_url: str) -> ManifestFile:
    text = f'version = 1\n\n[[mirror]]\nname = "team"\nurl = "{mirror_url}"\n'
    return loads_manifest(text, path=folder / "reconcile.toml")


# --- where homes are -------------------------------------------------------------------------


def test_key_folder_honours_xdg_data_home_and_ignores_a_relative_one() -> None:
    assert reconcile_key_folder({"HOME": "/h"}) == Path("/h/.local/share/reconcile/keys")
    assert reconcile_key_folder({"HOME": "/h", "XDG_DATA_HOME": "/data"}) == Path(
        "/data/reconcile/keys"
    )
    assert reconcile_key_folder({"HOME": "/h", "XDG_DATA_HOME": "rel"}) == Path(
        "/h/.local/share/reconcile/keys"
    )


def test_search_order_of_signing_homes() -> None:
    env = {"HOME": "/h", "GNUPGHOME": "/g", "RECONCILE_SIGNING_HOME": "/r"}
    assert [h.path for h in signing_homes(Path("/x"), env)] == [Path("/x")]
    assert [(h.path, h.explicit) for h in signing_homes(None, env)] == [(Path("/r"), True)]
    del env["RECONCILE_SIGNING_HOME"]
    assert [(h.path, h.explicit) for h in signing_homes(None, env)] == [
        (Path("/h/.local/share/reconcile/keys"), False),
        (Path("/g"), False),
    ]
    del env["GNUPGHOME"]
    assert [h.path for h in signing_homes(None, env)][1] == Path("/h/.gnupg")


def test_generation_never_defaults_to_the_personal_keyring() -> None:
    env = {"HOME": "/h", "GNUPGHOME": "/g"}
    assert generation_home(None, env).path == Path("/h/.local/share/reconcile/keys")
    assert generation_home(None, {**env, "RECONCILE_SIGNING_HOME": "/r"}).path == Path("/r")
    assert generation_home(Path("/x"), env).path == Path("/x")


# --- keeping secrets out of mirrors ----------------------------------------------------------


def test_refuses_a_home_inside_a_declared_mirror(base: Path) -> None:
    (base / "mirror").mkdir()
    manifest = manifest_with_mirror(base, "mirror")
    with pytest.raises(ReconcileError, match="inside mirror 'team'") as caught:
        refuse_inside_mirror(base / "mirror" / "keys", manifest_file=manifest, what="the home")
    assert caught.value.reference == "secret-in-mirror"
    assert caught.value.hint
    # The same mirror as a file:// URL, and a sibling folder that merely shares a prefix.
    as_url = manifest_with_mirror(base, (base / "mirror").as_uri())
    with pytest.raises(ReconcileError, match="inside mirror 'team'"):
        refuse_inside_mirror(base / "mirror", manifest_file=as_url, what="the home")
    refuse_inside_mirror(base / "mirror-keys", manifest_file=manifest, what="the home")


def test_refuses_any_folder_that_is_a_binary_cache(base: Path) -> None:
    (base / "v2" / "build_cache").mkdir(parents=True)
    (base / "v3" / "v3").mkdir(parents=True)
    (base / "v3" / "v3" / "layout.json").write_text('{"signing": "gpg"}')
    for cache in ("v2", "v3"):
        with pytest.raises(ReconcileError, match="holds a binary cache"):
            refuse_inside_mirror(base / cache / "deep" / "home", manifest_file=None, what="home")
    refuse_inside_mirror(base / "elsewhere", manifest_file=None, what="home")


# --- private homes ------------------------------------------------------------------------------


def test_new_home_is_private_and_loose_homes_are_refused(base: Path, umask_022: None) -> None:
    home = home_at(base / "a" / "keys")
    assert prepare_private_home(home) is True
    assert mode(home.path) == 0o700
    assert prepare_private_home(home) is False
    loose = base / "loose"
    loose.mkdir(mode=0o755)
    with pytest.raises(ReconcileError, match="mode 0755") as caught:
        prepare_private_home(home_at(loose))
    assert caught.value.reference == "signing-home-not-private"
    (base / "file").write_text("")
    with pytest.raises(ReconcileError, match="is not a folder"):
        prepare_private_home(home_at(base / "file"))


def test_created_key_lives_in_a_private_home(base: Path, umask_022: None) -> None:
    home = home_at(base / "keys")
    key = create_signing_key(home, name="ci", email="ci@example.org")
    assert key.algorithm == "ed25519"
    assert key.uids == ("ci <ci@example.org>",)
    assert key.can_sign
    for path in [home.path, *home.path.rglob("*")]:
        if path.is_dir():
            assert mode(path) == 0o700, path
        elif stat.S_ISREG(path.lstat().st_mode):
            assert mode(path) == 0o600, path
    assert [k.fingerprint for k in list_signing_keys(home)] == [key.fingerprint]
    with pytest.raises(ReconcileError, match="already holds a signing key named 'ci'") as caught:
        create_signing_key(home, name="ci", email="other@example.org")
    assert caught.value.reference == "signing-key-exists"
    # The key signs, and a verifier pinned to its exported public key accepts the signature.
    signed = GpgSigner(gnupghome=home.path, fingerprint=key.fingerprint).clearsign(b"{}\n")
    public = export_public_key(home.path, key.fingerprint)
    assert key_fingerprints(public) == (key.fingerprint,)
    with TrustPolicy.gpg({key.fingerprint: public}) as verifier:
        assert verifier.verify_clearsigned(signed, what="t").signers[0].identity == key.fingerprint


def test_no_key_is_made_inside_a_mirror(base: Path) -> None:
    (base / "build_cache").mkdir()
    with pytest.raises(ReconcileError, match="holds a binary cache"):
        create_signing_key(home_at(base / "keys"), name="ci", email="ci@example.org")
    assert not (base / "keys").exists()


# --- listing ------------------------------------------------------------------------------------


def test_listing_reports_expired_offline_and_escaped_uids(base: Path) -> None:
    home = base / "g"
    home.mkdir(mode=0o700)
    make_signer(home, "Colon: Name <c@example.org>")
    make_signer(home, "Old <old@example.org>", expire="1y", faked_time="20000101T000000")
    offline = make_signer(home, "Offline <off@example.org>", signing_subkey=True)
    subkeys_only = gpg(
        home, *NO_PASSPHRASE, "--armor", "--export-secret-subkeys", offline.fingerprint
    )
    gpg(home, "--yes", "--delete-secret-keys", offline.fingerprint)
    gpg(home, *NO_PASSPHRASE, "--import", stdin=subkeys_only)
    keys = {key.uids[0]: key for key in list_signing_keys(home_at(home))}
    assert keys["Colon: Name <c@example.org>"].status == "usable"
    old = keys["Old <old@example.org>"]
    assert (old.status, old.created.year) == ("expired", 2000)
    assert keys["Offline <off@example.org>"].status == "offline"
    assert not keys["Offline <off@example.org>"].can_sign


def test_a_home_gpg_cannot_read_is_a_clear_error(base: Path) -> None:
    home = base / "g"
    home.mkdir(mode=0o700)
    (home / "pubring.kbx").write_bytes(b"not a keybox")
    with pytest.raises(ReconcileError, match="gpg cannot list the keys in") as caught:
        list_signing_keys(home_at(home))
    assert caught.value.reference == "signing-home-unreadable"
    assert "Invalid packet" in caught.value.message


def test_parses_rsa_and_unknown_algorithms() -> None:
    colons = (
        "sec:u:4096:1:AAAAAAAAAAAAAAAA:1700000000:::u:::scSC:::+:::23::0:\n"
        "fpr:::::::::" + "A" * 40 + ":\n"
        "uid:u::::1700000000::X::R <r@e>::::::::::0:\n"
        "ssb:u:4096:1:BBBBBBBBBBBBBBBB:1700000000::::::e:::+:::23:\n"
        "fpr:::::::::" + "B" * 40 + ":\n"
        "sec:u:255:99:CCCCCCCCCCCCCCCC:1700000000:::u:::c:::+:::::0:\n"
        "fpr:::::::::" + "C" * 40 + ":\n"
    )
    rsa, odd = parse_secret_listing(colons)
    assert (rsa.fingerprint, rsa.algorithm, rsa.status) == ("A" * 40, "rsa4096", "usable")
    assert (odd.algorithm, odd.status, odd.uids) == ("algorithm-99", "no-sign", ())


# --- finding ------------------------------------------------------------------------------------


def test_find_by_manifest_name_fingerprint_key_id_and_uid(base: Path) -> None:
    home = base / "g"
    home.mkdir(mode=0o700)
    ci = make_signer(home, "ci <ci@example.org>")
    other = make_signer(home, "other <other@example.org>")
    homes = [home_at(home)]
    pinned = [Key(name="publisher", fingerprint=other.fingerprint, file="k.pub")]
    assert find_signing_key("publisher", homes=homes, manifest_keys=pinned).key.fingerprint == (
        other.fingerprint
    )
    spaced = " ".join(ci.fingerprint[i : i + 4] for i in range(0, 40, 4)).lower()
    for selector in (ci.fingerprint, spaced, ci.fingerprint[-16:], "ci", "ci@example.org"):
        assert find_signing_key(selector, homes=homes).key.fingerprint == ci.fingerprint
    with pytest.raises(ReconcileError, match="found no secret key matching 'nobody'") as caught:
        find_signing_key("nobody", homes=homes)
    assert caught.value.reference == "signing-key-not-found"
    missing = [Key(name="gone", fingerprint=FIXTURE_FPR, file="k.pub")]
    with pytest.raises(
        ReconcileError, match=f"{FIXTURE_FPR} \\(pinned by the manifest's \\[\\[key\\]\\] 'gone'\\)"
    ):
        find_signing_key("gone", homes=homes, manifest_keys=missing)


def test_two_keys_with_one_name_are_ambiguous(base: Path) -> None:
    home = base / "g"
    home.mkdir(mode=0o700)
    first = make_signer(home, "ci <one@example.org>")
    second = make_signer(home, "ci <two@example.org>")
    with pytest.raises(ReconcileError, match="names 2 secret keys") as caught:
        find_signing_key("ci", homes=[home_at(home)])
    assert caught.value.reference == "signing-key-ambiguous"
    assert first.fingerprint in caught.value.message
    assert second.fingerprint in caught.value.message
    assert find_signing_key("two@example.org", homes=[home_at(home)]).key.fingerprint == (
        second.fingerprint
    )


def test_missing_default_homes_are_skipped_but_a_named_one_is_an_error(base: Path) -> None:
    home = base / "g"
    home.mkdir(mode=0o700)
    ci = make_signer(home, "ci <ci@example.org>")
    skipped = SigningHome(path=base / "absent", origin="GnuPG's default home")
    found = find_signing_key("ci", homes=[skipped, SigningHome(path=home, origin="x")])
    assert found.key.fingerprint == ci.fingerprint
    with pytest.raises(ReconcileError, match="does not exist") as caught:
        find_signing_key("ci", homes=[home_at(base / "absent")])
    assert caught.value.reference == "signing-home-missing"


def test_signer_from_keystore_finds_the_home_holding_the_key(base: Path) -> None:
    """What apply uses to sign what it publishes: the key is looked up in the signing homes."""
    home = base / "g"
    home.mkdir(mode=0o700)
    ci = make_signer(home, "ci <ci@example.org>")
    environ = {"HOME": str(base / "h"), "GNUPGHOME": str(home)}
    signer = signer_from_keystore(ci.fingerprint.lower(), environ=environ)
    assert (signer.gnupghome, signer.fingerprint) == (home, ci.fingerprint)
    signed = signer.clearsign(b"{}\n")
    with TrustPolicy.gpg({ci.fingerprint: ci.public_key()}) as verifier:
        assert verifier.verify_clearsigned(signed, what="t").signers[0].identity == ci.fingerprint
    with pytest.raises(ReconcileError, match=f"found no secret key matching '{FIXTURE_FPR}'"):
        signer_from_keystore(FIXTURE_FPR, environ=environ)


# --- exporting and writing key files -------------------------------------------------------------


def test_secret_export_round_trips_and_refuses_a_passphrase(base: Path, umask_022: None) -> None:
    home = base / "g"
    home.mkdir(mode=0o700)
    ci = make_signer(home, "ci <ci@example.org>")
    backup = base / "backup" / "ci.asc"
    write_secret_key(backup, export_secret_key(home, ci.fingerprint))
    assert mode(backup) == 0o600
    with isolated_home() as fresh:
        gpg(fresh, *NO_PASSPHRASE, "--import", stdin=backup.read_bytes())
        GpgSigner(gnupghome=fresh, fingerprint=ci.fingerprint).clearsign(b"x\n")
    with pytest.raises(ReconcileError, match="already exists") as caught:
        write_secret_key(backup, b"other")
    assert caught.value.reference == "key-file-conflict"
    with pytest.raises(ReconcileError, match="never written to standard output"):
        write_secret_key(Path("-"), b"x")
    gpg(
        home, "--pinentry-mode", "loopback", "--passphrase", "pw", "--quick-gen-key",
        "locked <l@example.org>", "ed25519", "sign", "never",
    )  # fmt: skip
    locked = find_signing_key("locked", homes=[home_at(home)]).key.fingerprint
    with pytest.raises(ReconcileError, match="could not export the secret key") as caught:
        export_secret_key(home, locked)
    assert "--export-secret-keys" in (caught.value.hint or "")


def test_public_key_file_never_replaces_a_different_key(base: Path) -> None:
    home = base / "g"
    home.mkdir(mode=0o700)
    ci = make_signer(home, "ci <ci@example.org>")
    target = base / "keys" / "ci.pub"
    armored = export_public_key(home, ci.fingerprint)
    assert write_public_key(target, armored, ci.fingerprint) is True
    assert mode(target) == 0o644
    assert write_public_key(target, armored, ci.fingerprint) is False  # same key: left alone
    with pytest.raises(ReconcileError, match="already exists") as caught:
        refuse_existing_public_key(target)
    assert ci.fingerprint in caught.value.message
    fixture_copy = base / "keys" / "fixture.pub"
    shutil.copyfile(FIXTURE_KEY, fixture_copy)
    with pytest.raises(ReconcileError, match=f"holds key {FIXTURE_FPR}"):
        write_public_key(fixture_copy, armored, ci.fingerprint)
    assert key_fingerprints(fixture_copy.read_bytes()) == (FIXTURE_FPR,)
    (base / "keys" / "notes.txt").write_text("hello")
    with pytest.raises(ReconcileError, match="holds no OpenPGP key"):
        write_public_key(base / "keys" / "notes.txt", armored, ci.fingerprint)


# --- gpg itself ---------------------------------------------------------------------------------


def test_missing_gpg_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, base: Path) -> None:
    monkeypatch.setenv("RECONCILE_GPG", str(base / "no-such-gpg"))
    with pytest.raises(ReconcileError, match="not an executable program") as caught:
        require_gpg()
    assert caught.value.reference == "gpg-missing"
    with pytest.raises(ReconcileError, match="not an executable program"):
        create_signing_key(home_at(base / "keys"), name="ci", email="ci@example.org")
    monkeypatch.delenv("RECONCILE_GPG")
    monkeypatch.setenv("PATH", str(base))
    with pytest.raises(ReconcileError, match="not installed") as caught:
        require_gpg()
    assert caught.value.reference == "gpg-missing"
