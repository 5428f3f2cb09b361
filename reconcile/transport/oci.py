"""OCI registries as mirrors: the HTTP transport (timeouts, retries, resumed downloads, byte
caps) speaking the registry API, with the registry's own auth flow.

A URL inside the mirror (``oci://host/repo/manifests/<tag>``, ``.../blobs/sha256:<hex>``, see
``oci_reference``) is sent to ``https://host/v2/repo/...``. Nothing is sent with credentials
until the registry asks: a 401 names the scheme (basic, or a bearer token from its token
service), the answer is kept for the rest of the run (per scope: pull, or pull and push),
and the request is sent once more. Credentials come from the mirror URL, the mirror's
environment variables, netrc, then Docker's ``config.json``; they only go over https.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable, Mapping
from typing import BinaryIO, NoReturn

import requests
import requests.auth
import requests.utils

from reconcile.errors import TransportError
from reconcile.limits import DEFAULT_LIMITS, Limits
from reconcile.redact import mask_credentials
from reconcile.transport.credentials import (
    Credentials,
    credential_hint,
    mirror_env_prefix,
    strip_credentials,
)
from reconcile.transport.docker_config import from_docker_config
from reconcile.transport.http import HttpTransport
from reconcile.transport.oci_auth import (
    MAX_TOKEN_ANSWER_BYTES,
    check_realm_for_credentials,
    find,
    parse_challenges,
    token_from_answer,
    token_request,
)
from reconcile.transport.oci_reference import (
    MANIFESTS,
    OciObject,
    parse_oci_mirror,
    parse_oci_object,
)
from reconcile.transport.retry import RetryPolicy

# What a manifest GET accepts: OCI image manifests, and Docker's (which Spack also writes
# when its base image uses them).
MANIFEST_MEDIA_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
_WRITES = frozenset({"PUT", "POST", "PATCH", "DELETE"})


def oci_credential_hint(mirror_name: str | None) -> str:
    return credential_hint(mirror_name) + ", or log in with `docker login` (config.json)"


class OciTransport(HttpTransport):
    """Reads (and, through ``oci_upload``, writes) one repository of one registry."""

    def __init__(
        self,
        *,
        mirror_url: str,
        mirror_name: str | None = None,
        environ: Mapping[str, str] | None = None,
        limits: Limits = DEFAULT_LIMITS,
        sleep: Callable[[float], None] | None = None,
        attempts: int = 4,
    ) -> None:
        self.repository = parse_oci_mirror(mirror_url)
        extra = {"sleep": sleep} if sleep is not None else {}
        super().__init__(
            base_url=self.repository.api_base(),
            mirror_name=mirror_name,
            environ=environ,
            limits=limits,
            attempts=attempts,
            **extra,  # type: ignore[arg-type]
        )
        self._mirror_url = self.repository.mirror_url()
        if self._credentials is None and self.repository.scheme == "https":
            self._credentials = from_docker_config(self.repository.host, environ)
        # Authorization header values by scope ("" for basic auth, which covers them all)
        self._authorizations: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"OciTransport({mask_credentials(self._mirror_url)!r}, mirror={self._mirror_name!r})"

    @property
    def credentials(self) -> Credentials | None:
        return self._credentials

    @property
    def retry_policy(self) -> RetryPolicy:
        return self._retry

    def pause(self, seconds: float) -> None:
        """Wait before trying again (tests pass a sleep that does not)."""
        self._sleep(seconds)

    def object_of(self, url: str) -> OciObject:
        obj = parse_oci_object(url, self._mirror_url)
        if obj.repository.repository != self.repository.repository:
            raise TransportError(
                f"{mask_credentials(url)} is not in the repository of "
                f"{mask_credentials(self._mirror_url)}",
                hint="this is a bug in reconcile; please report it",
            )
        return obj

    # --- one request ---------------------------------------------------------------------

    def _credentials_for(self, url: str) -> Credentials | None:
        return self._credentials

    def _send(
        self, method: str, url: str, headers: Mapping[str, str], *, stream: bool
    ) -> requests.Response:
        return self.send_api(method, url, headers, stream=stream)

    def send_api(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        *,
        stream: bool,
        data: bytes | BinaryIO | None = None,
        api_url: str | None = None,
    ) -> requests.Response:
        """One request to the registry for ``url`` (a URL of this mirror), authorized as the
        registry asks. ``api_url`` overrides the target (upload locations the registry gave).
        """
        obj = self.object_of(url) if api_url is None else None
        target = strip_credentials(obj.api_url() if obj is not None else str(api_url))
        scope = self.repository.scope("pull,push" if method in _WRITES else "pull")
        sent = dict(headers)
        if obj is not None and obj.kind == MANIFESTS and "Accept" not in sent:
            sent["Accept"] = ", ".join(MANIFEST_MEDIA_TYPES)
        for fresh in (False, True):
            authorization = self._authorizations.get(scope) or self._authorizations.get("")
            if authorization:
                sent["Authorization"] = authorization
            if data is not None and not isinstance(data, bytes):
                data.seek(0)  # a file body is sent again from its start
            response = self._session.request(
                method,
                target,
                headers=sent,
                data=data,
                stream=stream,
                allow_redirects=True,
                timeout=(self._options.connect_timeout, self._options.read_timeout),
                verify=self._options.verify,
                proxies=requests.utils.get_environ_proxies(target, no_proxy=None),
            )
            for redirect in response.history:
                with contextlib.suppress(RuntimeError, requests.RequestException):
                    self._count(len(redirect.content or b""))
            if response.status_code != 401 or fresh:
                return response
            challenge = response.headers.get("WWW-Authenticate", "")
            self._drain(response)
            if not self._answer(challenge, scope, url):
                return response
        return response

    def _answer(self, header: str, scope: str, url: str) -> bool:
        """Work out the Authorization for ``scope`` from a 401's challenge; False when there
        is nothing to answer with (no credentials for basic auth, no challenge)."""
        where = self._where(url)
        challenges = parse_challenges(header)
        bearer = find(challenges, "bearer")
        credentials = self._credentials
        if bearer is not None:
            if credentials is not None and credentials.kind == "bearer":
                self._authorizations[scope] = f"Bearer {credentials.secret}"
                return True
            realm = token_request(bearer, scope, where, registry_scheme=self.repository.scheme)
            token = self._fetch_token(realm, credentials, where)
            self._authorizations[scope] = f"Bearer {token}"
            return True
        basic = find(challenges, "basic")
        if basic is not None and credentials is not None and credentials.kind == "basic":
            pair = f"{credentials.username}:{credentials.secret}".encode()
            self._authorizations[""] = "Basic " + base64.b64encode(pair).decode()
            return True
        return False

    def _fetch_token(self, url: str, credentials: Credentials | None, where: str) -> str:
        check_realm_for_credentials(url, credentials, where)
        auth = None
        if credentials is not None:
            auth = requests.auth.HTTPBasicAuth(credentials.username, credentials.secret)
        shown = mask_credentials(url)
        try:
            response = self._session.get(
                url,
                auth=auth,
                stream=True,
                allow_redirects=False,
                timeout=(self._options.connect_timeout, self._options.read_timeout),
                verify=self._options.verify,
                proxies=requests.utils.get_environ_proxies(url, no_proxy=None),
            )
            body = response.raw.read(MAX_TOKEN_ANSWER_BYTES + 1, decode_content=True)
            response.close()
        except requests.RequestException as exc:
            raise TransportError(
                f"{where}: the registry's token service {shown} did not answer: "
                f"{type(exc).__name__}",
                hint="check that the token service is reachable from here; if it uses a "
                "private CA, point RECONCILE_CA_BUNDLE at its certificate bundle (PEM)",
                reference="registry-auth-failed",
            ) from None
        self._count(len(body))
        if response.status_code in (401, 403):
            what = (
                f"the credentials from {credentials.source} were refused"
                if credentials is not None
                else "it wants credentials, and none were found"
            )
            raise TransportError(
                f"{where}: the registry's token service {shown} answered HTTP "
                f"{response.status_code}: {what}",
                hint=oci_credential_hint(self._mirror_name),
                reference="registry-auth-failed",
            )
        if response.status_code != 200 or len(body) > MAX_TOKEN_ANSWER_BYTES:
            raise TransportError(
                f"{where}: the registry's token service {shown} answered HTTP "
                f"{response.status_code} with {len(body):,} bytes, not a token",
                hint="the token service is failing or misconfigured; try again later",
                reference="registry-auth-failed",
            )
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        return token_from_answer(document, where)

    def raise_for_answer(self, url: str, response: requests.Response) -> NoReturn:
        """The error for a final answer that is not a success (uploads use it too)."""
        self._raise_for_status(url, response)

    def _raise_for_status(self, url: str, response: requests.Response) -> NoReturn:
        if response.status_code not in (401, 403):
            super()._raise_for_status(url, response)
        self._drain(response)
        answer = f"HTTP {response.status_code} {response.reason or ''}".rstrip()
        credentials = self._credentials
        if credentials is not None:
            what = f"the credentials from {credentials.source} were refused"
        elif self.repository.scheme != "https":
            what = "the registry wants credentials, and none are sent over plain http (oci+http)"
        else:
            prefix = mirror_env_prefix(self._mirror_name) if self._mirror_name else None
            named = f"{prefix}USERNAME/PASSWORD or {prefix}TOKEN, " if prefix else ""
            what = (
                f"the registry wants credentials, and none were found ({named}netrc, "
                "Docker config.json)"
            )
        raise TransportError(
            f"{self._where(url)}: access denied ({answer}): {what}",
            hint=oci_credential_hint(self._mirror_name),
            reference="registry-auth-failed",
        )
