"""Where a source lives in a Spack source mirror.

```
<mirror>/_source-cache/archive/<first two hex of sha256>/<sha256>.<ext>   the file
<mirror>/<name>/<name>-<version>.<ext>                                    relative symlink to it
```
``<ext>`` comes from the file name in the source's URL.
"""

from __future__ import annotations

import posixpath
import re
import urllib.parse

import attrs

from reconcile.errors import ReconcileError
from reconcile.manifest.checks import check_path_component
from reconcile.manifest.model import Source
from reconcile.reprs import fields_repr
from reconcile.state.sources import SOURCE_CACHE

ARCHIVE_FOLDER = f"{SOURCE_CACHE}/archive"
# Longest first, so that ``.tar.gz`` wins over ``.gz``.
_KNOWN_EXTENSIONS = ("tar.gz", "tgz", "tar.bz2", "tbz2", "tar.xz", "txz", "tar.zst", "tar")
ARCHIVE_EXTENSIONS = tuple(
    sorted((*_KNOWN_EXTENSIONS, "zip", "gz", "bz2", "xz"), key=len, reverse=True)
)
# A fallback extension becomes part of a file name in the mirror: keep it plain.
_PLAIN_SUFFIX = re.compile(r"[A-Za-z0-9]+")
_LOWER_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


def url_file_name(url: str) -> str:
    """The last path segment of a URL or plain path, percent-decoded (no query, no fragment)."""
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path) if "://" in url else url
    return path.rsplit("/", 1)[-1]


def archive_extension(url: str) -> str:
    """``tar.gz`` for ``.../greetlib-2.1.tar.gz``: a known archive extension (longest match),
    else the last suffix, else "" (no extension)."""
    name = url_file_name(url)
    for extension in ARCHIVE_EXTENSIONS:
        if name.endswith("." + extension) and len(name) > len(extension) + 1:
            return extension
    stem, dot, suffix = name.rpartition(".")
    if dot and stem and _PLAIN_SUFFIX.fullmatch(suffix):
        return suffix
    return ""


@attrs.frozen(kw_only=True)
class SourcePaths:
    """The two entries of one source, relative to the mirror root (POSIX paths)."""

    __repr__ = fields_repr

    archive: str  # _source-cache/archive/fa/fa2d...df.tar.gz
    link: str  # greetlib/greetlib-2.1.tar.gz
    link_target: str  # ../_source-cache/archive/fa/fa2d...df.tar.gz, relative to the link

    @property
    def archive_folder(self) -> str:
        return posixpath.dirname(self.archive)

    @property
    def link_folder(self) -> str:
        return posixpath.dirname(self.link)


def _with_extension(stem: str, extension: str) -> str:
    return f"{stem}.{extension}" if extension else stem


def source_paths(source: Source) -> SourcePaths:
    """Where ``source`` goes. The manifest loader has checked every part; this checks again
    because the parts become file names (a library caller may not have loaded a manifest)."""
    problems = [
        check_path_component(source.name, "source name"),
        check_path_component(source.version, "version"),
        None
        if _LOWER_HEX_SHA256.fullmatch(source.sha256)
        else f"sha256 {source.sha256!r} is not 64 lower-case hexadecimal digits",
    ]
    found = [problem for problem in problems if problem is not None]
    if found:
        raise ReconcileError(
            f"source {source.name!r}@{source.version!r} cannot be placed in a mirror: "
            + "; ".join(found),
            hint="load sources from a manifest, which checks names, versions and checksums",
            reference="invalid-source",
        )
    extension = archive_extension(source.url)
    archive = f"{ARCHIVE_FOLDER}/{source.sha256[:2]}/{_with_extension(source.sha256, extension)}"
    link = f"{source.name}/{_with_extension(f'{source.name}-{source.version}', extension)}"
    return SourcePaths(archive=archive, link=link, link_target=f"../{archive}")
