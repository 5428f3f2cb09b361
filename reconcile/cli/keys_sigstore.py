"""What ``reconcile keys`` says about sigstore keys: an identity and issuer under a trusted
root, with no key material of their own (the certificate is made for each signature)."""

from __future__ import annotations

from reconcile.errors import ReconcileError
from reconcile.manifest.model import Key, ManifestFile


def identity_text(key: Key) -> str:
    """``<identity or pattern> (issuer ..., root ...)``."""
    shown = key.san if key.san is not None else f"pattern {key.identity_glob}"
    root = key.trusted_root or f"embedded {key.instance or 'production'}"
    return f"{shown} (issuer {key.issuer}, root {root})"


def refuse_export(name: str, loaded: ManifestFile | None) -> None:
    """A sigstore key has nothing to export: refuse clearly instead of searching keyrings."""
    if loaded is None:
        return
    for key in loaded.manifest.keys:
        if key.name == name and key.kind == "sigstore":
            raise ReconcileError(
                f"key '{name}' is a sigstore identity, {identity_text(key)}: it has no public "
                "or secret key to export (each signature carries its own short-lived "
                "certificate)",
                hint="share the [[key]] entry itself (identity, issuer and trusted root); "
                "export a gpg or ed25519 key by its name",
                reference="nothing-to-export",
            )
