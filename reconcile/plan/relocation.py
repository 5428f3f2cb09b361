"""Whether a spec's new prefix is longer than the prefix it was built in.

Binaries may hold hard-coded paths as C strings, which relocation can keep or shrink but never
grow. Plan cannot see whether a package has such strings (that takes its unpacked files), so a
longer prefix is a warning, or a refusal under ``[install] strict_relocation``; apply's
``cannot-grow-string`` check decides for the packages that do. The prefix a package was built
in is known at plan time only from a tarball a cache root already holds
(``observe.built_prefix``); otherwise apply learns it from the downloaded tarball.
"""

from __future__ import annotations

from reconcile.plan.model import InstallAction


def growth(action: InstallAction) -> int:
    """How many characters longer the new prefix is than the one it was built in (0 when it
    is not longer, or when the old one is not known)."""
    if action.built_prefix is None:
        return 0
    return max(0, len(action.prefix) - len(action.built_prefix))


def longer_prefix_warning(action: InstallAction, install_root: str) -> str | None:
    """What to tell about ``action`` (installed under ``install_root``, padding included)."""
    excess = growth(action)
    if excess == 0:
        return None
    assert action.built_prefix is not None
    return (
        f"{action.label}: its new prefix ({len(action.prefix)} characters) is longer than "
        f"the prefix it was built in ({len(action.built_prefix)} characters), so hard-coded "
        "strings in its binaries may not fit (apply refuses those with cannot-grow-string); "
        f"an install root of at most {len(install_root) - excess} characters with its padding "
        f"(it is {len(install_root)}) fits"
    )
