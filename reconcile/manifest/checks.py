"""Checks of single manifest values: each returns what is wrong, or None when it is fine."""

from __future__ import annotations

import base64
import binascii
import datetime
import posixpath
import re
from typing import Any

from reconcile.manifest.model import (
    CONFLICT_POLICIES,
    LINK_KINDS,
    OCI_SCHEMES,
    SUPPORTED_KEY_KINDS,
    SUPPORTED_SCHEMES,
)
from reconcile.redact import mask_credentials
from reconcile.spack.consumers import SPACK_RELEASES

# Patterns are used with fullmatch: '$' would also match before a final newline.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]+")
FINGERPRINT_PATTERN = re.compile(r"[0-9A-F]{40}")
# Nix key names (what reconcile.trust.ed25519 accepts too).
ED25519_NAME_PATTERN = re.compile(r"[A-Za-z0-9_.+-]{1,128}")
SOURCE_PATTERN = re.compile(r"mirror:(?P<mirror>[A-Za-z0-9_.-]+)")
# [user[:password]@]host[:port], host being a name or a bracketed IPv6 address.
AUTHORITY_PATTERN = re.compile(r"([^\[\]]*@)?(\[[^\]/?#@]*\]|[^/?#@:\[\]]+)(:(?P<port>[0-9]*))?")
MAX_PORT = 65535
BUCKET_PATTERN = re.compile(r"[A-Za-z0-9._-]+")
# An OCI repository (the distribution spec's grammar), after the registry's host and port.
_OCI_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
OCI_REPOSITORY_PATTERN = re.compile(rf"/{_OCI_COMPONENT}(?:/{_OCI_COMPONENT})*/?")
ARCH_PATTERN = re.compile(r"[^-\s]+-[^-\s]+-[^-\s]+")
READ_SCOPES = ("world", "group", "user")
WRITE_SCOPES = ("user", "group", "world")
PADDED_LENGTH_RANGE = (1, 4096)
VIEW_KEEP_RANGE = (1, 1000)
MIRROR_LAYOUTS = (2, 3)
# A source's name and version become file and folder names in the mirror.
PATH_COMPONENT_PATTERN = re.compile(r"[A-Za-z0-9._+-]+")
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
# After the authority, a path whose last segment is not empty: the file the URL names.
URL_FILE_NAME_PATTERN = re.compile(r"[^:]+://[^/?#]*/([^?#]*/)?[^/?#]+([?#].*)?", re.DOTALL)
WEB_SCHEMES = ("http", "https")
PATH_PREFIX_STARTS = ("/", "./", "../")

# Widest first for read, narrowest first for write: a scope's rank is how many it lets in.
_SCOPE_RANK = {"user": 0, "group": 1, "world": 2}

# bool before int and datetime before date: each is a subclass of the next.
_TOML_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a float"),
    (str, "a string"),
    (list, "an array"),
    (dict, "a table"),
    (datetime.datetime, "a date-time"),
    (datetime.date, "a date"),
    (datetime.time, "a time"),
)


def describe_type(value: Any) -> str:
    """``an integer``, ``a table``...: the TOML type of a value, for messages."""
    for python_type, name in _TOML_TYPES:
        if isinstance(value, python_type):
            return name
    return type(value).__name__


def _listing(choices: tuple[str, ...]) -> str:
    return ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 else choices[0]


def check_name(name: str, what: str) -> str | None:
    if not name:
        return f"the {what} name is empty (expected letters, digits, '_', '.' and '-')"
    if NAME_PATTERN.fullmatch(name) is None:
        return f"invalid {what} name {name!r} (expected letters, digits, '_', '.' and '-')"
    return None


def check_not_empty(text: str, expected: str) -> str | None:
    return f"is empty (expected {expected})" if not text.strip() else None


