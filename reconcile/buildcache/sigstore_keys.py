"""Loading a ``[[key]] kind = "sigstore"`` entry: its identity policy and trusted root."""

from __future__ import annotations

from reconcile.errors import VerificationError
from reconcile.manifest.bounded import MAX_KEY_FILE_BYTES, NotReadableError, read_bounded
from reconcile.manifest.model import Key, ManifestFile
from reconcile.trust.policy import TrustedKey
from reconcile.trust.sigstore_key import SigstoreKey, check_root, embedded_root


def sigstore_trusted_key(manifest_file: ManifestFile, key: Key) -> TrustedKey:
    """The key with its trusted root: the file ``trusted_root`` names (relative to the
    manifest's folder), or the embedded root of ``instance`` (default: production)."""
    if key.trusted_root is not None:
        path = manifest_file.resolve(key.trusted_root)
        origin = f"trusted root {path}"
        try:
            text = read_bounded(path, MAX_KEY_FILE_BYTES).decode("utf-8")
        except FileNotFoundError:
            raise VerificationError(
                f"key '{key.name}': trusted root {path} does not exist",
                hint="write the Sigstore instance's trusted_root.json there, or fix the path "
                "(it is relative to the manifest's folder)",
                reference="key-file-missing",
            ) from None
        except (NotReadableError, OSError, UnicodeDecodeError) as exc:
            reason = exc.message if isinstance(exc, NotReadableError) else str(exc)
            raise VerificationError(
                f"key '{key.name}': trusted root not read: {reason}",
                hint="name a Sigstore trusted_root.json file",
                reference="key-file-unreadable",
            ) from None
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
