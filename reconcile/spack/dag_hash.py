"""DAG hashes for spec nodes that reconcile creates itself (examples, test caches).

Spack's own hash covers its internal node dictionary, which reconcile does not reproduce; it
only needs hashes of the same shape (32 characters of lower-case base32) that change whenever
a node or any of its dependencies changes. So: base32 of the sha256 of the node's canonical
JSON, without its own ``hash`` field. Dependencies enter through their hashes, so hash the
nodes bottom-up.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

HASH_LENGTH = 32


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the same value always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def b32_digest(data: bytes) -> str:
    """Lower-case base32 of sha256, padding included (Spack's ``package_hash`` shape)."""
    return base64.b32encode(hashlib.sha256(data).digest()).decode().lower()


def dag_hash(node: Mapping[str, Any]) -> str:
    """The 32-character hash of ``node`` (its ``hash`` field, if any, is ignored)."""
    content = {key: value for key, value in node.items() if key != "hash"}
    return b32_digest(canonical_json(content))[:HASH_LENGTH]


def package_hash(files: Mapping[str, bytes]) -> str:
    """A ``package_hash``-like digest of a package's sources, by relative file name."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(canonical_json([name, hashlib.sha256(files[name]).hexdigest()]))
    return base64.b32encode(digest.digest()).decode().lower()