def check_mirror_url(url: str, *, repository: bool = True) -> str | None:
    """A URL with a supported scheme, or a plain path (relative to the manifest's folder).
    An OCI URL names a repository, unless ``repository`` is False (a cache root's prefix).

    The authority is checked with the same grammar as the JSON Schema, a little stricter than
    ``urllib.parse`` (which lets ``http://a[::1]`` through).
    """
    if not url.strip():
        return "is empty (expected a URL such as https://host/path, or a path)"
    if url != url.strip():
        return f"{mask_credentials(url)!r} has leading or trailing white space"
    if "://" not in url:
        return None
    scheme, rest = url.split("://", 1)
    scheme = scheme.lower()
    if scheme not in SUPPORTED_SCHEMES:
        return f"unsupported scheme {scheme!r} (expected {', '.join(SUPPORTED_SCHEMES)})"
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if scheme == "file":
        return _check_file_url(url, authority, rest[len(authority) :])
    if scheme == "s3":
        if not authority:
            return f"s3 URL {mask_credentials(url)!r} has no bucket (expected s3://bucket/prefix)"
        if BUCKET_PATTERN.fullmatch(authority) is None:
            return f"s3 URL {mask_credentials(url)!r} names bucket {authority!r} (expected s3://bucket/prefix)"
        return None
    problem = _check_web_authority(url, scheme, authority)
    if problem is None and scheme in OCI_SCHEMES:
        return _check_oci_repository(url, rest[len(authority) :], repository)
    return problem


def check_declared_mirror_url(url: str) -> str | None:
    """A ``[[mirror]]`` url: as ``check_mirror_url``, and a query string only on http(s),
    where every URL below the mirror keeps it (``transport/urls.py``); never a fragment."""
    problem = check_mirror_url(url)
    if problem is not None or "://" not in url:
        return problem  # a plain path's '?' and '#' are parts of a file name
    scheme = url.split("://", 1)[0].lower()
    if "#" in url:
        return (
            f"{mask_credentials(url)!r} has a fragment ('#...'), which is never sent to a "
            "server (expected the mirror's URL without it)"
        )
    if "?" in url and scheme not in WEB_SCHEMES:
        return (
            f"{mask_credentials(url)!r} has a query string; only http(s) mirror URLs may "
            f"carry one (expected {scheme}://... without '?')"
        )
    return None


def _check_oci_repository(url: str, path: str, required: bool) -> str | None:
    if not required and path in ("", "/"):
        return None
    if OCI_REPOSITORY_PATTERN.fullmatch(path) is None:
        return (
            f"OCI URL {mask_credentials(url)!r} does not name a repository (expected "
            "oci://host[:port]/repository, lower-case letters, digits and . _ - separators, "
            "without a query)"
        )
    return None


def _check_file_url(url: str, authority: str, path: str) -> str | None:
    if authority not in ("", "localhost"):
        return (
            f"file URL {mask_credentials(url)!r} names host {authority.rpartition('@')[2]!r} "
            "(expected file:///absolute/path; write a relative path without file://)"
        )
    if not path.startswith("/"):
        return f"file URL {mask_credentials(url)!r} has no path (expected file:///absolute/path)"
    return None


def _check_web_authority(url: str, scheme: str, authority: str) -> str | None:
    if not authority.rpartition("@")[2]:
        return f"{scheme} URL {mask_credentials(url)!r} has no host (expected {scheme}://host/path)"
    match = AUTHORITY_PATTERN.fullmatch(authority)
    if match is None:
        return (
            f"{scheme} URL {mask_credentials(url)!r} has a malformed host "
            f"(expected {scheme}://host[:port]/path)"
        )
    if match["port"] and int(match["port"]) > MAX_PORT:
        shown = mask_credentials(url)
        return f"{scheme} URL {shown!r} has port {match['port']} (expected at most {MAX_PORT})"
    if scheme in ("http", "oci+http") and "@" in authority:
        return (
            "credentials in a plain http URL would be sent in clear "
            "(expected https, or no 'user:password@')"
        )
    return None


def check_source_url(url: str) -> str | None:
    """Like a mirror URL, but it must name a file: the mirror names its copy after it."""
    if "://" in url and url.split("://", 1)[0].lower() in OCI_SCHEMES:
        return (
            "is an OCI registry URL (expected the file://, http(s):// or s3:// URL, or the "
            "path, of an archive: OCI registries hold binaries only)"
        )
    problem = check_mirror_url(url)
    if problem is not None:
        return problem
    if "://" in url:
        named = URL_FILE_NAME_PATTERN.fullmatch(url) is not None
    else:
        named = not url.endswith("/")
    if not named:
        # Not echoed: a source URL may carry credentials.
        return (
            "does not name a file (expected the URL or path of an archive, such as "
            "https://example.org/greetlib-2.1.tar.gz)"
        )
    return None


