"""One broken archive rule, raised by the pure checks and turned into ``ArchiveError`` at the edge.

The checks do not know which tarball they read; ``unpack_package`` adds the tarball's path and
the hint, so that every refusal reads the same way.
"""

from __future__ import annotations

# Rule identifiers: stable, kebab-case, quoted in every refusal so tests and people can grep.
EMPTY_NAME = "empty-name"
ABSOLUTE_NAME = "absolute-name"
PARENT_COMPONENT = "parent-component"
NUL_IN_NAME = "nul-in-name"
NAME_TOO_LONG = "name-too-long"
PAX_NAME_OVERRIDE = "pax-name-override"
SPECIAL_FILE = "special-file"
SPARSE_FILE = "sparse-file"
SPECIAL_MODE_BITS = "special-mode-bits"
DUPLICATE_NAME = "duplicate-name"
THROUGH_SYMLINK = "through-symlink"
UNDER_NON_DIRECTORY = "under-non-directory"
HARD_LINK_TARGET = "hard-link-target"
SYMLINK_ESCAPE = "symlink-escape"
OUTSIDE_PREFIX = "outside-prefix"
MISSING_BINARY_DISTRIBUTION = "missing-binary-distribution"
BAD_BINARY_DISTRIBUTION = "bad-binary-distribution"
UNREADABLE_ARCHIVE = "unreadable-archive"
DATA_AFTER_END = "data-after-end"
UNPACKED_SIZE = "unpacked-size"
TOO_MANY_MEMBERS = "too-many-members"
TOO_DEEP = "too-deep"

# What to do about any refusal: the archive was checked against signed metadata before it was
# opened, so a refusal means whoever built or signed it is broken or hostile.
UNTRUSTED_HINT = (
    "the binary cache that served this package is corrupt or hostile and must not be trusted; "
    "remove it from the manifest's mirrors (and any cached copy) and tell whoever publishes it"
)


class ArchiveRuleError(Exception):
    """``member`` (as named in the archive; empty when the archive as a whole is at fault)
    breaks ``rule``; ``detail`` says what was found and what was expected."""

    def __init__(self, rule: str, member: str, detail: str):
        super().__init__(f"{rule}: {member!r}: {detail}")
        self.rule = rule
        self.member = member
        self.detail = detail
