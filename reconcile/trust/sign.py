"""Clear-signing metadata with a GnuPG secret key, as ``spack buildcache push --key`` does."""

from __future__ import annotations

import re
from pathlib import Path

from reconcile.errors import ReconcileError
from reconcile.trust.gnupg import AgentLease, agent_session, run_gpg
from reconcile.trust.verify import normalize_fingerprint

# v4 keys have 40 hex digits; v5 keys (newer GnuPG) 64.
_FINGERPRINT = re.compile(r"[0-9A-F]{40}(?:[0-9A-F]{24})?")


def _normalized_fingerprint(fingerprint: str) -> str:
    compact = normalize_fingerprint(fingerprint)
    if not _FINGERPRINT.fullmatch(compact):
        raise ReconcileError(
            f"{fingerprint!r} is not a GnuPG fingerprint: expected 40 hex digits",
            hint="list the keys with `gpg --list-secret-keys --with-colons` and copy the fpr field",
            reference="bad-fingerprint",
        )
    return compact


def _stderr(result_stderr: bytes) -> str:
    return result_stderr.decode("utf-8", "replace").strip()


class GpgSigner:
    """Signs with the secret key ``fingerprint`` from the GnuPG home ``gnupghome``."""

    def __init__(self, *, gnupghome: Path, fingerprint: str) -> None:
        self.gnupghome = gnupghome
        self.fingerprint = _normalized_fingerprint(fingerprint)
        # Signing needs the agent; the one it starts ends with this signer (or at exit).
        self._agent = AgentLease(self, gnupghome) if gnupghome.is_dir() else None
        try:
            self._check_secret_key()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop the gpg-agent this signer started (safe to call twice)."""
        if self._agent is not None:
            self._agent.release()

    def _check_secret_key(self) -> None:
        if not self.gnupghome.is_dir():
            raise ReconcileError(
                f"the GnuPG home {self.gnupghome} does not exist: expected a folder holding "
                f"the secret key {self.fingerprint}",
                hint="point gnupghome at the folder where the signing key was generated or "
                "imported (gpg --homedir DIR --import secret.asc)",
                reference="signing-key-missing",
            )
        result = run_gpg(
            self.gnupghome,
            ["--with-colons", "--list-secret-keys", "--", self.fingerprint],
            agent=True,
        )
        # "sec" lists a primary secret key; "sec#" style stubs (secret part offline) show as
        # "#" in field 15, and gpg cannot sign with those either.
        usable = [
            line
            for line in result.stdout.decode("utf-8", "replace").splitlines()
            if line.startswith("sec:") and line.split(":")[14:15] != ["#"]
        ]
        if result.returncode != 0 or not usable:
            raise ReconcileError(
                f"no usable secret key {self.fingerprint} in the GnuPG home {self.gnupghome}",
                hint="import the secret key into that home (gpg --homedir DIR --import "
                "secret.asc) or pass the fingerprint of a key listed by "
                "`gpg --homedir DIR --list-secret-keys`",
                reference="signing-key-missing",
            )

    def clearsign(self, data: bytes) -> bytes:
        """``data`` clear-signed (armored, ``Hash: SHA512``), as Spack signs ``spec.json``."""
        result = run_gpg(
            self.gnupghome,
            [
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
                "--digest-algo",
                "SHA512",
                "--local-user",
                self.fingerprint,
                "--clearsign",
            ],
            stdin=data,
            agent=True,
        )
        if result.returncode != 0 or not result.stdout.startswith(b"-----BEGIN PGP SIGNED"):
            raise ReconcileError(
                f"gpg could not sign with key {self.fingerprint}: {_stderr(result.stderr)}",
                hint="the key must be a signing key without a passphrase (or with the agent "
                "already unlocked); check it with `gpg --homedir DIR --list-secret-keys`",
                reference="signing-failed",
            )
        return result.stdout

    def public_key(self) -> bytes:
        """The armored public key, to publish next to the signatures."""
        result = run_gpg(self.gnupghome, ["--armor", "--export", "--", self.fingerprint])
        if result.returncode != 0 or b"BEGIN PGP PUBLIC KEY BLOCK" not in result.stdout:
            raise ReconcileError(
                f"gpg could not export the public key {self.fingerprint}: "
                f"{_stderr(result.stderr) or 'no output'}",
                hint="check the key with `gpg --homedir DIR --list-keys`",
                reference="signing-failed",
            )
        return result.stdout


def generate_key(gnupghome: Path, name: str, email: str, *, algorithm: str = "ed25519") -> str:
    """Create a passphrase-less signing key in ``gnupghome``; returns its fingerprint.

    For tests, examples and throw-away CI keys: ``algorithm`` is ``ed25519`` (fast) or
    ``rsa4096`` (what ``spack gpg create`` makes).
    """
    key_params = {
        "ed25519": "Key-Type: EDDSA\nKey-Curve: ed25519\n",
        "rsa4096": "Key-Type: RSA\nKey-Length: 4096\n",
    }
    if algorithm not in key_params:
        raise ReconcileError(
            f"unknown key algorithm {algorithm!r}: expected one of {', '.join(key_params)}",
            reference="bad-key-algorithm",
        )
    if any(c in name + email for c in "\n<>") or "@" not in email:
        raise ReconcileError(
            f"cannot make a user id from name {name!r} and email {email!r}",
            hint="use a plain name and an address such as ci@example.org",
            reference="bad-key-user-id",
        )
    params = (
        "%no-protection\n"
        + key_params[algorithm]
        + "Key-Usage: sign\n"
        + f"Name-Real: {name}\nName-Email: {email}\nExpire-Date: 0\n%commit\n"
    )
    gnupghome.mkdir(mode=0o700, parents=True, exist_ok=True)
    with agent_session(gnupghome):
        result = run_gpg(
            gnupghome, ["--status-fd", "1", "--gen-key"], stdin=params.encode(), agent=True
        )
    for line in result.stdout.decode("utf-8", "replace").splitlines():
        # "[GNUPG:] KEY_CREATED P <fingerprint>"
        fields = line.split()
        if fields[:2] == ["[GNUPG:]", "KEY_CREATED"] and len(fields) >= 4:
            return fields[3].upper()
    raise ReconcileError(
        f"gpg did not create a key in {gnupghome}: {_stderr(result.stderr)}",
        hint="check that the folder is writable and that gpg-agent can start there "
        "(its socket path must be shorter than about 100 characters)",
        reference="key-generation-failed",
    )
