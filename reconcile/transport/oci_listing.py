"""What a registry says about a repository without sending any content: its tags
(``/v2/<repository>/tags/list``, followed page by page) and a blob's size (HEAD)."""

from __future__ import annotations

import json
import urllib.parse

import requests

from reconcile.errors import TransportError
from reconcile.redact import mask_credentials
from reconcile.transport.oci import OciTransport

MAX_TAG_PAGE_BYTES = 16 << 20  # one page of tag names; a registry sends at most a few MiB
MAX_TAG_PAGES = 10_000


def _send(transport: OciTransport, method: str, url: str, api_url: str) -> requests.Response:
    try:
        return transport.send_api(method, url, {}, stream=True, api_url=api_url)
    except requests.RequestException as exc:
        raise TransportError(
            f"{mask_credentials(url)}: the registry did not answer the {method}: "
            f"{type(exc).__name__}",
            hint="check that the registry is up and reachable, then run again",
        ) from None


def list_tags(transport: OciTransport) -> list[str]:
    """Every tag of the repository, sorted; none when the registry does not know the
    repository (nothing was pushed yet)."""
    repository = transport.repository
    shown = f"{repository.mirror_url()}/tags/list"
    api = f"{repository.api_base()}/tags/list"
    tags: list[str] = []
    for _ in range(MAX_TAG_PAGES):
        response = _send(transport, "GET", repository.mirror_url(), api)
        if response.status_code == 404:
            response.close()
            return sorted(tags)
        if response.status_code != 200:
            transport.raise_for_answer(repository.mirror_url(), response)
        body = response.raw.read(MAX_TAG_PAGE_BYTES + 1, decode_content=True)
        response.close()
        if len(body) > MAX_TAG_PAGE_BYTES:
            raise TransportError(
                f"{mask_credentials(shown)}: a page of tags is over {MAX_TAG_PAGE_BYTES:,} bytes",
                hint="the registry answers with something other than a tag list",
            )
        try:
            page = json.loads(body)
            names = page.get("tags") or []
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ValueError("'tags' is not a list of names")
        except (ValueError, AttributeError) as exc:
            raise TransportError(
                f"{mask_credentials(shown)}: the registry's tag list cannot be read ({exc})",
                hint="the registry answers with something other than a tag list",
            ) from None
        tags += names
        following = response.links.get("next", {}).get("url")
        if not following:
            return sorted(tags)
        api = urllib.parse.urljoin(api, following)
        if urllib.parse.urlsplit(api).netloc != urllib.parse.urlsplit(repository.api_base()).netloc:
            raise TransportError(
                f"{mask_credentials(shown)}: the next page of tags is on another host",
                hint="reconcile follows tag pages only on the registry itself",
            )
    raise TransportError(
        f"{mask_credentials(shown)}: more than {MAX_TAG_PAGES:,} pages of tags",
        hint="the registry keeps sending a next page; report this to its operator",
    )


def blob_size(transport: OciTransport, sha256: str) -> int | None:
    """The size the registry answers a HEAD of blob ``sha256`` with; None when it has no
    such blob."""
    url = transport.repository.blob_url(f"sha256:{sha256}")
    response = _send(transport, "HEAD", url, transport.object_of(url).api_url())
    response.close()
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        transport.raise_for_answer(url, response)
    length = response.headers.get("Content-Length", "")
    if not length.isdigit():
        raise TransportError(
            f"{mask_credentials(url)}: the registry answered the HEAD without a size",
            hint="the registry does not say how large its blobs are; drift cannot compare them",
        )
    return int(length)
