"""OCI mirror URLs: ``oci://host[:port]/repository`` (https) and ``oci+http://...`` (plain
http, for a registry on a trusted network), as Spack writes them.

Files inside an OCI mirror have URLs of their own, so that the rest of reconcile (plans,
cache roots selected by URL prefix, messages) treats them like any mirror's files:
``<mirror>/manifests/<tag>`` is the image manifest under a tag, ``<mirror>/blobs/sha256:<hex>``
a content-addressed blob. The transport maps them onto the registry API
(``https://host/v2/<repository>/manifests/<tag>``).
"""

from __future__ import annotations

import re
import urllib.parse

import attrs

from reconcile.bounded_json import shown
from reconcile.errors import TransportError
from reconcile.redact import mask_credentials
from reconcile.reprs import fields_repr

SCHEMES = {"oci": "https", "oci+http": "http"}
MANIFESTS = "manifests"
BLOBS = "blobs"
# The distribution spec's repository name: lower-case path components with separators.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
# Spack's ensure_valid_tag: anything else than word characters, dots and dashes becomes "_".
_TAG_UNSAFE = re.compile(r"[^\w.-]")


def is_oci_url(url: str) -> bool:
    return url.split("://", 1)[0] in SCHEMES if "://" in url else False


@attrs.frozen(kw_only=True)
class OciRepository:
    """One repository of one registry."""

    __repr__ = fields_repr

    scheme: str  # "https" or "http": how the registry API is reached
    netloc: str  # host[:port], userinfo included when the URL has one
    repository: str

    @property
    def host(self) -> str:
        return self.netloc.rsplit("@", 1)[-1]

    def mirror_url(self) -> str:
        prefix = "oci" if self.scheme == "https" else "oci+http"
        return f"{prefix}://{self.netloc}/{self.repository}"

    def api_base(self) -> str:
        """``https://host/v2/<repository>``: the registry API for this repository."""
        return f"{self.scheme}://{self.netloc}/v2/{self.repository}"

    def manifest_url(self, reference: str) -> str:
        return f"{self.mirror_url()}/{MANIFESTS}/{reference}"

    def blob_url(self, digest: str) -> str:
        return f"{self.mirror_url()}/{BLOBS}/{digest}"

    def scope(self, actions: str = "pull") -> str:
        return f"repository:{self.repository}:{actions}"


def _bad(url: str, why: str) -> TransportError:
    return TransportError(
        f"not an OCI mirror URL: {mask_credentials(url)}: {why}",
        hint="write OCI mirrors as oci://HOST[:PORT]/REPOSITORY (https), or "
        "oci+http://HOST[:PORT]/REPOSITORY for a registry without TLS; the repository is "
        "lower-case, like ghcr.io/OWNER/NAME",
        reference="bad-oci-url",
    )


def parse_oci_mirror(url: str) -> OciRepository:
    """The repository an OCI mirror URL names; ``TransportError`` for anything else."""
    scheme, _, rest = url.partition("://")
    if scheme not in SCHEMES or not rest:
        raise _bad(url, "the scheme is not oci:// or oci+http://")
    parts = urllib.parse.urlsplit("https://" + rest)
    if parts.query or parts.fragment:
        raise _bad(url, "a query or fragment has no meaning here")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise _bad(url, "the port is not a number") from None
    if not parts.hostname:
        raise _bad(url, "there is no registry host")
    repository = parts.path.strip("/")
    if not repository:
        raise _bad(url, "there is no repository after the host")
    if not _REPOSITORY.fullmatch(repository):
        raise _bad(url, f"the repository {repository!r} is not a valid OCI repository name")
    return OciRepository(scheme=SCHEMES[scheme], netloc=parts.netloc, repository=repository)


@attrs.frozen(kw_only=True)
class OciObject:
    """What a URL inside an OCI mirror names: a manifest (by tag or digest) or a blob."""

    __repr__ = fields_repr

    repository: OciRepository
    kind: str  # MANIFESTS or BLOBS
    reference: str  # a tag or "sha256:<hex>"

    def api_url(self) -> str:
        return f"{self.repository.api_base()}/{self.kind}/{self.reference}"


def parse_oci_object(url: str, mirror_url: str | None = None) -> OciObject:
    """The manifest or blob that ``url`` names; ``mirror_url`` (when known) says where the
    repository ends, else the last ``/manifests/`` or ``/blobs/`` component does."""
    if mirror_url is not None and url.startswith(mirror_url.rstrip("/") + "/"):
        base, rest = mirror_url.rstrip("/"), url[len(mirror_url.rstrip("/")) + 1 :]
    else:
        cut = max(url.rfind(f"/{MANIFESTS}/"), url.rfind(f"/{BLOBS}/"))
        if cut < 0:
            raise _bad(url, "it names neither a manifest nor a blob of the repository")
        base, rest = url[:cut], url[cut + 1 :]
    kind, _, reference = rest.partition("/")
    if kind == BLOBS and _DIGEST.fullmatch(reference):
        return OciObject(repository=parse_oci_mirror(base), kind=kind, reference=reference)
    if kind == MANIFESTS and (_DIGEST.fullmatch(reference) or _TAG.fullmatch(reference)):
        return OciObject(repository=parse_oci_mirror(base), kind=kind, reference=reference)
    raise _bad(url, "expected .../manifests/<tag or sha256:digest> or .../blobs/sha256:<digest>")


def valid_tag(text: str) -> str:
    """A tag as Spack makes one from a name: unsafe characters become ``_``, and a tag over
    128 characters keeps its first and last 64."""
    tag = _TAG_UNSAFE.sub("_", text)
    return tag[:64] + tag[-64:] if len(tag) > 128 else tag


def digest_of(text: object, *, source: str) -> str:
    """The hex of a ``sha256:<hex>`` digest a registry document gives; other algorithms
    and malformed digests are refused (blobs are checked against this hex)."""
    if isinstance(text, str) and _DIGEST.fullmatch(text):
        return text.split(":", 1)[1]
    raise TransportError(
        f"{source}: the digest {shown(text)} is not sha256:<64 lower-case hex digits>",
        hint="the registry serves a document reconcile cannot verify; push the package again",
        reference="bad-oci-document",
    )
