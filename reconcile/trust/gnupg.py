"""Running GnuPG in an isolated home: never the user's keyring, never an agent of theirs."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from reconcile.errors import ReconcileError


def gpg_binary() -> str:
    """The gpg executable: ``$RECONCILE_GPG`` if set, else ``gpg`` (or ``gpg2``) from PATH."""
    configured = os.environ.get("RECONCILE_GPG")
    if configured:
        return configured
    for name in ("gpg", "gpg2"):
        found = shutil.which(name)
        if found:
            return found
    raise ReconcileError(
        "GnuPG is not installed: reconcile needs gpg to verify signed binary caches",
        hint="install it (Debian: apt-get install gnupg) or set RECONCILE_GPG to its path",
        reference="gpg-missing",
    )


@contextmanager
def isolated_home() -> Iterator[Path]:
    """A fresh, private GNUPGHOME that is removed afterwards (agents included)."""
    # A short base keeps the agent's socket path under the 108-byte limit of AF_UNIX.
    base = "/tmp" if Path("/tmp").is_dir() else None
    home = Path(tempfile.mkdtemp(prefix="rcg-", dir=base))
    try:
        home.chmod(0o700)
        yield home
    finally:
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "all"],
            capture_output=True,
            check=False,
        ) if shutil.which("gpgconf") else None
        shutil.rmtree(home, ignore_errors=True)


def run_gpg(
    home: Path, args: Sequence[str], *, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run gpg in ``home`` in batch mode; the caller decides what the return code means."""
    command = [
        gpg_binary(),
        "--homedir",
        str(home),
        "--batch",
        "--no-tty",
        "--no-options",
        "--no-auto-key-locate",
        "--no-auto-key-retrieve",
        *args,
    ]
    env = {**os.environ, "GNUPGHOME": str(home), "LC_ALL": "C"}
    return subprocess.run(command, input=stdin, capture_output=True, check=False, env=env)
