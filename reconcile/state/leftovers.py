"""Owner-tagged names for what a run writes before it is finished, so that a later run can
tell whether the writer is gone.

Temporary files are named ``.<name>.<host>-<boot>-<pid>-<random>.tmp``, staging folders
``run-<host>-<boot>-<pid>-<random>`` and resumable partial downloads
``<sha256>.<host>-<boot>-<pid>-<random>.partial``: ``host`` is this machine's name
(reduced to letters, digits and ``_``), ``boot`` the first 8 hex digits of the kernel's
boot id, ``pid`` the writer's process id. The writer is gone when the name is from this
host and either from an earlier boot or its pid is no longer a process. A name from
another host (a shared filesystem) or without a tag is never judged gone: reconcile cannot
see that process.

A process whose pid was reused keeps its name alive: a leftover is then kept until that
process ends, which is the safe side.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import attrs

from reconcile.reprs import fields_repr

TEMP_SUFFIX = ".tmp"
RUN_PREFIX = "run-"
# Partial downloads that a later run may resume (``cache/partial.py``) are kept by every
# sweep: their owner tag only says whether a live run is still writing one.
RESUMABLE_SUFFIX = ".partial"

_TAG = r"(?P<host>[A-Za-z0-9_]{1,32})-(?P<boot>[0-9a-f]{8})-(?P<pid>[0-9]{1,10})-[0-9a-f]{8}"
_TEMP_NAME = re.compile(r"\..+\." + _TAG + re.escape(TEMP_SUFFIX))
_RUN_NAME = re.compile(re.escape(RUN_PREFIX) + _TAG)
_RESUMABLE_NAME = re.compile(r"(?P<key>[0-9a-f]{64})\." + _TAG + re.escape(RESUMABLE_SUFFIX))


@attrs.frozen(kw_only=True)
class Owner:
    __repr__ = fields_repr

    host: str
    boot: str
    pid: int


@functools.cache
def this_host() -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", os.uname().nodename)[:32] or "host"


@functools.cache
def this_boot() -> str:
    """The first 8 hex digits of the boot id; zeros where the kernel does not tell."""
    try:
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii")
    except OSError:
        return "0" * 8
    digits = re.sub(r"[^0-9a-f]", "", boot_id.lower())[:8]
    return digits if len(digits) == 8 else "0" * 8


def _tag() -> str:
    import secrets  # only to write: a read-only run need not import it (and hmac)

    return f"{this_host()}-{this_boot()}-{os.getpid()}-{secrets.token_hex(4)}"


def temp_name(name: str) -> str:
    """A hidden temporary name for a file that will become ``name``."""
    return f".{name}.{_tag()}{TEMP_SUFFIX}"


def resumable_name(sha256: str) -> str:
    """The name of this run's partial download of the file whose sha256 is ``sha256``."""
    return f"{sha256}.{_tag()}{RESUMABLE_SUFFIX}"


def resumable_key(name: str) -> str | None:
    """The sha256 a partial download's name is for; None for any other name."""
    found = _RESUMABLE_NAME.fullmatch(name)
    return found["key"] if found is not None else None


def run_folder_name() -> str:
    """The name of one run's staging folder."""
    return f"{RUN_PREFIX}{_tag()}"


def owner_of(name: str) -> Owner | None:
    """Whose temporary file, staging folder or partial download ``name`` is; None when it
    carries no tag."""
    found = (
        _TEMP_NAME.fullmatch(name) or _RUN_NAME.fullmatch(name) or _RESUMABLE_NAME.fullmatch(name)
    )
    if found is None:
        return None
    return Owner(host=found["host"], boot=found["boot"], pid=int(found["pid"]))


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    except (OverflowError, OSError):
        return False
    return True


def owner_is_gone(owner: Owner) -> bool:
    """Whether the process that wrote a tagged name has certainly ended."""
    if owner.host != this_host():
        return False
    if owner.boot != this_boot():
        return True
    return owner.pid != os.getpid() and not _process_exists(owner.pid)


def is_resumable(name: str) -> bool:
    return name.endswith(RESUMABLE_SUFFIX)


def is_dead_temp(name: str) -> bool:
    """A tagged temporary file whose writer has ended (and not a resumable download)."""
    if is_resumable(name) or _TEMP_NAME.fullmatch(name) is None:
        return False
    owner = owner_of(name)
    return owner is not None and owner_is_gone(owner)
