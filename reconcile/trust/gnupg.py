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
        found = shutil.which(configured)
        if found is None:
            raise ReconcileError(
                f"RECONCILE_GPG names {configured!r}, which is not an executable program",
                hint="point RECONCILE_GPG at gpg (or unset it to use gpg from PATH)",
                reference="gpg-missing",
            )
        return found
    for name in ("gpg", "gpg2"):
        found = shutil.which(name)
        if found:
            return found
    raise ReconcileError(
        "GnuPG is not installed: reconcile needs gpg to verify signed binary caches",
        hint="install it (Debian: apt-get install gnupg) or set RECONCILE_GPG to its path",
        reference="gpg-missing",
    )


def create_isolated_home() -> Path:
    """A fresh, private GNUPGHOME; the caller removes it with ``remove_isolated_home``."""
    # A short base keeps the agent's socket path under the 108-byte limit of AF_UNIX;
    # mkdtemp makes a unique 0700 folder, so a shared /tmp is safe here.
    short_base = Path("/tmp")  # noqa: S108
    base = str(short_base) if short_base.is_dir() else None
    home = Path(tempfile.mkdtemp(prefix="rcg-", dir=base))
    home.chmod(0o700)
    return home


def remove_isolated_home(home: Path) -> None:
    """Stop any agent started for ``home``, then delete it (safe to call twice)."""
    if not home.exists():
        return
    gpgconf = shutil.which("gpgconf")
    if gpgconf:
        subprocess.run(
            [gpgconf, "--homedir", str(home), "--kill", "all"], capture_output=True, check=False
        )
    shutil.rmtree(home, ignore_errors=True)


@contextmanager
def isolated_home() -> Iterator[Path]:
    """A fresh, private GNUPGHOME that is removed afterwards (agents included)."""
    home = create_isolated_home()
    try:
        yield home
    finally:
        remove_isolated_home(home)


def stop_agent(home: Path) -> None:
    """Stop the gpg-agent that gpg started for ``home`` (it would otherwise outlive us)."""
    if shutil.which("gpgconf"):
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
            capture_output=True,
            check=False,
        )


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
