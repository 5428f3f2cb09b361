"""``reconcile keys generate | list | export`` as a user runs them: real gpg, a private home
under a throw-away $HOME, the printed [[key]] entry pasted into a real manifest."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURE_FPR, FIXTURE_KEY

from reconcile.buildcache.pinned_keys import load_pinned_keys
from reconcile.cli.keys_cmd import run_keys
from reconcile.cli.main import main
from reconcile.cli.verb_parsers import add_keys_parser
from reconcile.errors import ReconcileError
from reconcile.manifest.load import load_manifest
from reconcile.trust.gnupg import isolated_home, remove_isolated_home, run_gpg
from reconcile.trust.policy import TrustPolicy
from reconcile.trust.sign import GpgSigner
from reconcile.trust.verify import key_fingerprints

SPEC = b'{"spec": {"nodes": []}}\n'


def keys_cli(manifest: Path, *argv: str) -> int:
    """``reconcile -m MANIFEST keys ARGV...`` in this process, errors handled as main does."""
    parser = argparse.ArgumentParser(prog="reconcile")
    add_keys_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["keys", *argv])
    try:
        return run_keys(args, manifest)
    except ReconcileError as exc:
        print(exc.diagnostics(), file=sys.stderr)
        return 1


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def base(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A throw-away $HOME and $XDG_DATA_HOME under a short /tmp folder (gpg-agent's socket path
    must stay short); agents started in homes below it are stopped afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="rk-", dir="/tmp"))
    monkeypatch.setenv("HOME", str(folder / "h"))
    monkeypatch.setenv("XDG_DATA_HOME", str(folder / "d"))
    for variable in ("GNUPGHOME", "RECONCILE_SIGNING_HOME", "RECONCILE_GPG"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.chdir(folder)
    try:
        yield folder
    finally:
        for home in [pubring.parent for pubring in folder.rglob("pubring.kbx")]:
            remove_isolated_home(home)
        shutil.rmtree(folder, ignore_errors=True)


def default_home(base: Path) -> Path:
    return base / "d" / "reconcile" / "keys"


def write_manifest(folder: Path, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mirror").mkdir(exist_ok=True)
    manifest = folder / "reconcile.toml"
    manifest.write_text(
        "version = 1\n\n"
        '[[mirror]]\nname = "team"\nurl = "mirror"\n\n'
        f'[[key]]\nname = "team-gpg"\nkind = "gpg"\nfingerprint = "{FIXTURE_FPR}"\n'
        f'file = "{FIXTURE_KEY}"\n' + extra
    )
    return manifest


def generate(
    manifest: Path, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[dict[str, str], str, str]:
    """Run ``keys generate``: the [[key]] entry it printed (parsed, then as printed), its notes."""
    assert keys_cli(manifest, "generate", *args) == 0
    out, err = capsys.readouterr()
    entries = tomllib.loads(out)["key"]
    assert len(entries) == 1
    return entries[0], out, err


def list_json(manifest: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert keys_cli(manifest, "list", "--json") == 0
    listing: dict[str, Any] = json.loads(capsys.readouterr().out)
    return listing


def failure(manifest: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert keys_cli(manifest, *argv) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "Traceback" not in err
    assert "hint:" in err
    return err


# --- the whole round trip ---------------------------------------------------------------------


def test_generate_list_export_then_sign_and_verify(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(base / "proj")
    entry, printed, notes = generate(manifest, capsys, "ci", "--email", "ci@example.org")
    fingerprint = entry["fingerprint"]
    home = default_home(base)
    assert entry == {
        "name": "ci",
        "kind": "gpg",
        "fingerprint": fingerprint,
        "file": "keys/ci.pub",
    }
    assert "NO passphrase" in notes
    assert f"gpg --homedir {home} --passwd {fingerprint}" in notes
    # A private home: the folder 0700, every file in it 0600.
    assert mode(home) == 0o700
    for path in home.rglob("*"):
        if path.is_dir():
            assert mode(path) == 0o700, path
        elif stat.S_ISREG(path.lstat().st_mode):
            assert mode(path) == 0o600, path
    public_file = base / "proj" / "keys" / "ci.pub"
    assert key_fingerprints(public_file.read_bytes()) == (fingerprint,)

    listing = list_json(manifest, capsys)
    assert [h["path"] for h in listing["homes"]] == [str(home), str(base / "h" / ".gnupg")]
    (key,) = listing["homes"][0]["keys"]
    assert (key["fingerprint"], key["algorithm"], key["can_sign"]) == (fingerprint, "ed25519", True)
    assert key["uids"] == ["ci <ci@example.org>"]
    assert key["manifest_keys"] == []
    assert listing["homes"][1] == {
        "path": str(base / "h" / ".gnupg"),
        "origin": "GnuPG's default home",
        "exists": False,
        "keys": [],
    }

    # Paste the printed entry into the manifest: it validates, and the key is now matched.
    with manifest.open("a") as stream:
        stream.write("\n" + printed)
    assert main(["-m", str(manifest), "validate"]) == 0
    assert "valid (1 mirror, 2 keys" in capsys.readouterr().out
    listing = list_json(manifest, capsys)
    assert listing["homes"][0]["keys"][0]["manifest_keys"] == ["ci"]
    assert listing["manifest_keys_without_secret"] == [
        {"name": "team-gpg", "fingerprint": FIXTURE_FPR}
    ]
    assert keys_cli(manifest, "list") == 0
    human = capsys.readouterr().out
    assert "pinned by the manifest as 'ci'" in human
    assert "'team-gpg' " + FIXTURE_FPR in human
    assert human.rstrip().endswith("1 signing key.")

    # Export the public key by the manifest's name: the same fingerprint as printed.
    assert keys_cli(manifest, "export", "ci") == 0
    exported = capsys.readouterr().out.encode()
    assert key_fingerprints(exported) == (fingerprint,)

    # Sign from that home; verify with a verifier pinned by the manifest (through its file).
    loaded = load_manifest(manifest)
    pinned = load_pinned_keys(loaded, read_url=_no_network)
    assert set(pinned) == {fingerprint, FIXTURE_FPR}
    signed = GpgSigner(gnupghome=home, fingerprint=fingerprint).clearsign(SPEC)
    with TrustPolicy.gpg({fingerprint: exported}) as verifier:
        verified = verifier.verify_clearsigned(signed, what="spec")
    assert (verified.signers[0].identity, verified.payload) == (fingerprint, SPEC)
    with TrustPolicy.gpg(pinned) as verifier:
        assert verifier.verify_clearsigned(signed, what="spec").signers[0].identity == fingerprint


def _no_network(url: str) -> bytes:
    raise AssertionError(f"no key should be read from a mirror here: {url}")


def test_without_a_manifest_and_in_a_named_home(
    base: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys can be made before the manifest exists; $RECONCILE_SIGNING_HOME is where generate
    puts them and where list and export look."""
    monkeypatch.setenv("RECONCILE_SIGNING_HOME", str(base / "signing"))
    manifest = base / "new" / "reconcile.toml"
    entry, _, notes = generate(manifest, capsys, "ci", "--algorithm", "rsa4096")
    assert f"Add this entry to {manifest}" in notes
    assert (base / "new" / "keys" / "ci.pub").is_file()
    assert mode(base / "signing") == 0o700
    assert not default_home(base).exists()
    (home,) = list_json(manifest, capsys)["homes"]
    assert home["origin"] == "$RECONCILE_SIGNING_HOME"
    assert home["keys"][0]["algorithm"] == "rsa4096"
    assert keys_cli(manifest, "export", entry["fingerprint"][-16:]) == 0
    assert key_fingerprints(capsys.readouterr().out.encode()) == (entry["fingerprint"],)


