"""Writing into an OCI repository: blobs (asked for with HEAD first, so each is uploaded
once; mounted from another repository of the same registry when it has them) and manifests
under tags. Monolithic uploads only (POST, then one PUT), as Spack does: chunked uploads
are slow and registries disagree on chunk sizes.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import BinaryIO

import requests

from reconcile.errors import TransportError
from reconcile.redact import mask_credentials
from reconcile.transport.oci import OciTransport
from reconcile.transport.retry import is_retryable_status, parse_retry_after


def _call(
    transport: OciTransport,
    method: str,
    url: str,
    *,
    api_url: str | None = None,
    headers: dict[str, str] | None = None,
    data: bytes | BinaryIO | None = None,
) -> requests.Response:
    """One step of a write, tried again (a file body from its start) on a network failure
    or a "not now" answer (5xx, 408, 429), with the transport's backoff."""
    failures = 0
    while True:
        try:
            response = transport.send_api(
                method, url, headers or {}, stream=False, data=data, api_url=api_url
            )
        except requests.RequestException as exc:
            failures += 1
            if failures >= transport.retry_policy.attempts:
                raise TransportError(
                    f"{mask_credentials(url)}: the registry did not answer the {method}: "
                    f"{type(exc).__name__} (after {failures} attempts)",
                    hint="check that the registry is up and reachable, then apply again",
                    reference="mirror-unwritable",
                ) from None
            transport.pause(transport.retry_policy.delay(failures))
            continue
        if not is_retryable_status(response.status_code):
            return response
        failures += 1
        if failures >= transport.retry_policy.attempts:
            return response  # the caller reports the answer
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        transport.pause(transport.retry_policy.delay(failures, retry_after=retry_after))


def _refused(transport: OciTransport, url: str, response: requests.Response, what: str) -> None:
    if response.status_code in (401, 403):
        transport.raise_for_answer(url, response)  # the access error, with the credential hint
    body = response.text[:300].replace("\n", " ") if response.content else ""
    raise TransportError(
        f"{mask_credentials(url)}: the registry refused to {what} (HTTP {response.status_code}"
        f"{': ' + body if body else ''})",
        hint="check that the repository name is allowed and that the account may push to it",
        reference="mirror-unwritable",
    )


def blob_exists(transport: OciTransport, sha256: str) -> bool:
    url = transport.repository.blob_url(f"sha256:{sha256}")
    response = _call(transport, "HEAD", url)
    if response.status_code == 200:
        return True
    if response.status_code == 404:
        return False
    _refused(transport, url, response, "say whether it has a blob")
    return False


def upload_blob(
    transport: OciTransport,
    source: bytes | Path,
    sha256: str,
    *,
    mount_from: str | None = None,
) -> bool:
    """Put the blob ``sha256`` (its bytes, or a file holding them) unless the repository has
    it; with ``mount_from`` (another repository of the same registry) ask for a mount first.
    True when something was uploaded or mounted."""
    if blob_exists(transport, sha256):
        return False
    digest = f"sha256:{sha256}"
    repository = transport.repository
    start = f"{repository.mirror_url()}/blobs/uploads/"
    query = {"mount": digest, "from": mount_from} if mount_from else {}
    api = f"{repository.api_base()}/blobs/uploads/"
    if query:
        api += "?" + urllib.parse.urlencode(query)
    started = _call(transport, "POST", start, api_url=api, headers={"Content-Length": "0"})
    if started.status_code == 201 and mount_from:
        return True  # mounted: no bytes sent
    if started.status_code != 202 or "Location" not in started.headers:
        _refused(transport, start, started, "start an upload")
    location = urllib.parse.urljoin(api, started.headers["Location"])
    parts = urllib.parse.urlsplit(location)
    if parts.netloc != urllib.parse.urlsplit(api).netloc:
        raise TransportError(
            f"{mask_credentials(start)}: the registry sent the upload to another host "
            f"({parts.hostname})",
            hint="reconcile uploads only to the registry itself (credentials go nowhere "
            "else); push through a registry that does not redirect uploads",
            reference="mirror-unwritable",
        )
    joined = "&".join(p for p in (parts.query, urllib.parse.urlencode({"digest": digest})) if p)
    target = urllib.parse.urlunsplit(parts._replace(query=joined))
    headers = {"Content-Type": "application/octet-stream"}
    if isinstance(source, Path):
        with source.open("rb") as stream:
            headers["Content-Length"] = str(source.stat().st_size)
            done = _call(transport, "PUT", start, api_url=target, headers=headers, data=stream)
    else:
        headers["Content-Length"] = str(len(source))
        done = _call(transport, "PUT", start, api_url=target, headers=headers, data=source)
    if done.status_code != 201:
        _refused(transport, start, done, f"take the blob {digest}")
    return True


def put_manifest(transport: OciTransport, tag: str, data: bytes, media_type: str) -> None:
    url = transport.repository.manifest_url(tag)
    response = _call(transport, "PUT", url, headers={"Content-Type": media_type}, data=data)
    if response.status_code != 201:
        _refused(transport, url, response, f"tag {tag}")
