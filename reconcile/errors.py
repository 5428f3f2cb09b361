"""The error hierarchy: every user-facing failure is a ``ReconcileError``.

Each error carries a stable kebab-case ``reference`` (for scripts and docs), a message that
says what was found and what was expected, and an optional hint that says what to do next.
The CLI catches ``ReconcileError`` in exactly one place and prints ``diagnostics()``; anything
else escaping is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs


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

    def __init__(self, problems: Sequence[Problem], *, hint: str | None = None):
        self.problems = tuple(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the manifest"
        super().__init__(head + "\n" + "\n".join(f"  {p}" for p in self.problems), hint=hint)


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


class ApplyError(ReconcileError):
    """Applying a plan failed; nothing of that run was committed."""

    reference = "apply-failed"
