"""The error hierarchy: every user-facing failure is a ``ReconcileError``.

Each error carries a stable kebab-case ``reference`` (for scripts and docs), a message that
says what was found and what was expected, and an optional hint that says what to do next.
The CLI catches ``ReconcileError`` in exactly one place and prints ``diagnostics()``; anything
else escaping is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from reconcile.reprs import fields_repr


class ReconcileError(Exception):
    """Base of every error reconcile reports to a user."""

    reference: str = "reconcile-error"

    def __init__(self, message: str, *, hint: str | None = None, reference: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if reference is not None:
            self.reference = reference

    def add_context(self, context: str) -> ReconcileError:
        """Say what was being done (``context: message``); returns self, to re-raise."""
        self.message = f"{context}: {self.message}"
        self.args = (self.message,)
        return self

    def diagnostics(self) -> str:
        """The text shown to a person: message, then the hint on its own line."""
        text = f"error[{self.reference}]: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


@attrs.frozen(kw_only=True)
class Problem:
    """One located problem in a file the user wrote (a manifest, a lock file, a saved plan)."""

    __repr__ = fields_repr

    file: str
    line: int  # 1-based; 0 when the position is unknown
    column: int  # 1-based; 0 when the position is unknown
    path: str  # key path such as ``mirror[1].url``; empty for the whole document
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ManifestError(ReconcileError):
    """The manifest is malformed; ``problems`` lists every problem found, in file order."""

    reference = "invalid-manifest"

    what = "the manifest"

    def __init__(self, problems: Sequence[Problem], *, hint: str | None = None):
        self.problems = tuple(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in {self.what}"
        super().__init__(head + "\n" + "\n".join(f"  {p}" for p in self.problems), hint=hint)


class LockFileError(ManifestError):
    """The lock file (``reconcile.lock``) is not JSON or not a lock; ``problems`` are located
    like a manifest's."""

    reference = "invalid-lock"
    what = "the lock file"


class TransportError(ReconcileError):
    """A mirror could not be read. Messages carry the URL with credentials masked."""

    reference = "transport-error"


class NotFoundError(TransportError):
    """The mirror answered, but the file is not there."""

    reference = "not-found"


class MirrorUnreachableError(TransportError):
    """The mirror did not answer at all (refused, timed out, no such host): the run skips it
    from then on instead of paying a timeout per file."""

    reference = "mirror-unreachable"


class VerificationError(ReconcileError):
    """A signature, key or checksum did not verify: nothing from that source is used."""

    reference = "verification-failed"


class ArchiveError(ReconcileError):
    """A tarball holds something that must never be unpacked (escape, device file, ...)."""

    reference = "unsafe-archive"


class RelocationError(ReconcileError):
    """A prefix cannot be relocated (for example a C string would have to grow)."""

    reference = "relocation-impossible"


class PlanError(ReconcileError):
    """The manifest cannot be satisfied from the mirrors (missing or ambiguous selector, ...)."""

    reference = "plan-failed"


class StalePlanError(ReconcileError):
    """A saved plan no longer matches what is on disk or in the mirrors."""

    reference = "stale-plan"


class LockWaitedError(StalePlanError):
    """The run waited for another run's lock: the tree may have changed since its plan."""


class ApplyError(ReconcileError):
    """Applying a plan failed; nothing of that run was committed."""

    reference = "apply-failed"


