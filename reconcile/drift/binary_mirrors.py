"""Binary mirrors this manifest writes (publish targets and synced mirrors), layouts 2 and 3:
every spec the index lists has its metadata and tarball, tarballs match the checksums their
metadata names, and no spec file or blob lies there that the index does not account for
(the ``.reconcile-sig`` sidecar beside a listed package's metadata is accounted for; one
beside nothing the index lists is a stray).

Signatures are not judged here (that is what every install does, with the pinned keys); the
audit reads the signed text only to learn the checksums it compares against. Remote mirrors
(s3://, oci://) are compared with a listing of the bucket or registry and their sizes
(``s3_mirrors``, ``oci_mirrors``), never downloaded; http(s):// mirrors have no listing and
are reported as skipped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from reconcile.buildcache.database import IndexEntry
from reconcile.buildcache.layout_v2 import BUILD_CACHE, KEYS_FOLDER, read_index, spec_stem
from reconcile.buildcache.layout_v3 import (
    LAYOUT_FOLDER,
    MANIFESTS,
    read_index_v3,
    spec_manifest_name,
)
from reconcile.buildcache.manifest_v3 import BLOBS, parse_manifest
from reconcile.cache.files import open_regular, sha256_of
from reconcile.drift.findings import ResourceAudit, sorted_findings
from reconcile.drift.oci_mirrors import audit_oci_mirror
from reconcile.drift.s3_mirrors import audit_s3_mirror
from reconcile.errors import ReconcileError
from reconcile.manifest.model import ManifestFile, Mirror
from reconcile.observe.findings import CheckMode, Finding
from reconcile.observe.ignore import IgnoreRules
from reconcile.redact import mask_credentials
from reconcile.spack.spec import parse_spec_document
from reconcile.transport.file import FileTransport, url_to_path
from reconcile.transport.oci import OciTransport
from reconcile.transport.oci_reference import is_oci_url
from reconcile.transport.registry import TransportPool, endpoints_of
from reconcile.transport.s3 import S3Transport
from reconcile.trust.clearsign import starts_clearsigned, unverified_text
from reconcile.trust.sidecar import SUFFIX as SIDECAR_SUFFIX

MAX_METADATA_BYTES = 64 << 20


def _files_under(folder: Path) -> Iterator[Path]:
    pending = [folder]
    while pending:
        current = pending.pop()
        try:
            with os.scandir(current) as listing:
                for item in listing:
                    if item.is_dir(follow_symlinks=False):
                        pending.append(Path(item.path))
                    else:
                        yield Path(item.path)
        except FileNotFoundError:
            continue


def _signed_json(path: Path, root: Path) -> object:
    # a regular file below the mirror's root, read up to the bound, never a link or a FIFO
    with open_regular(path, root=root) as stream:
        data = stream.read(MAX_METADATA_BYTES + 1)
    if len(data) > MAX_METADATA_BYTES:
        raise ValueError(f"larger than {MAX_METADATA_BYTES} bytes")
    return json.loads(unverified_text(data) if starts_clearsigned(data) else data)


def _superseded_index(path: Path) -> bool:
    """Updating a layout 3 index writes a new blob and leaves the old one (as Spack does):
    a blob holding a Spack database is not drift."""
    try:
        with path.open("rb") as stream:
            return stream.read(len(_DATABASE_START)) == _DATABASE_START
    except OSError:
        return False


_DATABASE_START = b'{"database":'


class _Audit:
    def __init__(self, root: Path, mode: CheckMode, ignore: IgnoreRules) -> None:
        self.root, self.mode, self.ignore = root, mode, ignore
        self.findings: list[Finding] = []
        self.checked = 0

    def add(self, severity: str, kind: str, path: Path, detail: str) -> None:
        relative = os.path.relpath(path, self.root)
        if not self.ignore.ignores(relative):
            self.findings.append(
                Finding(severity=severity, kind=kind, path=str(path), detail=detail)  # type: ignore[arg-type]
            )

    def check_file(self, path: Path, *, what: str, sha256: str | None, size: int | None) -> None:
        """A file the index accounts for: present, and of the recorded size and content."""
        self.checked += 1
        try:
            actual_size = path.lstat().st_size if not path.is_symlink() else None
        except FileNotFoundError:
            self.add(
                "error", "mirror-file-missing", path, f"the index lists {what}, the file is gone"
            )
            return
        if actual_size is None or not path.is_file():
            self.add("error", "mirror-file-corrupt", path, f"{what} is not a regular file")
            return
        if size is not None and actual_size != size:
            self.add(
                "error",
                "mirror-file-corrupt",
                path,
                f"{what}: {actual_size} bytes, its metadata says {size}",
            )
            return
        if (
            sha256 is not None
            and self.mode == "contents"
            and sha256_of(path, root=self.root) != sha256
        ):
            self.add(
                "error",
                "mirror-file-corrupt",
                path,
                f"{what}: content does not match the sha256 its metadata names",
            )


def _audit_v2(audit: _Audit, entries: dict[str, IndexEntry], signed: bool) -> None:
    cache = audit.root / BUILD_CACHE
    listed: set[Path] = {cache / "index.json", cache / "index.json.hash"}
    for entry in entries.values():
        if not entry.in_buildcache:
            continue
        node = entry.node
        stem = spec_stem(node)
        spec = cache / (stem + (".spec.json.sig" if signed else ".spec.json"))
        tarball = (
            cache / node.arch / node.compiler / f"{node.name}-{node.version}" / f"{stem}.spack"
        )
        # the sidecar publishing writes beside the metadata (it names .spec.json, signed or not)
        sidecar = cache / (stem + ".spec.json" + SIDECAR_SUFFIX)
        listed |= {spec, tarball, sidecar}
        audit.check_file(
            spec, what=f"the metadata of {node.name}/{node.hash[:7]}", sha256=None, size=None
        )
        checksum = None
        try:
            document = _signed_json(spec, audit.root)
            if isinstance(document, dict):
                checksum = parse_spec_document(document).tarball_sha256
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError) as exc:
            audit.add("error", "mirror-file-corrupt", spec, f"the metadata cannot be read ({exc})")
        audit.check_file(
            tarball, what=f"the tarball of {node.name}/{node.hash[:7]}", sha256=checksum, size=None
        )
    for path in _files_under(cache):
        if path in listed or path.relative_to(cache).parts[0] == KEYS_FOLDER:
            continue
        audit.add("warning", "mirror-file-unlisted", path, _unlisted_detail(path))


def _unlisted_detail(path: Path) -> str:
    if path.name.endswith(SIDECAR_SUFFIX):
        return "a signature sidecar of no package the index lists"
    return "the index does not list this file"


def _audit_v3(audit: _Audit, entries: dict[str, IndexEntry]) -> None:
    manifests = audit.root / LAYOUT_FOLDER / MANIFESTS
    referenced: set[str] = set()
    listed_manifests: set[Path] = set()
    for entry in entries.values():
        if not entry.in_buildcache:
            continue
        node = entry.node
        path = manifests / "spec" / node.name / spec_manifest_name(node)
        listed_manifests.add(path)
        audit.check_file(
            path, what=f"the manifest of {node.name}/{node.hash[:7]}", sha256=None, size=None
        )
    for path in _files_under(manifests):
        if path.name.endswith(SIDECAR_SUFFIX):
            # publishing's sidecar beside a listed spec manifest; anywhere else it is a stray
            if path.with_name(path.name.removesuffix(SIDECAR_SUFFIX)) not in listed_manifests:
                audit.add("warning", "mirror-file-unlisted", path, _unlisted_detail(path))
            continue
        try:
            manifest = parse_manifest(
                json.dumps(_signed_json(path, audit.root)).encode(), source=str(path)
            )
        except (OSError, ValueError, ReconcileError) as exc:
            audit.add("error", "mirror-file-corrupt", path, f"the manifest cannot be read ({exc})")
            continue
        if path.parent.parent.name == "spec" and path not in listed_manifests:
            audit.add("warning", "mirror-file-unlisted", path, "the index does not list this spec")
            continue
        for record in manifest.records:
            referenced.add(record.checksum)
            blob = audit.root.joinpath(*record.path_components)
            audit.check_file(
                blob,
                what=f"a blob named by {path.name}",
                sha256=record.checksum,
                size=record.content_length,
            )
    for path in _files_under(audit.root / BLOBS):
        if path.name not in referenced and not _superseded_index(path):
            audit.add("warning", "mirror-file-unlisted", path, "no manifest names this blob")


def _mirrors_written(manifest_file: ManifestFile) -> list[Mirror]:
    manifest = manifest_file.manifest
    written = {p.mirror for p in manifest.publish} | {m.name for m in manifest.mirrors if m.specs}
    return [m for m in manifest.mirrors if m.name in written]


def _audit_remote(mirror: Mirror, url: str, pool: TransportPool) -> ResourceAudit:
    """s3:// and oci:// mirrors: a listing and sizes, never a tarball (``s3_mirrors``,
    ``oci_mirrors``). Anything else has no listing to compare with: skipped, saying why."""
    scheme = url.split("://", 1)[0].lower()
    if scheme == "s3":
        transport = pool.for_url(url)
        assert isinstance(transport, S3Transport)
        return audit_s3_mirror(mirror, url, transport)
    if is_oci_url(url):
        transport = pool.for_url(url)
        assert isinstance(transport, OciTransport)
        return audit_oci_mirror(mirror, url, transport)
    return ResourceAudit(
        resource=f"mirror:{mirror.name}",
        location=mask_credentials(url),
        skipped=f"a {scheme}:// mirror has no listing to compare the index with (reconcile "
        "never writes one): drift checks file://, s3:// and oci:// mirrors",
    )


def audit_binary_mirrors(manifest_file: ManifestFile, *, mode: CheckMode) -> list[ResourceAudit]:
    with TransportPool(endpoints_of(manifest_file)) as pool:
        return _audit_all(manifest_file, mode, pool)


def _audit_all(
    manifest_file: ManifestFile, mode: CheckMode, pool: TransportPool
) -> list[ResourceAudit]:
    audits = []
    for mirror in _mirrors_written(manifest_file):
        url = manifest_file.mirror_url(mirror)
        resource = f"mirror:{mirror.name}"
        if not url.startswith("file:"):
            audits.append(_audit_remote(mirror, url, pool))
            continue
        root = url_to_path(url)
        audit = _Audit(root, mode, IgnoreRules(mirror.drift_ignore))
        transport = FileTransport()
        try:
            if (root / LAYOUT_FOLDER / "layout.json").is_file():
                _audit_v3(audit, read_index_v3(transport, url))
            elif (root / BUILD_CACHE / "index.json").is_file():
                _audit_v2(audit, read_index(transport, url), mirror.signed)
            else:
                audit.add(
                    "error",
                    "mirror-index-missing",
                    root,
                    "the mirror has no binary cache index (nothing published yet?)",
                )
        except ReconcileError as exc:
            audit.add(
                "error", "mirror-file-corrupt", root, f"the index cannot be read: {exc.message}"
            )
        audits.append(
            ResourceAudit(
                resource=resource,
                location=str(root),
                findings=sorted_findings(audit.findings),
                fix="run 'reconcile apply': it publishes or syncs what the mirror lacks; remove "
                "files the index does not list by hand"
                if audit.findings
                else None,
                checked=audit.checked,
            )
        )
    return audits
