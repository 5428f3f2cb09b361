"""Sidecar signature files: detached signatures over a package's statement, stored next to
its spec metadata (see ``reconcile.trust.statement``).

A sidecar is a small JSON object::

    {"format": "reconcile-sig-1", "statement": "<the statement signed>",
     "signatures": [{"scheme": "ed25519", "signature": "<name>:<base64>"}, ...]}

The statement it carries is informational: readers rebuild the statement from the metadata
they fetched and check the signatures over that, so a sidecar can only vouch for what the
mirror actually serves. Spack never reads these files (their names match none of its patterns).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

import attrs

from reconcile.reprs import fields_repr
from reconcile.trust.statement import VERSION

# Far above any real sidecar (a few signatures), far below a memory problem.
MAX_SIDECAR_BYTES = 1 << 20
# A Sigstore bundle (certificate, log entry, proof) is some 6 to 12 KiB of JSON.
MAX_SIGNATURE_CHARS = 64 << 10
# Appended to the metadata file's name: ``<stem>.spec.json.reconcile-sig`` (layout 2),
# ``<name>-<version>-<hash>.spec.manifest.json.reconcile-sig`` (layout 3).
SUFFIX = ".reconcile-sig"


@attrs.frozen(kw_only=True)
class SidecarSignature:
    __repr__ = fields_repr

    scheme: str  # "ed25519", "sigstore"
    # the scheme's text form (ed25519: "<key name>:<base64>"; sigstore: the bundle's JSON)
    signature: str
    # The [[key]] name that made it, when the signature does not carry one (sigstore): which
    # signature a new one by the same key replaces. Never used to verify.
    key: str = ""


@attrs.frozen(kw_only=True)
class Sidecar:
    __repr__ = fields_repr

    statement: str
    signatures: tuple[SidecarSignature, ...]

    def detached(self) -> list[tuple[str, bytes]]:
        """``(scheme, signature bytes)`` pairs, as ``TrustPolicy.verify_detached`` takes them."""
        return [(item.scheme, item.signature.encode()) for item in self.signatures]


def render_sidecar(sidecar: Sidecar) -> bytes:
    document = {
        "format": VERSION,
        "statement": sidecar.statement,
        "signatures": [
            {name: value for name, value in attrs.asdict(item).items() if value != ""}
            for item in sidecar.signatures
        ],
    }
    return (json.dumps(document, indent=1, sort_keys=True) + "\n").encode()


def merged(
    existing: Sidecar | None, statement: bytes, signatures: Iterable[SidecarSignature]
) -> Sidecar:
    """The sidecar after adding ``signatures``: an existing one over the same statement keeps
    its other signatures (another key's), one over an older statement is replaced whole."""
    text = statement.decode("ascii")
    new = tuple(signatures)
    kept: Sequence[SidecarSignature] = ()
    if existing is not None and existing.statement == text:
        replaced = {(item.scheme, _key_name(item)) for item in new}
        kept = [
            item for item in existing.signatures if (item.scheme, _key_name(item)) not in replaced
        ]
    return Sidecar(statement=text, signatures=(*kept, *new))


def _key_name(item: SidecarSignature) -> str:
    return item.key or item.signature.partition(":")[0]


def parse_sidecar(data: bytes) -> Sidecar:
    """The sidecar in ``data``; ``ValueError`` with a short reason when it is not one."""
    if len(data) > MAX_SIDECAR_BYTES:
        raise ValueError(f"{len(data)} bytes, over the limit of {MAX_SIDECAR_BYTES}")
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    if not isinstance(document, Mapping):
        raise ValueError("expected a JSON object")
    if document.get("format") != VERSION:
        raise ValueError(f"format is {document.get('format')!r}, expected {VERSION!r}")
    statement = document.get("statement")
    entries = document.get("signatures")
    if not isinstance(statement, str) or not isinstance(entries, list):
        raise ValueError("expected a 'statement' string and a 'signatures' array")
    signatures: list[SidecarSignature] = []
    for number, entry in enumerate(entries, start=1):
        scheme = entry.get("scheme") if isinstance(entry, Mapping) else None
        signature = entry.get("signature") if isinstance(entry, Mapping) else None
        key = entry.get("key", "") if isinstance(entry, Mapping) else ""
        if not isinstance(scheme, str) or not isinstance(signature, str):
            raise ValueError(f"signature {number}: expected 'scheme' and 'signature' strings")
        if not isinstance(key, str) or len(key) > 128:
            raise ValueError(f"signature {number}: 'key' is not a key name")
        if len(signature) > MAX_SIGNATURE_CHARS:
            raise ValueError(f"signature {number}: longer than {MAX_SIGNATURE_CHARS} characters")
        signatures.append(SidecarSignature(scheme=scheme, signature=signature, key=key))
    return Sidecar(statement=statement, signatures=tuple(signatures))