# Every reference reconcile raises, with its one-line meaning. docs/cli.md's error table is
# generated from this (tests/structure/test_error_references.py keeps both in step).
REFERENCES: Mapping[str, str] = {
    "apply-failed": "applying a plan failed on disk; nothing of that run was committed",
    "apply-running": "`plan` could not judge prefixes a running `apply` is installing",
    "bad-buildpath": "a prefix to publish is not inside the install tree given as its build path",
    "bad-docker-config": "Docker's config.json is unreadable, or keeps the credentials in a helper",
    "bad-ed25519-key": "an ed25519 `[[key]]` is not a '<name>:<base64>' public key of 32 bytes",
    "bad-elf": "a file that starts like ELF is damaged, so it cannot be relocated",
    "bad-fingerprint": "a signing key was named by something that is not a 40-digit fingerprint",
    "bad-key-algorithm": "`keys generate` was given a key algorithm it does not know",
    "bad-key-name": "`keys generate` was given a key name that cannot name a `[[key]]`",
    "bad-key-user-id": "a key's name or email cannot form an OpenPGP user id",
    "bad-oci-document": "an OCI registry serves a manifest whose digests reconcile cannot verify",
    "bad-oci-url": "a URL is not oci://host[:port]/repository (or oci+http://)",
    "bad-prefix": "a prefix to pack is not a normalized absolute path",
    "bad-public-key": "a public key to publish holds no key or more than one",
    "bad-relocation-list": "a tarball's list of files to relocate is malformed",
    "bad-sigstore-root": "a sigstore `[[key]]`'s trusted root is not a Sigstore trusted_root.json",
    "bad-spec": "a spec document to publish is not a concrete spec",
    "bad-tarball": "a tarball to publish is not gzip-compressed",
    "bundle-refused": "a bundle cannot be exported, or is refused on import",
    "cache-gc-unavailable": "`cache gc` cannot tell which tarballs the manifest still needs",
    "locale-encoding": "a path or message cannot be written in the locale's encoding "
    "(a strict ASCII locale)",
    "cannot-grow-string": "relocation would make a string in a binary longer than its room",
    "prefix-longer-than-built": "a new prefix is longer than the one its package was built in "
    "([install] strict_relocation)",
    "checksum-mismatch": "a downloaded file's sha256 differs from its signed metadata",
    "confirmation-needed": "`apply` without a terminal, `--yes` or a saved plan",
    "corrupt-record": "an install record cannot be read (the hint says how to move it aside)",
    "credentials-over-http": "signed S3 requests to a plain-http endpoint that is not loopback",
    "dependency-cycle": "a spec's signed metadata makes it depend on itself, directly or not",
    "disk-error": "a disk operation on the install root failed",
    "disk-full": "a filesystem reconcile writes to is full (or over quota); the path is named",
    "external-not-allowed": "a signed spec names an external outside [install] externals (or /)",
    "gpg-missing": "GnuPG is not installed or cannot run",
    "identity-mismatch": "what names one spec hash (signed metadata, index, file name) disagrees",
    "install-root-locked": "another run held the install root's lock past `--lock-timeout`",
    "invalid-age": "`cache gc --older-than` is not an age such as `30d`",
    "invalid-lock": "the lock file is not JSON, or not a lock (problems listed with places)",
    "invalid-manifest": "the manifest is unreadable or invalid (problems listed with places)",
    "invalid-plan": "a saved plan file is missing, unreadable or not a plan",
    "invalid-size": "`cache gc --max-size` is not a size such as `10G`",
    "invalid-source": "a source archive's name, version or checksum is unusable",
    "key-export-failed": "gpg could not export a key from a signing home",
    "key-file-conflict": "a key file to write already holds another key",
    "key-file-missing": "a `[[key]]` file does not exist",
    "key-file-unreadable": "a `[[key]]` file cannot be read",
    "key-file-unwritable": "a public key file cannot be written",
    "key-generation-failed": "gpg did not make the key it was asked for",
    "link-in-root": "a folder or file inside a cache root, state folder or mirror is a symlink",
    "lock-mismatch": "a mirror serves a tarball under a locked hash that is not the locked one",
    "malformed-metadata": "a mirror serves an index or spec file that is not what it claims",
    "mirror-unreachable": "a mirror did not answer (refused, timed out, DNS); skipped for the run",
    "mirror-unwritable": "a file cannot be written into a mirror",
    "no-answer": "the input ended (Ctrl-D) at the confirmation prompt; nothing was changed",
    "no-such-generation": "a view has no generation to switch to (none yet, or not that number)",
    "no-such-path": "a path, or the folder it should be written into, does not exist",
    "no-such-view": "`--view` names no `[[view]]` of the manifest, or the manifest declares none",
    "no-valid-signer": "an install's signer was revoked or removed and no mirror signs it anew",
    "no-gnupg-signature-to-replace": "a gpg key re-signs Spack's metadata only where a GnuPG "
    "key that counts signed it (rotation); a sidecar signature does not cover the whole spec",
    "nothing-to-export": "`keys export` was asked for a sigstore key, which has no key material",
    "not-a-prefix": "a path to install into or change is not a plain folder",
    "not-a-spack-prefix": "a prefix to publish lacks Spack's metadata",
    "not-elf": "a file listed for binary relocation is not ELF",
    "not-found": "the mirror answered, but the file is not there",
    "not-locked": "`--locked`: the lock file does not satisfy a selector or source (each named)",
    "os-error": "the operating system refused an operation for another reason; the path is named",
    "patchelf-failed": "patchelf could not rewrite a binary",
    "patchelf-missing": "relocation needs patchelf, which is not installed",
    "path-too-long": "a path is longer than the filesystem allows (a name or the whole path)",
    "permission-denied": "the operating system refused access to a path (owner or mode)",
    "permissions-failed": "the permissions of a prefix could not be set",
    "plan-failed": "a selector matches nothing or several specs, a dependency is missing, ...",
    "prefix-claimed-twice": "two specs, or two install records, claim one prefix",
    "prefix-drifted": "a prefix to publish changed since it was installed",
    "prefix-missing": "a prefix to publish is not a folder",
    "prefix-unreadable": "a file of a prefix to publish cannot be read",
    "read-only-filesystem": "a path reconcile must write is on a read-only filesystem",
    "reconcile-error": "any other failure reported to the user",
    "registry-auth-failed": "an OCI registry or its token service refused or could not authorize",
    "relocation-impossible": "a prefix cannot be relocated to its new place",
    "removal-refused": "a prefix to remove changed since the plan (its files, or its record)",
    "secret-in-mirror": "a signing home or secret key file would lie inside a mirror",
    "secret-out-required": "`keys export --secret` without `--out FILE`",
    "signing-failed": "gpg could not sign with the chosen key",
    "signing-home-missing": "the GnuPG home holding signing keys does not exist",
    "signing-home-not-private": "the signing home can be read or written by others",
    "signing-home-unreadable": "gpg cannot list the keys of the signing home",
    "signing-home-unwritable": "the signing home cannot be created or written",
    "signing-key-ambiguous": "a key name or fingerprint prefix matches several secret keys",
    "signing-key-exists": "`keys generate` was given a name the manifest already uses for a key",
    "signing-key-missing": "the secret key to sign with is not in its GnuPG home",
    "signing-key-not-found": "no signing home holds the secret key asked for",
    "sigstore-signing-failed": "publishing got no Sigstore signature that verifies under its key",
    "source-mirror-blocked": "a source mirror's folder cannot be written as needed",
    "source-mirror-unreadable": "a source mirror's folder cannot be read",
    "source-unavailable": "a source archive cannot be downloaded",
    "sources-failed": "one or more source archives failed; each is listed",
    "stale-plan": "a saved plan no longer matches the install root or the mirrors",
    "tarball-changed": "a tarball changed while it was being published",
    "tarball-missing": "a tarball to publish does not exist",
    "tarball-unavailable": "no mirror that lists a spec could provide its tarball",
    "transfer-too-large": "a mirror sent, or announced, more bytes than the file may have",
    "transfer-too-slow": "a transfer fell below `[limits] min_transfer_rate` for 30 seconds",
    "transport-error": "a mirror file cannot be read (credentials, TLS, retries exhausted, ...)",
    "unknown-group": "a `permissions.group` names no group on this system",
    "unknown-selector": "`lock --update` names a selector the manifest does not declare",
    "unsafe-archive": "a tarball breaks an archive rule (docs/security.md#archive-rules)",
    "unsupported-file-type": "a prefix holds a special file (device, socket, fifo)",
    "unsupported-key-kind": "`keys generate` was asked for a key kind it cannot make",
    "unsupported-layout": "a mirror's metadata uses a layout version reconcile cannot read",
    "usage": "the command line is incomplete or contradictory",
    "verification-failed": "a signature, a pinned key, or the shape of signed metadata failed",
    "view-conflict": "two specs of a view have a file at one path (both prefixes are named)",
    "view-link-failed": "a hard-linked view cannot link a file (another filesystem?)",
    "view-not-reconcile": "a view's path holds something reconcile did not make (never replaced)",
    "view-path-unusable": "a view's folder holds a colon or line break: no search path can",
    "view-prefix-missing": "a view (or the generation to roll back to) links a prefix that is gone",
}
