"""Failures of the environment (a full disk, a read-only or forbidden folder, a path too long,
input closed at a prompt) turned into ``ReconcileError`` at the CLI edge: the person sees
``error[...]`` with the path and what to do, never a traceback.

Everything below the CLI lets ``OSError`` rise unchanged: the code that can clean up does so
on the way (staging, folders it created), and only here is it given words.
"""

from __future__ import annotations

import errno
import os
import sys

from reconcile.errors import ReconcileError

# What is still true after the failure: reconcile commits a prefix and its record together,
# so an interrupted run leaves installed prefixes complete and the rest untouched.
_CONSISTENT = "what was installed before stays as it was; apply again when it is fixed"


def _paths(exc: OSError) -> str:
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    return " -> ".join(names)


def _describe(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    code = errno.errorcode.get(exc.errno or 0)
    reason = f"{reason} ({code})" if code else reason
    where = _paths(exc)
    return f"{where}: {reason}" if where else reason


def environment_failure(exc: OSError) -> ReconcileError:
    """The error to show for an ``OSError`` that reached the CLI."""
    text = _describe(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ReconcileError(
            f"no space left: {text}",
            hint=f"free space on that filesystem (or use another root); {_CONSISTENT}",
            reference="disk-full",
        )
    if exc.errno == errno.ENAMETOOLONG:
        return ReconcileError(
            f"a path is too long for the filesystem: {text}",
            hint="shorten the install root, install.projection or install.padded_length "
            f"(at most {os.pathconf('/', 'PC_NAME_MAX')} bytes per name, "
            f"{os.pathconf('/', 'PC_PATH_MAX')} per path here)",
            reference="path-too-long",
        )
    if exc.errno == errno.EROFS:
        return ReconcileError(
            f"the filesystem is read-only: {text}",
            hint=f"use a root on a writable filesystem, or remount it read-write; {_CONSISTENT}",
            reference="read-only-filesystem",
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return ReconcileError(
            f"permission denied: {text}",
            hint="check the owner and mode of that path (and of the folders above it), or "
            "run as a user who may write there",
            reference="permission-denied",
        )
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return ReconcileError(
            f"no such file or folder: {text}",
            hint="check the path; create its folder first if it is an output path",
            reference="no-such-path",
        )
    return ReconcileError(
        f"the operating system refused: {text}",
        hint=f"fix the cause named above; {_CONSISTENT}",
        reference="os-error",
    )


def locale_failure(exc: UnicodeEncodeError) -> ReconcileError:
    """Text that the locale's encoding cannot hold: a path or a message with a non-ASCII
    character under a strict ASCII locale (``LC_ALL=C`` with Python's UTF-8 mode turned off).
    Under plain ``LC_ALL=C`` Python uses UTF-8 and this does not happen."""
    encoding = sys.getfilesystemencoding()
    return ReconcileError(
        f"cannot write {exc.object[exc.start : exc.end]!r} in this locale's encoding "
        f"({encoding}): {exc.reason}",
        hint="run with a UTF-8 locale (LC_ALL=C.UTF-8), or let Python use UTF-8 "
        "(unset PYTHONUTF8, or set PYTHONUTF8=1)",
        reference="locale-encoding",
    )


def input_closed() -> ReconcileError:
    """End of input (Ctrl-D) where reconcile asked a question."""
    return ReconcileError(
        "no answer: the input ended (Ctrl-D) at the confirmation prompt; nothing was changed",
        hint="answer 'y' to apply, or pass --yes in scripts",
        reference="no-answer",
    )
