"""Member names: normalising them, and refusing names that are unsafe or overridden.

A name is kept as a tuple of components (``Parts``): comparing tuples cannot confuse
``opt/a`` with ``opt/ab``, and ``.``/empty components (``a/./b``, ``a//b``) fold into the same
key, so that two spellings of one path count as duplicates.
"""

from __future__ import annotations

from reconcile.archive import violation as rules
from reconcile.archive.violation import ArchiveRuleError

Parts = tuple[str, ...]

# Width of the ustar ``name`` and ``linkname`` fields: a longer name needs a PAX or GNU record.
USTAR_NAME_FIELD = 100
# Folders below the archive root. Spack's deepest trees (a padded install root of 512
# characters, then the package's own folders) stay far below; PATH_MAX allows ~2,000.
# Checked as soon as a name is split: a PAX path or GNU long name of a megabyte holds
# half a million components, and walking its folders one by one would be quadratic.
MAX_DEPTH = 256
# The longest file name (one component) Linux filesystems hold, in bytes (NAME_MAX): a
# longer one could only fail while it is written, as if staging were at fault.
MAX_COMPONENT_BYTES = 255


def member_parts(name: str, *, what: str = "member name", member: str | None = None) -> Parts:
    """The components of a relative name in the archive (``what``: the member's own name, or
    a hard link's target, of ``member``); ``ArchiveRuleError`` for an unsafe one."""
    member = name if member is None else member
    quoted = "" if member == name else f" {name!r}"
    if "\x00" in name:
        raise ArchiveRuleError(rules.NUL_IN_NAME, member, f"the {what}{quoted} holds a NUL byte")
    if name.startswith("/"):
        raise ArchiveRuleError(
            rules.ABSOLUTE_NAME,
            member,
            f"the {what}{quoted} is absolute; expected a name relative to the archive root",
        )
    parts = tuple(part for part in name.split("/") if part not in ("", "."))
    if ".." in parts:
        raise ArchiveRuleError(
            rules.PARENT_COMPONENT,
            member,
            f"the {what}{quoted} has a '..' component; expected a path that only descends",
        )
    if not parts:
        raise ArchiveRuleError(rules.EMPTY_NAME, member, f"the {what}{quoted} is empty")
    if len(parts) > MAX_DEPTH:
        raise ArchiveRuleError(
            rules.TOO_DEEP,
            shortened(member),
            f"the {what}{shortened(quoted)} lies {len(parts)} folders deep; "
            f"expected at most {MAX_DEPTH}",
        )
    for part in parts:
        # A character is at most 4 bytes: most components need no encoding to pass.
        if len(part) > MAX_COMPONENT_BYTES // 4 and _encoded_length(part) > MAX_COMPONENT_BYTES:
            raise ArchiveRuleError(
                rules.NAME_TOO_LONG,
                shortened(member),
                f"the {what}{shortened(quoted)} has a component of {_encoded_length(part):,} "
                f"bytes ({shortened(part, 40)!r}); expected at most {MAX_COMPONENT_BYTES}",
            )
    return parts


def _encoded_length(part: str) -> int:
    return len(part.encode("utf-8", "surrogateescape"))


def header_stands_for(header: str, effective: str) -> bool:
    """Whether the name in the ustar header (``header``) is a faithful rendering of the name
    that PAX or GNU long-name records made ``effective``.

    Writers put the full name in the extended record only when it does not fit the ustar
    fields; the header then holds its first 100 bytes (Python's tarfile and GNU tar), with any
    non-ASCII character as ``?`` (Python's tarfile). Anything else means the record *changes*
    the name, so two tools would extract the member to two different places: refused.
    """
    if header.rstrip("/") == effective.rstrip("/"):
        return True
    raw = header.encode("utf-8", "surrogateescape").rstrip(b"/")
    renderings = (
        effective.encode("utf-8", "surrogateescape"),
        effective.encode("ascii", "replace"),
    )
    for rendering in renderings:
        if raw == rendering.rstrip(b"/"):
            return True
        if len(rendering) > USTAR_NAME_FIELD and raw == rendering[:USTAR_NAME_FIELD].rstrip(b"/"):
            return True
    return False


def lexically_inside(folder: Parts, target: str) -> bool:
    """Whether relative ``target``, read from ``folder``, stays at or below the root."""
    depth = len(folder)
    for part in target.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return False
        elif part not in ("", "."):
            depth += 1
    return True


def shortened(name: str, keep: int = 200) -> str:
    """A member name fit for a message: hostile names may be a megabyte long."""
    return name if len(name) <= keep else f"{name[: keep // 2]}...{name[-keep // 2 :]}"


def display(parts: Parts) -> str:
    return "/".join(parts)
