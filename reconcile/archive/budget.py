"""How much work one tarball may cause: bytes unpacked, members, nesting depth.

A small signed tarball must not unpack to gigabytes (a sparse or zero-filled file
compresses to almost nothing), hold millions of tiny members, or nest folders thousands of
levels deep. Each member is charged *before* it is written, from the size its header
declares, so that a bound reached costs no disk. The depth is checked where a name is
split (``names.member_parts``), before any folder of it is looked at.
"""

from __future__ import annotations

from reconcile.archive import violation as rules
from reconcile.archive.names import MAX_DEPTH, shortened
from reconcile.archive.tar_headers import TarMember
from reconcile.archive.violation import ArchiveRuleError
from reconcile.limits import DEFAULT_LIMITS, Limits, describe_bytes

__all__ = ["MAX_DEPTH", "UnpackBudget"]  # MAX_DEPTH: checked where names are split
LIMITS_HINT = "raise [limits] {setting} in the manifest if this package is genuine"


class UnpackBudget:
    """The bounds of one tarball; ``signed_size`` is its size from signed metadata (None
    when unknown, which leaves only the member count and depth bounded)."""

    def __init__(self, *, signed_size: int | None, limits: Limits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self.max_bytes = None if signed_size is None else limits.max_unpack_ratio * signed_size
        self.members = 0
        self.unpacked = 0

    def charge(self, info: TarMember) -> None:
        """Count one member (before it is written); refuse it if a bound is passed."""
        self.members += 1
        if self.members > self._limits.max_members:
            raise ArchiveRuleError(
                rules.TOO_MANY_MEMBERS,
                info.name,
                f"the archive holds more than {self._limits.max_members:,} members "
                f"([limits] max_members); {LIMITS_HINT.format(setting='max_members')}",
            )
        if info.isreg():
            self._charge_bytes(info.size, shortened(info.name))

    def charge_unwritten(self, size: int) -> None:
        """What is read but not written (extended headers, zero padding after the
        end-of-archive blocks) is bounded alike."""
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
