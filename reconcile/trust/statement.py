"""The scheme-independent statement reconcile signs for one binary package.

``reconcile-sig-1;<dag hash>;sha256:<hex>;<size>;<sorted comma-joined dependency hashes>``
binds the spec's DAG hash, the stored tarball's sha256 and size in bytes, and the DAG hashes of
its direct dependencies of every edge type. An ed25519 (or any detached) signature over these
bytes vouches for what a consumer installs: the tarball's content and where it sits in the DAG.
Every field is checked, so no value can smuggle in a ``;`` or ``,`` and shift the others.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from reconcile.spack.spec import SpecNode

VERSION = "reconcile-sig-1"
_DAG_HASH = re.compile(r"[a-z2-7]{32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def statement(
    *, dag_hash: str, tarball_sha256: str, tarball_size: int, dependencies: Iterable[str]
) -> bytes:
    """The statement's bytes; ``ValueError`` for a field that is not what it must be."""
    deps = sorted(set(dependencies))
    for value in (dag_hash, *deps):
        if not _DAG_HASH.fullmatch(value):
            raise ValueError(f"not a DAG hash (32 base32 characters): {value[:80]!r}")
    if not _SHA256.fullmatch(tarball_sha256):
        raise ValueError(f"not a lower-case sha256 hex digest: {tarball_sha256[:80]!r}")
    if isinstance(tarball_size, bool) or not isinstance(tarball_size, int) or tarball_size < 0:
        raise ValueError(f"not a tarball size in bytes: {tarball_size!r}")
    fields = [VERSION, dag_hash, f"sha256:{tarball_sha256}", str(tarball_size), ",".join(deps)]
    return ";".join(fields).encode("ascii")


def statement_for(node: SpecNode, *, tarball_sha256: str, tarball_size: int) -> bytes:
    """The statement for the package ``node`` (its direct dependencies of all edge types)."""
    return statement(
        dag_hash=node.hash,
        tarball_sha256=tarball_sha256,
        tarball_size=tarball_size,
        dependencies=[dependency.hash for dependency in node.dependencies],
    )
