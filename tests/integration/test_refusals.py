"""Refusals: every bad input ends in a clear error and an install root left as it was."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FIXTURE_FPR, GREETLIB_HASH, HELLO_HASH
from support import run, snapshot, write_manifest

from reconcile.trust.gnupg import stop_agent

GREETLIB_TARBALL = (
    "build_cache/linux-debian12-x86_64_v4/gcc-12.2.0/greetlib-2.1/"
    f"linux-debian12-x86_64_v4-gcc-12.2.0-greetlib-2.1-{GREETLIB_HASH}.spack"
)
GREETLIB_SIG = (
    f"build_cache/linux-debian12-x86_64_v4-gcc-12.2.0-greetlib-2.1-{GREETLIB_HASH}.spec.json.sig"
)


@pytest.fixture(scope="module")
def other_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    """A throwaway GnuPG key: (fingerprint, public key file, GNUPGHOME with the secret)."""
    home = tmp_path_factory.mktemp("gpg")
    home.chmod(0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--no-tty"]
    subprocess.run(
        [
            *gpg,
            "--passphrase",
            "",
            "--quick-gen-key",
            "Other <other@example.invalid>",
            "ed25519",
            "sign",
            "never",
        ],
        check=True,
        capture_output=True,
    )
    colons = subprocess.run(
        [*gpg, "--with-colons", "--list-keys"], check=True, capture_output=True, text=True
    ).stdout
    fpr = next(line.split(":")[9] for line in colons.splitlines() if line.startswith("fpr:"))
    pub = home / "other.pub"
    pub.write_bytes(
        subprocess.run([*gpg, "--armor", "--export", fpr], check=True, capture_output=True).stdout
    )
    yield fpr, pub, home
    stop_agent(home)  # the key generation and the tests' signing started it


def refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], **options: object) -> str:
    """Apply a manifest expected to fail; return stderr after checking the root is intact."""
    root = tmp_path / "opt"
    root.mkdir(parents=True, exist_ok=True)
    (root / "keep.txt").write_text("the user's own file\n")
    before = snapshot(root)
    manifest = write_manifest(tmp_path, **options)
    assert run(manifest, "apply", "--yes") == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    # The install root's state folder and lock file stay (they are never removed), and with
    # them the folders of a nested install root; nothing else changed.
    install_root = Path(str(options.get("root", "opt")))
    kept = {
        str(install_root.relative_to("opt") / name) for name in (".reconcile", ".reconcile/lock")
    }
    kept |= {str(p) for p in install_root.relative_to("opt").parents if str(p) != "."}
    if str(install_root) != "opt":
        kept.add(str(install_root.relative_to("opt")))
    assert {k: v for k, v in snapshot(root).items() if k not in kept} == before
    assert (
        not list((root / ".reconcile" / "records").glob("*.json"))
        if (root / ".reconcile" / "records").exists()
        else True
    )
    return err


def test_tarball_with_one_byte_changed(
    tmp_path: Path, signed_cache_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tarball = signed_cache_copy / GREETLIB_TARBALL
    data = bytearray(tarball.read_bytes())
    data[len(data) // 2] ^= 0x01
    tarball.write_bytes(bytes(data))
    err = refused(tmp_path, capsys, mirror=signed_cache_copy)
    assert "greetlib@2.1/yrhiacw" in err
    assert "does not match its signed metadata" in err
    assert "'team'" in err


def test_signature_with_one_byte_changed(
    tmp_path: Path, signed_cache_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sig = signed_cache_copy / GREETLIB_SIG
    text = sig.read_text()
    assert '"version":"2.1"' in text
    sig.write_text(text.replace('"version":"2.1"', '"version":"2.2"', 1))
    err = refused(tmp_path, capsys, mirror=signed_cache_copy)
    assert "greetlib" in err
    assert "signature" in err.lower()


def test_signer_not_pinned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], other_key: tuple[str, Path, Path]
) -> None:
    fpr, pub, _ = other_key
    err = refused(tmp_path, capsys, key_file=pub, fingerprint=fpr)
    assert "not pinned" in err or "not trusted" in err or "pin" in err
    assert FIXTURE_FPR[-16:] in err or FIXTURE_FPR in err


def test_mirror_key_with_other_fingerprint(
    tmp_path: Path,
    signed_cache_copy: Path,
    capsys: pytest.CaptureFixture[str],
    other_key: tuple[str, Path, Path],
) -> None:
    _, pub, _ = other_key
    published = signed_cache_copy / "build_cache" / "_pgp" / f"{FIXTURE_FPR}.pub"
    published.write_bytes(pub.read_bytes())
    err = refused(tmp_path, capsys, mirror=signed_cache_copy, key_source="mirror:team")
    assert FIXTURE_FPR in err
    assert other_key[0] in err


def test_c_string_that_would_have_to_grow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long_root = "r" * 40 + "/" + "s" * 60 + "/" + "t" * 60
    err = refused(tmp_path, capsys, root=f"opt/{long_root}")
    assert "grow" in err
    assert "padded_length" in err


def test_ambiguous_selector_lists_candidates(
    tmp_path: Path, signed_cache_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index_path = signed_cache_copy / "build_cache" / "index.json"
    index = json.loads(index_path.read_text())
    installs = index["database"]["installs"]
    twin = json.loads(json.dumps(installs[HELLO_HASH]))
    twin_hash = "a" * 32
    twin["spec"]["hash"] = twin_hash
    twin["spec"]["version"] = "3.0.1"
    installs[twin_hash] = twin
    index_path.write_text(json.dumps(index))
    (index_path.parent / "index.json.hash").unlink()
    err = refused(tmp_path, capsys, mirror=signed_cache_copy, specs=["hello-app@3.0"])
    assert "matches 2 specs" in err
    assert "hello-app@3.0/d7r6xmz" in err
    assert "hello-app@3.0.1/aaaaaaa" in err
