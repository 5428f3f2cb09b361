"""How much work one tarball may cause: bytes unpacked, members, nesting depth.

A small signed tarball must not unpack to gigabytes (a sparse or zero-filled file
compresses to almost nothing), hold millions of tiny members, or nest folders thousands of
levels deep. Each member is charged *before* it is written, from the size its header
declares, so that a bound reached costs no disk.
"""

from __future__ import annotations

from reconcile.archive import violation as rules
from reconcile.archive.names import Parts
from reconcile.archive.tar_headers import TarMember
from reconcile.archive.violation import ArchiveRuleError
from reconcile.limits import DEFAULT_LIMITS, Limits, describe_bytes

# Folders below the archive root. Spack's deepest trees (a padded install root of 512
# characters, then the package's own folders) stay far below; PATH_MAX allows ~2,000.
MAX_DEPTH = 256
LIMITS_HINT = "raise [limits] {setting} in the manifest if this package is genuine"


class UnpackBudget:
    """The bounds of one tarball; ``signed_size`` is its size from signed metadata (None
    when unknown, which leaves only the member count and depth bounded)."""

    def __init__(self, *, signed_size: int | None, limits: Limits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self.max_bytes = None if signed_size is None else limits.max_unpack_ratio * signed_size
        self.members = 0
        self.unpacked = 0

    def charge(self, info: TarMember, parts: Parts) -> None:
        """Count one member (before it is written); refuse it if a bound is passed."""
        self.members += 1
        if self.members > self._limits.max_members:
            raise ArchiveRuleError(
                rules.TOO_MANY_MEMBERS,
                info.name,
                f"the archive holds more than {self._limits.max_members:,} members "
                f"([limits] max_members); {LIMITS_HINT.format(setting='max_members')}",
            )
        if len(parts) > MAX_DEPTH:
            raise ArchiveRuleError(
                rules.TOO_DEEP,
                _shortened(info.name),
                f"it lies {len(parts)} folders deep; expected at most {MAX_DEPTH}",
            )
        if info.isreg():
            self._charge_bytes(info.size, _shortened(info.name))

    def charge_trailer(self, size: int) -> None:
        """Zero padding after the end-of-archive blocks is read too: bound it alike."""
        self._charge_bytes(size, "")

    def _charge_bytes(self, size: int, member: str) -> None:
        self.unpacked += size
        if self.max_bytes is not None and self.unpacked > self.max_bytes:
            raise ArchiveRuleError(
                rules.UNPACKED_SIZE,
                member,
                f"the archive unpacks to more than {describe_bytes(self.max_bytes)} "
                f"({self._limits.max_unpack_ratio} times its signed size, [limits] "
                f"max_unpack_ratio); {LIMITS_HINT.format(setting='max_unpack_ratio')}",
            )


def _shortened(name: str, keep: int = 200) -> str:
    """A member name fit for a message: hostile names may be kilobytes long."""
    return name if len(name) <= keep else f"{name[: keep // 2]}...{name[-keep // 2 :]}"
