"""What each declared ``[[key]]`` is for, for ``reconcile keys list``: its scheme and identity,
the mirrors whose signatures it counts for, and the installs whose recorded signer it is."""

from __future__ import annotations

from typing import Any

from reconcile.cli.keys_sigstore import identity_text
from reconcile.errors import ReconcileError
from reconcile.manifest.model import Key, ManifestFile
from reconcile.state.records import InstallRecord, read_records


def _identity_text(key: Key) -> str:
    if key.kind == "gpg":
        return key.fingerprint
    if key.kind == "sigstore":
        return identity_text(key)
    return key.public_key or f"file {key.file}"


def _records(loaded: ManifestFile) -> dict[str, InstallRecord]:
    if loaded.manifest.install is None:
        return {}
    try:
        return read_records(loaded.install_root())
    except (ReconcileError, OSError):
        return {}  # a damaged install tree does not stop a key listing; drift reports it


def declared_keys(loaded: ManifestFile) -> list[dict[str, Any]]:
    """One entry per [[key]]: name, scheme, identity, mirrors, dependent installs."""
    records = _records(loaded)
    found = []
    for key in loaded.manifest.keys:
        mirrors = [
            mirror.name
            for mirror in loaded.manifest.mirrors
            if mirror.signed and (mirror.trust is None or key.name in mirror.trust)
        ]
        installs = sorted(
            f"{record.name}@{record.version}/{record.hash[:7]}"
            for record in records.values()
            if record.signer is not None and record.signer.upper() == key.identity.upper()
        )
        found.append(
            {
                "name": key.name,
                "scheme": key.kind,
                "identity": _identity_text(key),
                "mirrors": mirrors,
                "installs": installs,
            }
        )
    return found


def render(found: list[dict[str, Any]]) -> list[str]:
    lines = ["Declared keys ([[key]]):"] if found else []
    for item in found:
        lines.append(f"  {item['name']}  {item['scheme']}  {item['identity']}")
        mirrors = ", ".join(f"'{m}'" for m in item["mirrors"]) or "none"
        lines.append(f"      counts for mirrors: {mirrors}")
        count = len(item["installs"])
        shown = ", ".join(item["installs"][:5]) + (", ..." if count > 5 else "")
        lines.append(
            f"      {count} install{'s' if count != 1 else ''} signed by it"
            + (f": {shown}" if count else "")
        )
    return lines
