"""Signing reconcile's statements with Sigstore, keylessly: an OIDC identity token (from
``$SIGSTORE_ID_TOKEN``, as CI provides one) buys a short-lived certificate from the instance's
CA, each statement is signed with its ephemeral key and logged in the transparency log, and
the resulting bundle goes into the sidecar.

Which instance: the key's ``signing_config`` (the CA and log URLs) with its trusted root. A
bundle is checked under the declared key before it is written: a token for another identity
or issuer would otherwise publish signatures no consumer accepts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from sigstore._internal.fulcio.client import ExpiredCertificate, FulcioClientError
from sigstore._internal.rekor import RekorClientError
from sigstore.errors import Error as SigstoreError
from sigstore.models import ClientTrustConfig
from sigstore.oidc import ExpiredIdentity, IdentityError, IdentityToken
from sigstore.sign import Signer, SigningContext
from sigstore_models.trustroot.v1 import ClientTrustConfig as ClientTrustConfigMessage
from sigstore_models.trustroot.v1 import SigningConfig, TrustedRoot

from reconcile.errors import ReconcileError, VerificationError
from reconcile.trust.sigstore import (
    SCHEME,
    SigstoreVerifier,
    certificate_identities,
    certificate_issuer,
    identity_policy,
)
from reconcile.trust.sigstore_key import SigstoreKey

ENV_TOKEN = "SIGSTORE_ID_TOKEN"  # noqa: S105 (a variable name)
# What sigstore's signing clients raise: their own errors, requests' (OSError), the CA's and
# the log's client errors, an expired certificate or token, malformed answers.
SIGNING_ERRORS = (
    SigstoreError,
    OSError,
    ValueError,
    KeyError,
    FulcioClientError,
    RekorClientError,
    ExpiredCertificate,
    ExpiredIdentity,
)


class SigstoreStatementSigner:
    """Signs reconcile statements as one declared sigstore key (a ``StatementSigner``). One
    certificate (``prepare``) serves every signature of the run."""

    scheme = SCHEME

    def __init__(
        self, *, name: str, key: SigstoreKey, signing_config: str, token: IdentityToken
    ) -> None:
        self._name = name
        self._key = key
        self._token = token
        config = ClientTrustConfigMessage(
            media_type=ClientTrustConfig.ClientTrustConfigType.CONFIG_0_1.value,
            trusted_root=TrustedRoot.from_json(key.trusted_root),
            signing_config=SigningConfig.from_json(signing_config),
        )
        self._context = SigningContext.from_trust_config(ClientTrustConfig(config))
        self._signer: Signer | None = None
        self._check = SigstoreVerifier(keys={f"{SCHEME}:{name}": key})

    @property
    def key_name(self) -> str:
        return self._name

    def prepare(self) -> None:
        """Get the certificate now (before anything is published) and check that it names
        the key's identity and issuer: a token for another identity stops here."""
        try:
            self._signer = Signer(self._token, self._context, cache=True)
            certificate = self._signer._signing_cert()
        except SIGNING_ERRORS as exc:
            raise ReconcileError(
                f"sigstore key '{self._name}': no signing certificate: {_first_line(exc)}",
                hint="check the identity token ($SIGSTORE_ID_TOKEN) and that the signing "
                "config's CA is reachable; nothing was published",
                reference="sigstore-signing-failed",
            ) from None
        try:
            identity_policy(self._key).verify(certificate)
        except SigstoreError as exc:
            shown = ", ".join(certificate_identities(certificate)) or "no identity"
            raise ReconcileError(
                f"the identity token is for {shown} (issuer "
                f"{certificate_issuer(certificate) or 'none'}), but sigstore key "
                f"'{self._name}' is {self._key.describe_identity()}: {_first_line(exc)}",
                hint="sign in the CI job whose identity the [[key]] declares, or fix the "
                "[[key]] entry; nothing was published",
                reference="sigstore-signing-failed",
            ) from None

    def sign_statement(self, statement: bytes) -> str:
        try:
            if self._signer is None:
                self.prepare()
            assert self._signer is not None
            bundle = self._signer.sign_artifact(statement).to_json()
        # sigstore's clients raise their own errors, and requests' for the network
        except SIGNING_ERRORS as exc:
            raise ReconcileError(
                f"signing with sigstore key '{self._name}' failed: {_first_line(exc)}",
                hint="check the identity token ($SIGSTORE_ID_TOKEN) and that the signing "
                "config's CA and transparency log are reachable; nothing was written",
                reference="sigstore-signing-failed",
            ) from None
        try:
            self._check.verify(statement, bundle.encode(), what="the new Sigstore signature")
        except VerificationError as exc:
            raise ReconcileError(
                f"the Sigstore signature made for key '{self._name}' does not verify under "
                f"that key, so no consumer would accept it: {exc.message}",
                hint=f"sign with a token for {self._key.describe_identity()}, or fix the "
                "[[key]] entry's identity, issuer or trusted root",
                reference="sigstore-signing-failed",
            ) from None
        return bundle


def sigstore_signer(
    name: str,
    key: SigstoreKey,
    signing_config: str,
    *,
    environ: Mapping[str, str] | None = None,
) -> SigstoreStatementSigner:
    """The signer for sigstore [[key]] ``name``, with the identity token of the environment
    (checked well formed and current before anything is published)."""
    env = os.environ if environ is None else environ
    raw = env.get(ENV_TOKEN, "").strip()
    if not raw:
        raise ReconcileError(
            f"no identity token for sigstore key '{name}': ${ENV_TOKEN} is not set",
            hint=f"in CI, set {ENV_TOKEN} to the job's OIDC token with audience 'sigstore' "
            "(GitHub Actions: id-token: write, then request it for the audience 'sigstore')",
            reference="signing-key-not-found",
        )
    try:
        token = IdentityToken(raw)
    except IdentityError as exc:
        raise ReconcileError(
            f"${ENV_TOKEN} is not an identity token reconcile can sign with: {exc}",
            hint="request a fresh OIDC token with audience 'sigstore'",
            reference="signing-key-not-found",
        ) from None
    try:
        signer = SigstoreStatementSigner(
            name=name, key=key, signing_config=signing_config, token=token
        )
    except (SigstoreError, ValueError) as exc:
        raise ReconcileError(
            f"sigstore key '{name}': the signing config is not usable: {_first_line(exc)}",
            hint="a signing_config.json names the CA (caUrls) and transparency log "
            "(rekorTlogUrls) of the instance whose trusted root the key declares",
            reference="sigstore-signing-failed",
        ) from None
    signer.prepare()
    return signer


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:400]
