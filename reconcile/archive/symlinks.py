"""Where a symbolic link leads, worked out without the kernel and confined to one prefix.

Lexical resolution alone is not enough: with ``s -> .`` in a folder, ``t -> s/s/../../x``
is lexically inside but the kernel walks ``s`` twice as the same folder and climbs out. So
every *intermediate* component that is itself a symlink is followed, as the kernel would.
The last component is not followed: it is a symlink that gets checked on its own.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from reconcile.archive.names import Parts, display

# The kernel gives up after 40 links in one lookup (Linux MAXSYMLINKS); so do we.
MAX_SYMLINK_HOPS = 40

# The target of the symlink at these components (relative to the prefix), or None when
# there is no symlink there.
ReadLink = Callable[[Parts], str | None]


def escape_reason(folder: Parts, target: str, read_link: ReadLink) -> str | None:
    """Why the relative ``target`` of a symlink in ``folder`` (components relative to the
    prefix) leads outside the prefix; None when it stays inside."""
    stack = list(folder)
    pending = deque(target.split("/"))
    hops = 0
    while pending:
        part = pending.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            if not stack:
                return "it climbs above the package prefix"
            stack.pop()
            continue
        here = (*stack, part)
        if any(rest not in ("", ".") for rest in pending):
            link = read_link(here)
            if link is not None:
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    return f"it passes through more than {MAX_SYMLINK_HOPS} symlinks (a loop)"
                if link.startswith("/"):
                    if ".." in pending:
                        return f"it climbs with '..' out of the absolute symlink {display(here)!r}"
                    # Below an absolute symlink: that link is checked on its own.
                    return None
                pending.extendleft(reversed(link.split("/")))
                continue
        stack.append(part)
    return None


def absolute_parts(path: str) -> Parts:
    return tuple(part for part in path.split("/") if part not in ("", "."))


def is_within(parts: Parts, root: Parts) -> bool:
    return parts[: len(root)] == root
