"""Safe unpacking of a Spack ``.spack`` tarball (layout v2 tarball format) into staging."""

from __future__ import annotations

from pathlib import Path

import attrs

from reconcile.buildcache.build_info import BuildInfo


@attrs.frozen(kw_only=True)
class UnpackedPackage:
    prefix_dir: Path  # the package prefix, inside staging
    build_info: BuildInfo
    member_prefix: str  # the prefix as named in the archive, without the leading "/"


def unpack_package(tarball: Path, staging: Path, *, dag_hash: str | None = None) -> UnpackedPackage:
    """Unpack ``tarball`` into ``staging`` (an empty folder on the install root's filesystem).

    Enforces every archive rule of DESIGN.md while streaming; raises ``ArchiveError`` naming
    the member and the rule on the first violation (staging is then the caller's to delete).
    """
    raise NotImplementedError


def check_symlinks(prefix_dir: Path, *, final_prefix: str, allowed_prefixes: tuple[str, ...]) -> None:
    """After relocation: every symlink stays inside the prefix (relative ones) or points into
    ``final_prefix`` or one of ``allowed_prefixes`` (absolute ones). ``ArchiveError`` otherwise.
    """
    raise NotImplementedError
