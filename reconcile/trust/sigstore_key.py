"""What a declared ``kind = "sigstore"`` key holds once loaded: the identity policy (exact
SAN or pattern, and issuer), the trusted root's JSON, and the revocation moment. It travels
as ``TrustedKey.material`` (JSON bytes), so the policy and bundles carry it like any key.

The trusted root is a file the manifest names, or the root of a public Sigstore instance as
embedded in the ``sigstore`` package (no TUF refresh, no network, nothing written to $HOME).
"""

from __future__ import annotations

import datetime
import importlib.resources
import json
import urllib.parse
from collections.abc import Mapping

import attrs

from reconcile.reprs import fields_repr

# The TUF repositories whose trusted roots the sigstore package embeds.
INSTANCE_URLS: Mapping[str, str] = {
    "production": "https://tuf-repo-cdn.sigstore.dev",
    "staging": "https://tuf-repo-cdn.sigstage.dev",
}


@attrs.frozen(kw_only=True)
class SigstoreKey:
    __repr__ = fields_repr

    san: str | None  # the exact identity, or
    identity_glob: str | None  # a pattern (``reconcile.manifest.sigstore_fields``)
    issuer: str
    trusted_root: str  # the trusted_root.json text
    root_origin: str  # where it came from, for messages
    # Signatures whose log (or timestamp authority) time is at or after this do not count.
    revoked_after: datetime.datetime | None = None

    def describe_identity(self) -> str:
        shown = self.san if self.san is not None else f"pattern {self.identity_glob}"
        return f"{shown} (issuer {self.issuer})"

    def material(self) -> bytes:
        document = attrs.asdict(self)
        if self.revoked_after is not None:
            document["revoked_after"] = self.revoked_after.isoformat()
        return json.dumps(document, sort_keys=True).encode()

    @classmethod
    def from_material(cls, material: bytes) -> SigstoreKey:
        document = json.loads(material)
        moment = document.pop("revoked_after", None)
        revoked_after = datetime.datetime.fromisoformat(moment) if moment else None
        return cls(**document, revoked_after=revoked_after)


def embedded_root(instance: str) -> str:
    """The trusted_root.json the sigstore package ships for ``instance``."""
    folder = urllib.parse.quote(INSTANCE_URLS[instance], safe="")
    resource = importlib.resources.files("sigstore._store") / folder / "trusted_root.json"
    return resource.read_text(encoding="utf-8")


def check_root(text: str) -> str | None:
    """Why ``text`` is not a Sigstore trusted root this client can use, or None."""
    from sigstore._internal.trust import KeyringPurpose
    from sigstore.errors import Error  # (sigstore is slow to import: only when used)
    from sigstore.models import TrustedRoot
    from sigstore_models.trustroot.v1 import TrustedRoot as TrustedRootMessage

    try:
        root = TrustedRoot(TrustedRootMessage.from_json(text))
        root.get_fulcio_certs()
        root.rekor_keyring(KeyringPurpose.VERIFY)
        root.ct_keyring(KeyringPurpose.VERIFY)
    except (Error, ValueError, TypeError, KeyError) as exc:
        return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
    return None


def embedded_signing_config(instance: str) -> str:
    """The signing_config.json the sigstore package ships for ``instance``."""
    folder = urllib.parse.quote(INSTANCE_URLS[instance], safe="")
    resource = importlib.resources.files("sigstore._store") / folder / "signing_config.v0.2.json"
    return resource.read_text(encoding="utf-8")
