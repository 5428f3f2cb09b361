"""The GnuPG signature scheme: clear-signed metadata (and detached signatures) checked against
pinned keys, in a private GnuPG home. Only ``reconcile.trust.policy`` constructs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import weakref
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from reconcile.errors import VerificationError
from reconcile.trust.clearsign import CLEARSIGN_HEADER, starts_clearsigned
from reconcile.trust.gnupg import (
    create_isolated_home,
    isolated_home,
    remove_isolated_home,
    run_gpg,
)
from reconcile.trust.gpg_batch import GroupRunner, split_by_file
from reconcile.trust.gpg_status import ERRSIG_NO_PUBKEY, GpgStatus, StatusLine, parse_status
from reconcile.trust.signers import Signer
from reconcile.trust.signers import normalize_fingerprint as normalize_fingerprint

# OpenPGP hash algorithm ids too weak to trust a signature made with them: MD5, SHA-1, RIPEMD-160.
WEAK_HASH_ALGORITHMS = {"1": "MD5", "2": "SHA-1", "3": "RIPEMD-160"}

_PLAINTEXTS = {0: "a detached signature", 1: "one signed text"}

PIN_HINT = (
    "if you trust this signer, pin its fingerprint in a [[key]] entry of the manifest; "
    "otherwise this mirror's binaries cannot be used"
)
TAMPER_HINT = (
    "the file was changed after it was signed, or damaged in transit: fetch it again, and if "
    "the error persists do not use this mirror until its owner re-signs the spec"
)


def key_fingerprints(armored: bytes) -> tuple[str, ...]:
    """Primary-key fingerprints in an armored public key block (isolated GNUPGHOME).

    An empty tuple when the data holds no OpenPGP key at all.
    """
    with isolated_home() as home:
        result = run_gpg(home, ["--with-colons", "--show-keys"], stdin=armored)
    return _primary_fingerprints(result.stdout.decode("utf-8", "replace"))


def _primary_fingerprints(colons: str) -> tuple[str, ...]:
    """The ``fpr`` record that follows each ``pub`` record of ``--with-colons`` output."""
    found: list[str] = []
    after_primary = False
    for line in colons.splitlines():
        fields = line.split(":")
        if fields[0] == "pub":
            after_primary = True
        elif fields[0] == "fpr" and after_primary and len(fields) > 9:
            found.append(normalize_fingerprint(fields[9]))
            after_primary = False
        elif fields[0] in ("sub", "sec", "ssb"):
            after_primary = False
    return tuple(found)


class GpgVerifier:
    """Accepts only valid signatures whose primary-key fingerprint is pinned (an
    ``EnvelopeScheme``: ``open`` for clear-signed documents, ``verify`` for detached ones)."""

    scheme = "gpg"

    def __init__(self, *, pinned: Mapping[str, bytes]) -> None:
        """``pinned`` maps each trusted fingerprint to its armored public key (already checked
        to carry that fingerprint)."""
        self._pinned = frozenset(normalize_fingerprint(fpr) for fpr in pinned)
        self._home: Path | None = create_isolated_home()
        # Removes the keyring even when a caller forgets close() (and at interpreter exit).
        self._finalizer = weakref.finalize(self, remove_isolated_home, self._home)
        # Documents opened by several threads at once share one gpg process (gpg_batch.py).
        self._group: GroupRunner[tuple[bytes, str], tuple[bytes, Signer]] = GroupRunner(
            lambda items: self._open_many([document for document, _ in items]),
            lambda item: self._open_one(*item),
        )
        try:
            self._import(pinned)
        except BaseException:
            self.close()
            raise

    @property
    def pinned(self) -> frozenset[str]:
        return self._pinned

    def __enter__(self) -> GpgVerifier:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._home = None
        self._finalizer()

    def _require_home(self) -> Path:
        if self._home is None:
            raise RuntimeError("GpgVerifier used after close()")
        return self._home

    def _import(self, pinned: Mapping[str, bytes]) -> None:
        home = self._require_home()
        for fingerprint, armored in pinned.items():
            result = run_gpg(home, ["--import"], stdin=armored)
            if normalize_fingerprint(fingerprint) not in _listed_primaries(home):
                raise VerificationError(
                    f"pinned key {normalize_fingerprint(fingerprint)} is not in the key material "
                    f"given for it (gpg: {_last_line(result.stderr)})",
                    hint="check the [[key]] entry: its file or mirror key must hold the "
                    "OpenPGP public key with this fingerprint",
                )
        # A key file may carry other keys besides the pinned one; they must not verify anything.
        for extra in sorted(set(_listed_primaries(home)) - self._pinned):
            run_gpg(home, ["--yes", "--delete-keys", extra])

    def open(self, document: bytes, *, what: str) -> tuple[bytes, Signer]:
        """The signed text of a clear-signed ``document`` (as GnuPG output it: this, not the
        armored input, is what callers parse) and its signer. ``what`` names the document in
        errors. ``VerificationError`` for a bad, unknown-key, unpinned or missing signature."""
        if not starts_clearsigned(document):
            raise VerificationError(
                f"{what}: not a clear-signed document (expected it to begin with "
                f"'{CLEARSIGN_HEADER.decode()}')",
                hint=TAMPER_HINT,
            )
        return self._group.submit((document, what))

    def _open_one(self, document: bytes, what: str) -> tuple[bytes, Signer]:
        """One gpg process for ``document``: its judgement and message are final."""
        result, status = self._run(["--output", "-", "--decrypt"], stdin=document)
        signer = self._judge(status, result.returncode, result.stderr, what=what, plaintexts=1)
        return result.stdout, signer

    def _open_many(self, documents: Sequence[bytes]) -> list[tuple[bytes, Signer] | None]:
        """One ``gpg --decrypt --multifile`` over ``documents``: for each, its signed text
        and signer when its share of the status stream passes ``_judge`` as a run of its own
        would (gpg exited 0, so no document had an error); None otherwise (decided alone)."""
        home = self._require_home()
        folder = Path(tempfile.mkdtemp(prefix="batch-", dir=home))
        try:
            names = []
            for number, document in enumerate(documents):
                path = folder / f"d{number}.asc"  # gpg writes the signed text to d<number>
                path.write_bytes(document)
                names.append(str(path))
            status_path = folder / "status"
            result = run_gpg(
                home,
                [
                    "--trust-model",
                    "always",
                    "--status-file",
                    str(status_path),
                    "--decrypt",
                    "--multifile",
                    *names,
                ],
            )
            sections = split_by_file(status_path.read_text("utf-8", "replace"), names)
            if result.returncode != 0 or sections is None:
                return [None] * len(documents)
            opened: list[tuple[bytes, Signer] | None] = []
            for name, section in zip(names, sections, strict=True):
                try:
                    signer = self._judge(parse_status(section), 0, b"", what="", plaintexts=1)
                    opened.append((Path(name).with_suffix("").read_bytes(), signer))
                except (VerificationError, OSError):
                    opened.append(None)
            return opened
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def verify(self, message: bytes, signature: bytes, *, what: str) -> Signer:
        """The signer of a detached ``signature`` over ``message``."""
        home = self._require_home()
        handle, signature_name = tempfile.mkstemp(prefix="signature-", dir=home)
        with os.fdopen(handle, "wb") as out:
            out.write(signature)
        try:
            result, status = self._run(["--verify", signature_name, "-"], stdin=message)
        finally:
            Path(signature_name).unlink(missing_ok=True)
        # A detached signature carries no text: a signed message given as the "signature"
        # would otherwise be verified on its own, whatever ``message`` is.
        return self._judge(status, result.returncode, result.stderr, what=what, plaintexts=0)

    def _run(
        self, args: list[str], *, stdin: bytes
    ) -> tuple[subprocess.CompletedProcess[bytes], GpgStatus]:
        home = self._require_home()
        handle, status_name = tempfile.mkstemp(prefix="status-", dir=home)
        os.close(handle)
        status_path = Path(status_name)
        try:
            result = run_gpg(
                home,
                ["--trust-model", "always", "--status-file", str(status_path), *args],
                stdin=stdin,
            )
            return result, parse_status(status_path.read_text("utf-8", "replace"))
        finally:
            status_path.unlink(missing_ok=True)

    def _judge(
        self, status: GpgStatus, returncode: int, stderr: bytes, *, what: str, plaintexts: int
    ) -> Signer:
        """The signer when the outcome is acceptable (one good signature by a pinned key over
        ``plaintexts`` signed texts), else raise."""
        results = status.signature_results()
        for line in results:
            _refuse_bad_result(line, what=what)
        signatures = max(len(results), status.count("NEWSIG"))
        if signatures > 1:
            raise VerificationError(
                f"{what}: expected exactly one signature, found {signatures}",
                hint=TAMPER_HINT,
            )
        valid = status.all("VALIDSIG")
        if not results or status.count("GOODSIG") != 1 or len(valid) != 1:
            raise VerificationError(
                f"{what}: the document carries no valid signature ({_last_line(stderr)})",
                hint=TAMPER_HINT,
            )
        if status.count("PLAINTEXT") != plaintexts:
            raise VerificationError(
                f"{what}: expected {_PLAINTEXTS[plaintexts]}, gpg found "
                f"{status.count('PLAINTEXT')} signed texts",
                hint=TAMPER_HINT,
            )
        if returncode != 0:
            raise VerificationError(
                f"{what}: gpg reported an error after the signature ({_last_line(stderr)})",
                hint=TAMPER_HINT,
            )
        validsig = valid[0]
        hash_algorithm = validsig.arg(7) or ""
        if hash_algorithm in WEAK_HASH_ALGORITHMS:
            raise VerificationError(
                f"{what}: signed with the weak hash {WEAK_HASH_ALGORITHMS[hash_algorithm]}",
                hint="ask the mirror's owner to re-sign with SHA-256 or stronger",
            )
        # Field 10 is the primary key's fingerprint; a subkey's signature maps to its primary.
        primary = normalize_fingerprint(validsig.arg(9) or validsig.arg(0) or "")
        if primary not in self._pinned:
            raise VerificationError(
                f"{what}: signed by key {primary}, which the manifest does not pin",
                hint=PIN_HINT,
            )
        return Signer(scheme=self.scheme, identity=primary, signed_at=_signature_time(validsig))


def _signature_time(validsig: StatusLine) -> datetime | None:
    """VALIDSIG's signature timestamp: seconds since the epoch, or ISO 8601 (``...T...``)."""
    stamp = validsig.arg(2) or ""
    try:
        if stamp.isdigit():
            return datetime.fromtimestamp(int(stamp), tz=UTC)
        return datetime.strptime(stamp, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def _refuse_bad_result(line: StatusLine, *, what: str) -> None:
    signer = line.arg(0) or "?"
    if line.keyword == "BADSIG":
        raise VerificationError(
            f"{what}: BAD signature by key {signer}: the signed text does not match it",
            hint=TAMPER_HINT,
        )
    if line.keyword == "ERRSIG":
        # The issuer fingerprint (field 8) is there when the signature carries it.
        fingerprint = normalize_fingerprint(line.arg(6) or "-")
        issuer = f"with key id {signer}" if fingerprint == "-" else fingerprint
        if line.arg(5) == ERRSIG_NO_PUBKEY:
            raise VerificationError(
                f"{what}: signed by key {issuer}, which the manifest does not pin "
                "(the manifest must pin it to accept this signature)",
                hint=PIN_HINT,
            )
        raise VerificationError(
            f"{what}: the signature by key {issuer} cannot be checked "
            f"(gpg error code {line.arg(5)})",
            hint="the signature uses an algorithm this gpg does not support, or is malformed",
        )
    if line.keyword == "EXPKEYSIG":
        raise VerificationError(
            f"{what}: signed by key {signer}, which has expired",
            hint="ask the mirror's owner to re-sign with a current key and pin that key",
        )
    if line.keyword == "REVKEYSIG":
        raise VerificationError(
            f"{what}: signed by key {signer}, which its owner has revoked",
            hint="do not use binaries signed by this key; pin the key that replaced it",
        )
    if line.keyword == "EXPSIG":
        raise VerificationError(
            f"{what}: the signature by key {signer} has expired",
            hint="ask the mirror's owner to re-sign the spec",
        )


def _listed_primaries(home: Path) -> tuple[str, ...]:
    result = run_gpg(home, ["--with-colons", "--fingerprint", "--list-keys"])
    return _primary_fingerprints(result.stdout.decode("utf-8", "replace"))


def _last_line(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line]
    return lines[-1] if lines else "no diagnostic from gpg"
