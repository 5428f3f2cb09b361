"""``bundle.json``: every file of a bundle with its sha256 and size."""

from __future__ import annotations

import json
from collections.abc import Mapping

from reconcile.bundle.errors import BundleError
from reconcile.hashing import Digest

LISTING_NAME = "bundle.json"
LISTING_FORMAT = 1
MAX_LISTING_BYTES = 64 << 20

# A listed file: its sha256 and size (reconcile.hashing's digest).
FileDigest = Digest


def listing_bytes(files: Mapping[str, FileDigest]) -> bytes:
    document = {
        "format": LISTING_FORMAT,
        "files": [
            {"path": name, "sha256": files[name].sha256, "size": files[name].size}
            for name in sorted(files)
        ],
    }
    return (json.dumps(document, indent=1, sort_keys=True) + "\n").encode()


def parse_listing(data: bytes) -> dict[str, FileDigest]:
    def bad(reason: str) -> BundleError:
        return BundleError(
            f"{LISTING_NAME} in the bundle is malformed: {reason}",
            hint="export the bundle again with `reconcile bundle export`",
        )

    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad(f"not valid JSON ({exc})") from exc
    if not isinstance(document, dict) or document.get("format") != LISTING_FORMAT:
        raise bad(f"expected an object with format {LISTING_FORMAT}")
    files: dict[str, FileDigest] = {}
    for item in document.get("files", ()):
        if not isinstance(item, dict):
            raise bad("a files entry is not an object")
        name, sha256, size = item.get("path"), item.get("sha256"), item.get("size")
        if not isinstance(name, str) or not isinstance(sha256, str) or not isinstance(size, int):
            raise bad(f"entry {item!r} needs path, sha256 and size")
        if name in files:
            raise bad(f"{name!r} is listed twice")
        files[name] = FileDigest(sha256=sha256, size=size)
    return files