def check_endpoint_url(url: str) -> str | None:
    """An S3-compatible service: http or https, a host, and no credentials (those come from
    the profile or the environment, never from the manifest)."""
    expected = "expected http://host[:port] or https://host[:port]"
    if not url.strip():
        return f"is empty ({expected})"
    if "://" not in url or url.split("://", 1)[0].lower() not in WEB_SCHEMES:
        return f"{mask_credentials(url)!r} is not an http(s) URL ({expected})"
    problem = check_mirror_url(url)
    if problem is not None:
        return problem
    if "@" in _authority(url):
        # Not echoed: the message would print the secret into CI logs.
        return (
            "has 'user:password@' in it (expected no credentials: S3 credentials come "
            "from the profile or the environment)"
        )
    return None


def check_profile(profile: str) -> str | None:
    if not profile.strip():
        return "is empty (expected the name of an AWS profile, such as 'ci')"
    if profile != profile.strip():
        return f"{profile!r} has leading or trailing white space"
    return None


def check_cache_prefix(prefix: str) -> str | None:
    """A URL prefix with a supported scheme and no credentials, or a path written
    unambiguously: absolute, or starting with ./ or ../ (relative to the manifest's folder).

    A bare ``mirror.example.org/x`` is refused: it is more likely a URL missing its scheme
    than a folder next to the manifest.
    """
    expected = (
        "expected a URL such as https://host/path/, s3://bucket/path/ or file:///path/, "
        "or a path starting with /, ./ or ../"
    )
    if not prefix.strip():
        return f"is empty ({expected})"
    if prefix != prefix.strip():
        return f"{prefix!r} has leading or trailing white space"
    if "://" in prefix:
        problem = check_mirror_url(prefix, repository=False)
        if problem is not None:
            return problem
        if "@" in _authority(prefix):
            return (
                "has 'user:password@' in it (expected no credentials: prefixes are matched "
                "without that part of URLs)"
            )
        return None
    if not prefix.startswith(PATH_PREFIX_STARTS):
        return f"{prefix!r} is neither a URL nor a path starting with /, ./ or ../ ({expected})"
    return None


def _authority(url: str) -> str:
    return re.split(r"[/?#]", url.split("://", 1)[1], maxsplit=1)[0]


def normalize_fingerprint(text: str) -> str:
    """GnuPG prints fingerprints in groups of four: accept that, and lower case."""
    return "".join(text.split()).upper()


def check_fingerprint(text: str) -> str | None:
    """A full GnuPG fingerprint, as written (``normalize_fingerprint`` makes the model's form)."""
    normalized = normalize_fingerprint(text)
    if FINGERPRINT_PATTERN.fullmatch(normalized) is not None:
        return None
    not_hex = sorted({char for char in normalized if char not in "0123456789ABCDEF"})
    if not_hex:
        return (
            f"{text!r} is not a GnuPG fingerprint "
            f"(expected 40 hexadecimal digits; {''.join(not_hex)!r} are not)"
        )
    return (
        f"{text!r} has {len(normalized)} hexadecimal digits "
        "(expected the 40 of a full GnuPG fingerprint; a key ID is not enough)"
    )


def check_key_kind(kind: str) -> str | None:
    if kind not in SUPPORTED_KEY_KINDS:
        return f"unsupported key kind {kind!r} (supported: {', '.join(SUPPORTED_KEY_KINDS)})"
    return None


def check_ed25519_public_key(text: str) -> str | None:
    """``<name>:<base64 of 32 bytes>``, as Nix writes public keys."""
    name, colon, encoded = text.partition(":")
    if not colon or not ED25519_NAME_PATTERN.fullmatch(name):
        return f"expected an ed25519 public key as '<name>:<base64>', got {text[:80]!r}"
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return f"the part after '{name}:' is not base64"
    if len(raw) != 32:
        return f"an ed25519 public key is 32 bytes, this one is {len(raw)}"
    return None


def check_key_source(source: str) -> str | None:
    if SOURCE_PATTERN.fullmatch(source) is None:
        return f"expected 'mirror:<name>' (a key the mirror publishes), got {source!r}"
    return None


def source_mirror(source: str) -> str | None:
    """``team`` for ``mirror:team``."""
    match = SOURCE_PATTERN.fullmatch(source)
    return match["mirror"] if match is not None else None


def check_scope(scope: str, which: str) -> str | None:
    choices = READ_SCOPES if which == "read" else WRITE_SCOPES
    if scope not in choices:
        return f"unsupported {which} scope {scope!r} (expected {_listing(choices)})"
    return None