def test_secret_backup_is_private_and_restores_into_a_fresh_home(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(base / "proj")
    entry, _, _ = generate(manifest, capsys, "ci", "--email", "ci@example.org")
    backup = base / "backup" / "ci.secret.asc"
    previous = os.umask(0o022)
    try:
        assert keys_cli(manifest, "export", "ci", "--secret", "--out", str(backup)) == 0
    finally:
        os.umask(previous)
    out, err = capsys.readouterr()
    assert out == ""
    assert "warning:" in err
    assert "SECRET key" in err
    assert mode(backup) == 0o600
    assert backup.read_bytes().startswith(b"-----BEGIN PGP PRIVATE KEY BLOCK-----")
    with isolated_home() as fresh:
        imported = run_gpg(
            fresh, ["--pinentry-mode", "loopback", "--passphrase", "", "--import"],
            stdin=backup.read_bytes(), agent=True,
        )  # fmt: skip
        assert imported.returncode == 0, imported.stderr
        signer = GpgSigner(gnupghome=fresh, fingerprint=entry["fingerprint"])
        signed = signer.clearsign(SPEC)
    public = (base / "proj" / "keys" / "ci.pub").read_bytes()
    with TrustPolicy.gpg({entry["fingerprint"]: public}) as verifier:
        assert verifier.verify_clearsigned(signed, what="spec").payload == SPEC
    # A backup is never overwritten.
    err = failure(manifest, capsys, "export", "ci", "--secret", "--out", str(backup))
    assert "key-file-conflict" in err


# --- refusals ----------------------------------------------------------------------------------


def test_secret_export_needs_out_and_never_prints_the_key(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(base / "proj")
    generate(manifest, capsys, "ci", "--email", "ci@example.org")
    err = failure(manifest, capsys, "export", "ci", "--secret")
    assert "error[secret-out-required]" in err
    assert "PRIVATE KEY" not in err


def test_unknown_kind_lists_the_supported_ones(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(base / "proj")
    err = failure(manifest, capsys, "generate", "--kind", "ssh", "ci")
    assert "error[unsupported-key-kind]: unsupported key kind 'ssh': expected one of gpg" in err
    assert not default_home(base).exists()


def test_home_inside_a_declared_mirror_is_refused(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(base / "proj")
    inside = base / "proj" / "mirror" / "keys"
    err = failure(manifest, capsys, "generate", "ci", "--home", str(inside))
    assert "error[secret-in-mirror]" in err
    assert "inside mirror 'team'" in err
    assert not inside.exists()
    assert not (base / "proj" / "keys").exists()


def test_default_home_inside_a_binary_cache_is_refused(
    base: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manifest's folder is itself a mirror: no home anywhere in that tree."""
    manifest = write_manifest(base / "proj")
    (base / "proj" / "build_cache").mkdir()
    monkeypatch.setenv("XDG_DATA_HOME", str(base / "proj" / "data"))
    err = failure(manifest, capsys, "generate", "ci")
    assert "holds a binary cache" in err
    assert not (base / "proj" / "data").exists()


def test_secret_backup_inside_a_mirror_is_refused(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(base / "proj")
    generate(manifest, capsys, "ci", "--email", "ci@example.org")
    target = base / "proj" / "mirror" / "ci.asc"
    err = failure(manifest, capsys, "export", "ci", "--secret", "--out", str(target))
    assert "error[secret-in-mirror]" in err
    assert not target.exists()


def test_public_key_file_holding_another_key_is_not_overwritten(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(base / "proj")
    taken = base / "proj" / "keys" / "ci.pub"
    taken.parent.mkdir()
    shutil.copyfile(FIXTURE_KEY, taken)
    err = failure(manifest, capsys, "generate", "ci")
    assert f"holds key {FIXTURE_FPR}" in err
    assert not default_home(base).exists()  # refused before any key was made
    assert taken.read_bytes() == FIXTURE_KEY.read_bytes()
    # With another file, the key is made; exporting it over the fixture key is refused too.
    entry, _, _ = generate(manifest, capsys, "ci", "--public-out", str(base / "ci.pub"))
    assert entry["file"] == str(base / "ci.pub")  # outside the manifest's folder: absolute
    err = failure(manifest, capsys, "export", "ci", "--out", str(taken))
    assert "error[key-file-conflict]" in err
    assert taken.read_bytes() == FIXTURE_KEY.read_bytes()
    # Exporting over a file that already holds this very key is fine.
    assert keys_cli(manifest, "export", "ci", "--out", str(base / "ci.pub")) == 0
    assert "left as it is" in capsys.readouterr().err


def test_names_already_used_are_refused(base: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = write_manifest(base / "proj")
    err = failure(manifest, capsys, "generate", "team-gpg")
    assert "already has a [[key]] named 'team-gpg'" in err
    err = failure(manifest, capsys, "generate", "bad name")
    assert "error[bad-key-name]" in err
    generate(manifest, capsys, "ci", "--public-out", str(base / "one.pub"))
    err = failure(manifest, capsys, "generate", "ci", "--public-out", str(base / "two.pub"))
    assert "error[signing-key-exists]" in err
    assert not (base / "two.pub").exists()


def test_unknown_key_and_missing_home(base: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = write_manifest(base / "proj")
    assert keys_cli(manifest, "list") == 0
    listing = capsys.readouterr().out
    assert "0 signing keys." in listing
    assert "reconcile keys generate NAME" in listing
    err = failure(manifest, capsys, "export", "team-gpg")
    assert "error[signing-key-not-found]" in err
    assert FIXTURE_FPR in err
    err = failure(manifest, capsys, "list", "--home", str(base / "nowhere"))
    assert "error[signing-home-missing]" in err


def test_missing_gpg_is_reported_before_anything_is_made(
    base: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = write_manifest(base / "proj")
    monkeypatch.setenv("RECONCILE_GPG", str(base / "no-gpg"))
    err = failure(manifest, capsys, "generate", "ci")
    assert "error[gpg-missing]" in err
    assert not default_home(base).exists()
    assert "error[gpg-missing]" in failure(manifest, capsys, "list")


@pytest.mark.parametrize(
    "names_it",
    [
        '[[mirror]]\nname = "site"\nurl = "site"\nspecs = ["x"]\nsign_with = "ci"\n',
        '[[mirror]]\nname = "site"\nurl = "site"\n\n[[publish]]\nspecs = ["x"]\n'
        'mirror = "site"\nkey = "ci"\n',
        # sign_with as a list, the way [[publish]] key is written for rotation
        '[[mirror]]\nname = "site"\nurl = "site"\nspecs = ["x"]\nsign_with = ["ci"]\n',
        '[[mirror]]\nname = "site"\nurl = "site"\n\n[[publish]]\nspecs = ["x"]\n'
        'mirror = "site"\nkey = ["ci"]\n',
    ],
)
def test_generate_the_key_the_manifest_already_names(
    base: Path, capsys: pytest.CaptureFixture[str], names_it: str
) -> None:
    """Writing `sign_with = "ci"` (or `[[publish]] key`) first, then making the key, is the
    natural order; the then-missing [[key]] must not stop `keys generate ci`."""
    manifest = base / "site" / "reconcile.toml"
    manifest.parent.mkdir()
    manifest.write_text("version = 1\n\n" + names_it)
    entry, _, _ = generate(manifest, capsys, "ci")
    manifest.write_text(manifest.read_text() + "\n" + tomllib_dump_key(entry))
    assert main(["-m", str(manifest), "validate"]) == 0
    # Any other problem still stops it.
    manifest.write_text("version = 1\n\n" + names_it.replace('"ci"', '"other"'))
    assert keys_cli(manifest, "generate", "ci2") == 1
    assert "names key 'other'" in capsys.readouterr().err


def tomllib_dump_key(entry: dict[str, Any]) -> str:
    return "[[key]]\n" + "".join(f'{k} = "{v}"\n' for k, v in entry.items())
