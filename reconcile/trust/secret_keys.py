"""The signing (secret) keys of a GnuPG home: listing them, finding one, exporting it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import attrs

from reconcile.errors import ReconcileError
from reconcile.manifest.model import Key
from reconcile.reprs import fields_repr
from reconcile.trust.gnupg import agent_session, run_gpg
from reconcile.trust.signing_home import SigningHome, check_readable_home
from reconcile.trust.verify import normalize_fingerprint

NO_PASSPHRASE = ("--pinentry-mode", "loopback", "--passphrase", "")

# OpenPGP public-key algorithm ids (RFC 4880 and RFC 6637), as --with-colons reports them.
_RSA, _DSA, _ECDSA, _EDDSA = ("1", "2", "3"), "17", "19", "22"
_FULL_FINGERPRINT = re.compile(r"[0-9A-F]{40}|[0-9A-F]{64}")
_KEY_ID = re.compile(r"[0-9A-F]{16}|[0-9A-F]{8}")
_ESCAPE = re.compile(rb"\\x([0-9a-fA-F]{2})")


@attrs.frozen(kw_only=True)
class SigningKey:
    """A secret key in a GnuPG home, as ``gpg --list-secret-keys`` describes it."""

    __repr__ = fields_repr

    fingerprint: str  # primary key, upper-case hex
    uids: tuple[str, ...]
    created: datetime
    algorithm: str  # ed25519, rsa4096, nistp256, dsa2048, ...
    status: str  # usable, expired, revoked, offline (only a stub here), no-sign (cannot sign)

    @property
    def key_id(self) -> str:
        return self.fingerprint[-16:]

    @property
    def can_sign(self) -> bool:
        return self.status == "usable"

    def label(self) -> str:
        return f"{self.fingerprint} ({self.uids[0]})" if self.uids else self.fingerprint


@attrs.frozen(kw_only=True)
class FoundKey:
    __repr__ = fields_repr

    home: SigningHome
    key: SigningKey
    manifest_name: str | None  # the [[key]] entry that pins it, when looked up by that name


# --- listing -----------------------------------------------------------------------------


def _unescape(field: str) -> str:
    """gpg writes ':' and control characters in user ids as ``\\xNN``."""
    raw = _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), field.encode("utf-8"))
    return raw.decode("utf-8", "replace")


def _algorithm(fields: list[str]) -> str:
    algo, length, curve = fields[3], fields[2], fields[16] if len(fields) > 16 else ""
    if algo in _RSA:
        return f"rsa{length}"
    if algo == _DSA:
        return f"dsa{length}"
    if algo in (_ECDSA, _EDDSA) and curve:
        return curve
    return f"algorithm-{algo}"


def _status(fields: list[str]) -> str:
    validity, capabilities = fields[1], fields[11]
    serial_field = fields[14] if len(fields) > 14 else ""  # "+" secret here, "#" a stub
    if validity == "r":
        return "revoked"
    if validity == "e":
        return "expired"
    if serial_field == "#":
        return "offline"
    # Upper-case letters are what the key as a whole can do (its subkeys included).
    return "usable" if "S" in capabilities else "no-sign"


def parse_secret_listing(colons: str) -> tuple[SigningKey, ...]:
    """The keys in ``gpg --with-colons --fixed-list-mode --list-secret-keys`` output."""
    keys: list[SigningKey] = []
    primary: list[str] | None = None
    fingerprint = ""
    uids: list[str] = []

    def finish() -> None:
        if primary is not None and fingerprint:
            keys.append(
                SigningKey(
                    fingerprint=fingerprint,
                    uids=tuple(uids),
                    created=datetime.fromtimestamp(int(primary[5] or 0), tz=UTC),
                    algorithm=_algorithm(primary),
                    status=_status(primary),
                )
            )

    for line in colons.splitlines():
        fields = line.split(":")
        if fields[0] == "sec" and len(fields) > 11:
            finish()
            primary, fingerprint, uids = fields, "", []
        elif fields[0] == "fpr" and primary is not None and not fingerprint and len(fields) > 9:
            fingerprint = normalize_fingerprint(fields[9])
        elif fields[0] == "uid" and primary is not None and len(fields) > 9:
            uids.append(_unescape(fields[9]))
        elif fields[0] == "ssb" and not fingerprint:
            primary = None  # an ssb before the primary's fpr: not a shape gpg writes
    finish()
    return tuple(keys)


def _stderr(data: bytes) -> str:
    lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1] if lines else "no diagnostic from gpg"


def list_signing_keys(home: SigningHome) -> tuple[SigningKey, ...]:
    """The secret keys in ``home`` (which must exist)."""
    check_readable_home(home)
    with agent_session(home.path):
        result = run_gpg(
            home.path, ["--with-colons", "--fixed-list-mode", "--list-secret-keys"], agent=True
        )
    if result.returncode != 0:
        raise ReconcileError(
            f"gpg cannot list the keys in {home.describe()}: {_stderr(result.stderr)}",
            hint="check that the folder is a GnuPG home owned by this user (gpg refuses "
            "homes others can write to) and that gpg-agent can start there",
            reference="signing-home-unreadable",
        )
    return parse_secret_listing(result.stdout.decode("utf-8", "replace"))


# --- finding -------------------------------------------------------------------------------


def uid_name(uid: str) -> str:
    """``Name (comment) <mail>`` -> ``Name``."""
    return re.split(r" [(<]", uid, maxsplit=1)[0].strip()


def uid_email(uid: str) -> str:
    match = re.search(r"<([^<>]*)>\s*$", uid)
    return match.group(1) if match else ""


def _matches(key: SigningKey, selector: str) -> bool:
    compact = normalize_fingerprint(selector).removeprefix("0X")
    if _FULL_FINGERPRINT.fullmatch(compact):
        return key.fingerprint == compact
    if _KEY_ID.fullmatch(compact):
        return key.fingerprint.endswith(compact)
    return any(selector in (uid_name(uid), uid_email(uid), uid) for uid in key.uids)


def _searched(homes: Sequence[SigningHome]) -> str:
    return ", ".join(home.describe() for home in homes)


def find_signing_key(
    selector: str, *, homes: Sequence[SigningHome], manifest_keys: Sequence[Key] = ()
) -> FoundKey:
    """The one secret key that ``selector`` names: a manifest ``[[key]]`` name (its pinned
    fingerprint), a fingerprint or key id, or a user id's name or email.

    Homes that the user did not name and that do not exist are skipped.
    """
    pinned = next((key for key in manifest_keys if key.name == selector), None)
    wanted = normalize_fingerprint(pinned.fingerprint) if pinned is not None else selector
    found: dict[str, FoundKey] = {}
    searched = [home for home in homes if home.explicit or home.path.exists()]
    for home in searched:
        for key in list_signing_keys(home):
            if _matches(key, wanted) and key.fingerprint not in found:
                name = pinned.name if pinned is not None else None
                found[key.fingerprint] = FoundKey(home=home, key=key, manifest_name=name)
    if len(found) == 1:
        return next(iter(found.values()))
    if not found:
        what = (
            f"secret key {wanted} (pinned by the manifest's [[key]] '{selector}')"
            if pinned is not None
            else f"secret key matching {selector!r}"
        )
        where = _searched(searched) if searched else f"none of {_searched(homes)} exists"
        raise ReconcileError(
            f"found no {what}: searched {where}",
            hint="see the keys there with 'reconcile keys list', point at another home with "
            "--home (or $RECONCILE_SIGNING_HOME), or import the key with "
            "'gpg --homedir DIR --import secret.asc'",
            reference="signing-key-not-found",
        )
    candidates = "; ".join(f"{f.key.label()} in {f.home.path}" for f in found.values())
    raise ReconcileError(
        f"{selector!r} names {len(found)} secret keys: {candidates}",
        hint="pass the full fingerprint of the one you mean",
        reference="signing-key-ambiguous",
    )


# --- exporting ------------------------------------------------------------------------------


def export_public_key(home: Path, fingerprint: str) -> bytes:
    """The armored public key ``fingerprint`` from ``home``."""
    result = run_gpg(home, ["--armor", "--export", "--", fingerprint])
    if result.returncode != 0 or b"-----BEGIN PGP PUBLIC KEY BLOCK-----" not in result.stdout:
        raise ReconcileError(
            f"gpg could not export the public key {fingerprint} from {home}: "
            f"{_stderr(result.stderr)}",
            hint=f"check the key with 'gpg --homedir {home} --list-keys {fingerprint}'",
            reference="key-export-failed",
        )
    return result.stdout


def export_secret_key(home: Path, fingerprint: str) -> bytes:
    """The armored secret key ``fingerprint`` from ``home``. Only keys without a passphrase
    can be exported here: reconcile never asks for one."""
    with agent_session(home):
        result = run_gpg(
            home, [*NO_PASSPHRASE, "--armor", "--export-secret-keys", "--", fingerprint], agent=True
        )
    if result.returncode != 0 or b"-----BEGIN PGP PRIVATE KEY BLOCK-----" not in result.stdout:
        raise ReconcileError(
            f"gpg could not export the secret key {fingerprint} from {home}: "
            f"{_stderr(result.stderr)}",
            hint="a key with a passphrase must be exported by gpg itself, which asks for it: "
            f"gpg --homedir {home} --armor --export-secret-keys {fingerprint} > FILE",
            reference="key-export-failed",
        )
    return result.stdout
