"""Loading a ``[[key]] kind = "sigstore"`` entry: its identity policy and trusted root."""

from __future__ import annotations

from reconcile.buildcache.key_text import read_key_text
from reconcile.errors import VerificationError
from reconcile.manifest.model import Key, ManifestFile
from reconcile.trust.policy import TrustedKey
from reconcile.trust.signers import StatementSigner
from reconcile.trust.sigstore_key import (
    SigstoreKey,
    check_root,
    embedded_root,
    embedded_signing_config,
)


def sigstore_trusted_key(manifest_file: ManifestFile, key: Key) -> TrustedKey:
    """The key with its trusted root: the file ``trusted_root`` names (relative to the
    manifest's folder), or the embedded root of ``instance`` (default: production)."""
    if key.trusted_root is not None:
        path = manifest_file.resolve(key.trusted_root)
        origin = f"trusted root {path}"
        text = read_key_text(
            key,
            path,
            what="trusted root",
            encoding="utf-8",
            missing_hint="write the Sigstore instance's trusted_root.json there, or fix the "
            "path (it is relative to the manifest's folder)",
            unreadable_hint="name a Sigstore trusted_root.json file",
        )
    else:
        instance = key.instance or "production"
        origin = f"the embedded {instance} root of the sigstore package"
        text = embedded_root(instance)
    problem = check_root(text)
    if problem is not None:
        raise VerificationError(
            f"key '{key.name}': {origin} is not a Sigstore trusted root this client can use: "
            f"{problem}",
            hint="a trusted_root.json names the CA certificates, CT log and transparency log "
            "keys of one Sigstore instance (media type "
            "application/vnd.dev.sigstore.trustedroot+json;version=0.1)",
            reference="bad-sigstore-root",
        )
    material = SigstoreKey(
        san=key.san,
        identity_glob=key.identity_glob,
        issuer=key.issuer or "",
        trusted_root=text,
        root_origin=origin,
        revoked_after=key.revoked_after,
    ).material()
    return TrustedKey(name=key.name, scheme="sigstore", identity=key.identity, material=material)


def sigstore_signing_config(manifest_file: ManifestFile, key: Key) -> str:
    """The signing_config.json a sigstore key publishes with: its ``signing_config`` file, or
    the public instance's embedded one (never for a key with its own trusted root: that
    instance's certificates would not chain to it)."""
    if key.signing_config is None:
        if key.trusted_root is not None:
            raise VerificationError(
                f"key '{key.name}' declares its own trusted_root but no signing_config, so "
                "reconcile does not know where that instance's CA and log are",
                hint='add signing_config = "<file>": the instance\'s signing_config.json '
                "(caUrls, rekorTlogUrls)",
                reference="sigstore-signing-failed",
            )
        return embedded_signing_config(key.instance or "production")
    return read_key_text(
        key,
        manifest_file.resolve(key.signing_config),
        what="signing config",
        encoding="utf-8",
        missing_hint="write the Sigstore instance's signing_config.json there, or fix the "
        "path (it is relative to the manifest's folder)",
        unreadable_hint="name a Sigstore signing_config.json file",
    )


def sigstore_statement_signer(manifest_file: ManifestFile, key: Key) -> StatementSigner:
    """The signer of sigstore [[key]] ``key``, with the identity token of the environment."""
    # sigstore's signing clients (requests, the OIDC parsing) load only when publishing
    from reconcile.trust.sigstore_sign import sigstore_signer

    material = SigstoreKey.from_material(sigstore_trusted_key(manifest_file, key).material)
    return sigstore_signer(key.name, material, sigstore_signing_config(manifest_file, key))