def check_write_within_read(read: str, write: str) -> str | None:
    """Spack refuses to let more people write a file than can read it."""
    if _SCOPE_RANK[write] > _SCOPE_RANK[read]:
        return (
            f"write = {write!r} is broader than read = {read!r} "
            "(expected write no broader than read: widen read or narrow write)"
        )
    return None


def check_require(count: int) -> str | None:
    if count < 1:
        return f"require is {count}: expected at least 1 distinct trusted signature"
    return None


def check_layout(layout: int) -> str | None:
    if layout not in MIRROR_LAYOUTS:
        return f"unsupported binary cache layout {layout} (expected 2 or 3)"
    return None


def check_path_component(text: str, what: str) -> str | None:
    """A single file or folder name: letters, digits, '.', '_', '+' and '-', not '.' or '..'."""
    expected = "expected letters, digits, '.', '_', '+' and '-'"
    if not text:
        return f"the {what} is empty ({expected})"
    if PATH_COMPONENT_PATTERN.fullmatch(text) is None or text in (".", ".."):
        return f"invalid {what} {text!r} ({expected}; it becomes a file name in the mirror)"
    return None


def normalize_sha256(text: str) -> str:
    return text.lower()


def check_sha256(text: str) -> str | None:
    if SHA256_PATTERN.fullmatch(normalize_sha256(text)) is not None:
        return None
    return f"{text!r} is not a sha256 checksum (expected 64 hexadecimal digits)"


def check_padded_length(length: int) -> str | None:
    low, high = PADDED_LENGTH_RANGE
    if not low <= length <= high:
        return f"expected an integer between {low} and {high}, got {length}"
    return None


def check_spack_release(release: str) -> str | None:
    if release not in SPACK_RELEASES:
        return f"expected one of {', '.join(repr(r) for r in SPACK_RELEASES)}, got {release!r}"
    return None


def check_prefix_length(length: int) -> str | None:
    low, high = PADDED_LENGTH_RANGE
    if not low <= length <= high:
        return f"expected an integer between {low} and {high}, got {length}"
    return None


def check_arch(arch: str) -> str | None:
    if ARCH_PATTERN.fullmatch(arch) is None:
        return f"expected platform-os-target such as 'linux-debian12-x86_64_v4', got {arch!r}"
    return None


def check_version(version: int) -> str | None:
    if version != 1:
        return f"unsupported manifest version {version} (expected 1)"
    return None


def check_ignore_glob(text: str) -> str | None:
    """A drift ignore glob: relative to the prefix or mirror, never leaving it."""
    if not text:
        return "the glob is empty (expected a relative path pattern such as '**/__pycache__/**')"
    if text.startswith("/"):
        return f"{text!r} is absolute; globs are relative to each prefix or mirror"
    if ".." in text.split("/"):
        return f"{text!r} has a '..' component; globs match paths inside the prefix or mirror"
    if "\0" in text:
        return "the glob holds a NUL byte"
    return None


def check_limit(value: int) -> str | None:
    if value < 1:
        return f"expected a positive integer, got {value}"
    return None


def check_external_folder(path: str) -> str | None:
    """An entry of ``[install] externals``: an absolute, normalised folder other than ``/``
    (which would let a signed spec point absolute symlinks anywhere, /etc/shadow included)."""
    if not path.startswith("/"):
        return f"{path!r} is not an absolute path (expected a folder such as /usr or /opt/site)"
    if "\0" in path:
        return "contains a NUL byte (expected a folder such as /usr)"
    if path.rstrip("/") == "":
        return (
            "'/' would let a signed spec point symlinks anywhere (expected a folder below it, "
            "such as /usr)"
        )
    if posixpath.normpath(path) != path.rstrip("/") or "//" in path:
        return f"{path!r} is not a normalised path (expected {posixpath.normpath(path)!r})"
    return None


def check_link_kind(kind: str) -> str | None:
    if kind not in LINK_KINDS:
        return f"unsupported link {kind!r} (expected {_listing(LINK_KINDS)})"
    return None


def check_conflict_policy(policy: str) -> str | None:
    if policy not in CONFLICT_POLICIES:
        return f"unsupported conflict policy {policy!r} (expected {_listing(CONFLICT_POLICIES)})"
    return None


def check_view_keep(keep: int) -> str | None:
    low, high = VIEW_KEEP_RANGE
    if not low <= keep <= high:
        return f"keep = {keep} is out of range (expected {low} to {high} generations)"
    return None
