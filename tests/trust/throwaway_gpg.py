"""Throwaway GnuPG signers for tests: real keys made in a temporary GNUPGHOME.

ed25519 keys take milliseconds to make, so every test can have signers of its own.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from reconcile.trust.gnupg import run_gpg

NO_PASSPHRASE = ("--pinentry-mode", "loopback", "--passphrase", "")


@attrs.frozen(kw_only=True)
class Signer:
    home: Path
    fingerprint: str  # primary key
    uid: str

    def public_key(self) -> bytes:
        return gpg(self.home, "--armor", "--export", self.fingerprint)

    def clearsign(self, data: bytes, *, extra: tuple[str, ...] = ()) -> bytes:
        """Clear-sign ``data`` with this key (its newest signing subkey, if it has one)."""
        return gpg(
            self.home,
            *NO_PASSPHRASE,
            "--local-user",
            self.fingerprint,
            *extra,
            "--clearsign",
            stdin=data,
        )


def gpg(home: Path, *args: str, stdin: bytes | None = None) -> bytes:
    """gpg with the agent allowed (tests make and use secret keys): the home's owner stops it
    (``isolated_home`` does; tests/conftest.py kills what is left under the test folders)."""
    result = run_gpg(home, args, stdin=stdin, agent=True)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def make_signer(
    home: Path,
    uid: str,
    *,
    expire: str = "never",
    faked_time: str | None = None,
    signing_subkey: bool = False,
) -> Signer:
    """A new ed25519 key; ``faked_time`` (``20200101T000000``) backdates its creation."""
    when = ("--faked-system-time", faked_time) if faked_time else ()
    gpg(home, *NO_PASSPHRASE, *when, "--quick-gen-key", uid, "ed25519", "sign", expire)
    colons = gpg(home, "--with-colons", "--list-keys", uid).decode()
    fingerprint = next(
        line.split(":")[9] for line in colons.splitlines() if line.startswith("fpr:")
    )
    if signing_subkey:
        gpg(home, *NO_PASSPHRASE, "--quick-add-key", fingerprint, "ed25519", "sign", "never")
    return Signer(home=home, fingerprint=fingerprint, uid=uid)


def revoke(signer: Signer) -> None:
    """Import the revocation certificate gpg wrote when it made the key."""
    certificate = (signer.home / "openpgp-revocs.d" / f"{signer.fingerprint}.rev").read_text()
    # gpg prefixes the armor line with ':' so that the file is not imported by accident.
    certificate = certificate.replace(
        ":-----BEGIN PGP PUBLIC KEY BLOCK-----", "-----BEGIN PGP PUBLIC KEY BLOCK-----"
    )
    gpg(signer.home, "--import", stdin=certificate.encode())


def subkey_fingerprints(signer: Signer) -> list[str]:
    colons = gpg(signer.home, "--with-colons", "--list-keys", signer.fingerprint).decode()
    lines = colons.splitlines()
    return [
        lines[i + 1].split(":")[9]
        for i, line in enumerate(lines)
        if line.startswith("sub:") and i + 1 < len(lines)
    ]
