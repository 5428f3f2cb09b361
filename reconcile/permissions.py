"""Spack's ``packages:all:permissions`` model, applied to an install prefix.

``read`` says who may read (user, group or world), ``write`` who may write; write is never
wider than read. Executables and folders get execute bits for whoever may read. With a
``group``, every file and folder is chowned to it and folders get set-gid, so that files made
later inside them inherit the group. No other bits survive: no set-uid, no sticky bit.
Symlinks are left alone (their own mode means nothing on Linux) and never followed.
"""

from __future__ import annotations

import grp
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from reconcile.errors import ReconcileError
from reconcile.manifest.model import Permissions, ReadScope, WriteScope

_READ_BITS: dict[ReadScope, int] = {"user": 0o400, "group": 0o440, "world": 0o444}
_EXECUTE_BITS: dict[ReadScope, int] = {"user": 0o100, "group": 0o110, "world": 0o111}
_WRITE_BITS: dict[WriteScope, int] = {"user": 0o200, "group": 0o220, "world": 0o222}
# Whoever may not read may not write either.
_READ_SCOPE_MASK: dict[ReadScope, int] = {"user": 0o700, "group": 0o770, "world": 0o777}
_ANY_EXECUTE = 0o111


class PermissionChange(NamedTuple):
    """One path whose mode or group differs from what the permissions ask for."""

    path: str  # relative to the prefix, POSIX; the prefix itself is "."
    old_mode: int
    new_mode: int
    old_gid: int
    new_gid: int


def resolve_group(name: str) -> int:
    """The gid of the group ``name``; a ReconcileError when the system has no such group."""
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise ReconcileError(
            f"group {name!r} (from [install.permissions] group) does not exist on this system",
            hint=f"create it (groupadd {name}) or name an existing group in the manifest",
            reference="unknown-group",
        ) from None


def target_mode(current_mode: int, *, is_dir: bool, permissions: Permissions) -> int:
    """The permission bits a file or folder should have; ``current_mode`` says if it executes."""
    mode = _READ_BITS[permissions.read]
    mode |= _WRITE_BITS[permissions.write] & _READ_SCOPE_MASK[permissions.read]
    if is_dir or current_mode & _ANY_EXECUTE:
        mode |= _EXECUTE_BITS[permissions.read]
    if is_dir and permissions.group is not None:
        mode |= stat.S_ISGID
    return mode


def describe_permissions(permissions: Permissions | None, gid: int | None) -> dict[str, Any] | None:
    """What was applied, in the form install records keep (``InstallRecord.permissions``)."""
    if permissions is None:
        return None
    return {
        "read": permissions.read,
        "write": permissions.write,
        "group": permissions.group,
        "gid": gid,
    }


def _walk(prefix: Path) -> Iterator[tuple[Path, str, os.stat_result]]:
    """(path, relative path, lstat) of the prefix and everything in it, parents first.

    A folder is listed only after it has been yielded, so a caller that makes it readable
    before asking for the next item can fix a folder whose old mode would not let it be read.
    Symlinks are yielded (for completeness) but never followed.
    """
    top_stat = _lstat(prefix)
    if not stat.S_ISDIR(top_stat.st_mode):
        raise ReconcileError(
            f"{prefix} is not a folder; expected an install prefix",
            hint="pass the prefix folder itself (not a symlink to it)",
            reference="not-a-prefix",
        )
    pending = [(prefix, ".")]
    yield prefix, ".", top_stat
    while pending:
        folder, relative_folder = pending.pop()
        try:
            children = sorted(folder.iterdir())
        except OSError as exc:
            raise _disk_error(folder, exc, "list") from None
        for child in children:
            relative = child.name if relative_folder == "." else f"{relative_folder}/{child.name}"
            st = _lstat(child)
            yield child, relative, st
            if stat.S_ISDIR(st.st_mode):
                pending.append((child, relative))


def _lstat(path: Path) -> os.stat_result:
    try:
        return path.lstat()
    except OSError as exc:
        raise _disk_error(path, exc, "inspect") from None


def _disk_error(path: Path, exc: OSError, doing: str) -> ReconcileError:
    return ReconcileError(
        f"cannot {doing} {path}: {exc.strerror or exc}",
        hint="run reconcile as the owner of the install tree (or as root), or fix the path",
        reference="permissions-failed",
    )


def _planned(
    prefix: Path, permissions: Permissions, gid: int | None
) -> Iterator[tuple[Path, PermissionChange]]:
    """Every non-symlink path with its current and wanted mode and group (changed or not)."""
    for absolute, relative, st in _walk(prefix):
        if stat.S_ISLNK(st.st_mode):
            continue
        old_mode = stat.S_IMODE(st.st_mode)
        new_mode = target_mode(old_mode, is_dir=stat.S_ISDIR(st.st_mode), permissions=permissions)
        new_gid = st.st_gid if gid is None else gid
        yield absolute, PermissionChange(relative, old_mode, new_mode, st.st_gid, new_gid)


def permission_changes(
    prefix: Path, permissions: Permissions, gid: int | None
) -> list[PermissionChange]:
    """What ``apply_permissions`` would change, without changing anything (for plans and drift)."""
    changes = [
        change
        for _, change in _planned(prefix, permissions, gid)
        if change.old_mode != change.new_mode or change.old_gid != change.new_gid
    ]
    return sorted(changes, key=lambda change: change.path)


def apply_permissions(prefix: Path, permissions: Permissions, *, gid: int | None) -> None:
    """Give every file and folder of ``prefix`` (itself included) the modes and group asked for.

    Parents are fixed before their contents are listed: the owner always keeps read, write and
    execute on folders, so a folder that started read-only cannot hide what is inside it.
    """
    for absolute, change in _planned(prefix, permissions, gid):
        try:
            if change.new_gid != change.old_gid:
                # chown may clear set-gid, so the mode is set after it, always.
                os.chown(absolute, -1, change.new_gid, follow_symlinks=False)
                absolute.chmod(change.new_mode)
            elif change.new_mode != change.old_mode:
                absolute.chmod(change.new_mode)
        except OSError as exc:
            raise _disk_error(absolute, exc, "change the mode or group of") from None
