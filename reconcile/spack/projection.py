"""Install-tree projections and Spack's padded install roots.

A projection names each prefix under the install root, as Spack's ``config:install_tree:
projections`` does: ``{name}-{version}-{hash}`` puts hello-app@3.0 at ``hello-app-3.0-d7r6...``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from reconcile.spack.spec import SpecNode

# Spack's padding component (spack.util.path.SPACK_PATH_PADDING_CHARS).
PADDING_COMPONENT = "__spack_path_placeholder__"

HASH_LENGTH = 32

_Render = Callable[[SpecNode], str]

_PLACEHOLDERS: dict[str, _Render] = {
    "name": lambda node: node.name,
    "version": lambda node: node.version,
    "hash": lambda node: node.hash,
    "arch": lambda node: node.arch,
    "architecture": lambda node: node.arch,
    "architecture.platform": lambda node: node.platform,
    "architecture.os": lambda node: node.platform_os,
    "architecture.target": lambda node: node.target,
    "platform": lambda node: node.platform,
    "os": lambda node: node.platform_os,
    "target": lambda node: node.target,
    # Spack 1.x specs carry no compiler on the node: render it as SpecNode.compiler does.
    "compiler.name": lambda node: node.compiler_name or "none",
    "compiler.version": lambda node: node.compiler_version or "none",
    "namespace": lambda node: node.namespace or "none",
}

_SHORT_HASH = re.compile(r"hash:(?P<length>[0-9]+)")


class _Placeholder(str):
    """The text between braces, once checked to be a known placeholder."""


def _tokens(projection: str) -> list[str]:
    """Split a projection into literal text and ``_Placeholder`` parts; ``ValueError`` if bad."""
    parts: list[str] = []
    rest = projection
    while rest:
        opening, closing = rest.find("{"), rest.find("}")
        if closing != -1 and (opening == -1 or closing < opening):
            raise ValueError(f"{projection!r} has an unmatched '}}'")
        if opening == -1:
            parts.append(rest)
            break
        if closing == -1:
            raise ValueError(f"{projection!r} has an unmatched '{{'")
        inner = rest[opening + 1 : closing]
        if "{" in inner:
            raise ValueError(f"{projection!r} has a '{{' inside a placeholder")
        parts.append(rest[:opening])
        parts.append(_placeholder(inner))
        rest = rest[closing + 1 :]
    return [part for part in parts if part]


def _placeholder(inner: str) -> _Placeholder:
    short = _SHORT_HASH.fullmatch(inner)
    if short is not None:
        length = int(short["length"])
        if not 1 <= length <= HASH_LENGTH:
            raise ValueError(
                f"{{{inner}}} cuts the hash to {length} characters (expected 1 to {HASH_LENGTH})"
            )
        return _Placeholder(inner)
    if inner not in _PLACEHOLDERS:
        supported = ", ".join(f"{{{name}}}" for name in [*_PLACEHOLDERS, "hash:N"])
        raise ValueError(f"unknown placeholder {{{inner}}} (supported: {supported})")
    return _Placeholder(inner)


def _check_layout(projection: str, tokens: list[str], *, unique: bool = True) -> None:
    if not projection:
        raise ValueError("the projection is empty (expected for example '{name}-{version}-{hash}')")
    if projection.startswith("/"):
        raise ValueError(
            f"{projection!r} is absolute (expected a relative path: below the install root, "
            "or in the view)"
        )
    if any(char == "\\" or ord(char) < 0x20 or char == "\x7f" for char in projection):
        raise ValueError(
            f"{projection!r} contains a backslash or a control character "
            "(expected a plain relative path)"
        )
    for component in projection.split("/"):
        if component in ("", ".", ".."):
            raise ValueError(
                f"{projection!r} has an empty, '.' or '..' path component "
                "(expected components such as '{name}-{version}-{hash}')"
            )
    if unique and not any(isinstance(t, _Placeholder) and t.startswith("hash") for t in tokens):
        raise ValueError(
            f"{projection!r} has no {{hash}} or {{hash:N}} "
            "(expected one, so that every prefix is unique)"
        )


def validate_projection(projection: str, *, unique: bool = True) -> str | None:
    """Why ``projection`` cannot be used, or None when it is fine. ``unique``: it must hold
    the hash (an install tree's prefixes); a view's projections need not."""
    try:
        _check_layout(projection, _tokens(projection), unique=unique)
    except ValueError as exc:
        return str(exc)
    return None


def _render(token: _Placeholder, node: SpecNode) -> str:
    short = _SHORT_HASH.fullmatch(token)
    if short is not None:
        return node.hash[: int(short["length"])]
    return _PLACEHOLDERS[token](node)


def format_projection(projection: str, node: SpecNode, *, unique: bool = True) -> str:
    """The prefix of ``node`` relative to the install root (or a view, without ``unique``);
    ``ValueError`` if it cannot be made."""
    tokens = _tokens(projection)
    _check_layout(projection, tokens, unique=unique)
    rendered: list[str] = []
    for token in tokens:
        if not isinstance(token, _Placeholder):
            rendered.append(token)
            continue
        value = _render(token, node)
        # Values come from spec metadata: they must not add or climb path components.
        if not value or "/" in value or "\0" in value or value in (".", ".."):
            raise ValueError(
                f"{{{token}}} of {node.short()} is {value!r}, which cannot be part of a path"
            )
        rendered.append(value)
    return "".join(rendered)


def pad_root(root: str, padded_length: int) -> str:
    """``root`` padded like Spack's ``install_tree:padded_length``.

    Spack appends ``/__spack_path_placeholder__`` components and cuts the last one so that
    the whole is exactly ``padded_length`` characters. A root that is already that long,
    or one character short (a lone ``/`` cannot be added), is returned unchanged.
    """
    root = root.rstrip("/") or "/"
    missing = padded_length - len(root)
    if missing <= 1:
        return root
    component = "/" + PADDING_COMPONENT
    padding = component * (missing // len(component) + 1)
    # A root of "/" already ends with the separator the padding starts with.
    return root + (padding[1 : missing + 1] if root == "/" else padding[:missing])
