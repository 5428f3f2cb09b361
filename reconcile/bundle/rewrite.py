"""The bundle's manifest: the original with its mirrors replaced by the bundle's one (a
relative path), keys by the bundled files, and sources by their bundled copies."""

from __future__ import annotations

from pathlib import Path

import tomlkit
from tomlkit.items import AoT, Table

from reconcile.bundle.verify import MIRROR_FOLDER
from reconcile.manifest.model import Key, ManifestFile
from reconcile.sources.layout import source_paths

KEYS_FOLDER = "keys"


def key_member(name: str) -> str:
    return f"{KEYS_FOLDER}/{name}.pub"


def root_member(name: str) -> str:
    """Where a sigstore key's trusted root goes: the bundle pins the root it was verified
    with, embedded or not, so importing it needs no sigstore release of the same age."""
    return f"{KEYS_FOLDER}/{name}.trusted_root.json"


def _revocation(table: Table, key: Key) -> Table:
    """A revocation travels with the key: the bundle must not trust what the site does not."""
    if key.revoked:
        table["revoked"] = True
    if key.revoked_after is not None:
        table["revoked_after"] = key.revoked_after
    return table


def rewritten_manifest(
    loaded: ManifestFile,
    *,
    mirror_name: str,
    layout: int,
    signed: bool,
    trust: tuple[str, ...] | None = None,
    require: int = 1,
) -> str:
    """``trust`` and ``require``: the policy of the mirrors the closure came from, which the
    bundle's mirror keeps (a bundle never verifies with less than its site did)."""
    document = tomlkit.parse(Path(loaded.path).read_text(encoding="utf-8"))
    mirror = tomlkit.table()
    mirror.update({"name": mirror_name, "url": MIRROR_FOLDER, "signed": signed, "layout": layout})
    if trust is not None:
        mirror["trust"] = list(trust)
    if require != 1:
        mirror["require"] = require
    document["mirror"] = AoT([mirror])
    keys = []
    for key in loaded.manifest.keys:
        table = tomlkit.table()
        table.update({"name": key.name, "kind": key.kind})
        if key.kind == "sigstore":
            if key.san is not None:
                table["identity"] = key.san
            if key.identity_glob is not None:
                table["identity_glob"] = key.identity_glob
            table["issuer"] = key.issuer or ""
            table["trusted_root"] = root_member(key.name)
            keys.append(_revocation(table, key))
            continue
        if key.kind == "gpg":
            table["fingerprint"] = key.fingerprint
        table["file"] = key_member(key.name)
        keys.append(_revocation(table, key))
    if keys:
        document["key"] = AoT(keys)
    sources: list[Table] = []
    for source in loaded.manifest.sources:
        table = tomlkit.table()
        table.update(
            {
                "name": source.name,
                "version": source.version,
                "url": f"{MIRROR_FOLDER}/{source_paths(source).archive}",
                "sha256": source.sha256,
                "mirror": mirror_name,
            }
        )
        sources.append(table)
    if sources:
        document["source"] = AoT(sources)
    # publishing writes into mirrors of the exporting site, which the bundle does not carry
    document.pop("publish", None)
    return tomlkit.dumps(document)
