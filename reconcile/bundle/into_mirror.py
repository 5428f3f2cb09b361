"""``reconcile bundle import BUNDLE.tar URL``: a verified bundle written straight into a
mirror (an ``s3://`` bucket prefix, or a ``file://`` mirror folder) instead of a new folder.

The bundle is checked and unpacked into a private folder and verified there exactly as for a
folder import; only then is anything written, through the mirror's write seam. Order matters
because readers may be reading the mirror meanwhile and an upload can stop half-way: the
tarballs (and source archives) first, then the signed metadata naming them, then the index.
A reader therefore never finds an index entry whose metadata is missing, or metadata whose
tarball is missing; an interrupted import leaves files no index lists, and running it again
completes it. The bundle's entries are added to the mirror's index (entries already there
stay), so a bundle can be imported into a mirror that already serves other specs.

Destinations are ``ImportDestination``s: ``StoreDestination`` writes through a
``MirrorStore`` (folders and buckets address files by key). A registry (``oci://``) stores
images rather than files: ``RegistryDestination`` receives the same ``BundleCheck`` (every
spec with its verified document and tarball) and pushes one image per spec, in Spack's OCI
format, then moves the index tag. Spack's OCI caches are unsigned, so the bundle's GnuPG
signatures are checked here, before the push, and do not travel into the registry; its
sidecars do, each as the ``<name>-<version>-<hash>.reconcile-sig`` tag pushed after its image.
"""

from __future__ import annotations

import abc
import shutil
import tempfile
from pathlib import Path

import attrs
import tomlkit
from tomlkit.items import AoT

from reconcile.buildcache.layout_v2 import BUILD_CACHE, INDEX
from reconcile.buildcache.layout_v3 import LAYOUT_FOLDER, LAYOUT_JSON
from reconcile.buildcache.manifest_v3 import BLOBS
from reconcile.buildcache.writer_oci import push_package_oci, push_sidecar_oci, update_index_oci
from reconcile.buildcache.writer_v2 import write_index_v2
from reconcile.buildcache.writer_v3 import write_index_v3
from reconcile.bundle.archive import scan_archive, unpack_archive
from reconcile.bundle.errors import BundleError
from reconcile.bundle.importer import check_destination
from reconcile.bundle.listing import FileDigest
from reconcile.bundle.rewrite import KEYS_FOLDER
from reconcile.bundle.verify import MANIFEST_NAME, MIRROR_FOLDER, BundleCheck, verify_bundle_tree
from reconcile.redact import mask_credentials
from reconcile.reprs import fields_repr
from reconcile.transport.oci import OciTransport
from reconcile.transport.registry import TransportPool
from reconcile.transport.store import MirrorStore

# The file whose presence marks each layout's mirror (what readers look for first).
LAYOUT_MARKERS = {2: f"{BUILD_CACHE}/{INDEX}", 3: f"{LAYOUT_FOLDER}/{LAYOUT_JSON}"}


@attrs.frozen(kw_only=True)
class MirrorImportSummary:
    __repr__ = fields_repr

    destination: str  # the mirror's URL, credentials masked
    files: int  # files written into the mirror (index files not counted)
    check: BundleCheck
    manifest: Path | None = None  # the manifest written for the mirror, when asked for


class ImportDestination(abc.ABC):
    """A mirror that receives a verified bundle."""

    shown: str  # its URL with credentials masked, for messages

    @abc.abstractmethod
    def mirror_fields(self) -> dict[str, object]:
        """The ``[[mirror]]`` fields a manifest needs to read this mirror (url, ...)."""

    @abc.abstractmethod
    def receive(self, check: BundleCheck, listed: dict[str, FileDigest]) -> int:
        """Write the verified mirror folder of ``check`` (content, then metadata, then
        index); returns how many files were written. ``listed`` holds the sha256 of each
        member as the bundle lists it, to compare with the bytes written."""


class StoreDestination(ImportDestination):
    """A mirror written through its ``MirrorStore`` (a folder, or an S3 bucket prefix)."""

    def __init__(self, store: MirrorStore, fields: dict[str, object]) -> None:
        self.store = store
        self.shown = store.url
        self.fields = fields

    def mirror_fields(self) -> dict[str, object]:
        return dict(self.fields)

    def receive(self, check: BundleCheck, listed: dict[str, FileDigest]) -> int:
        assert check.mirror_root is not None
        self._check_layout(check.layout)
        root = check.mirror_root
        metadata = [spec.metadata for spec in check.bundled]
        # sidecars go with the content: metadata that needs its sidecar never comes first
        spec_content = {key for spec in check.bundled for key in spec.content} | {
            spec.sidecar for spec in check.bundled if spec.sidecar is not None
        }
        # what is not the binary cache (source archives); the bundle's own index is merged
        # into the mirror's below, never copied over it
        sources = {
            path.relative_to(root).as_posix()
            for top in root.iterdir()
            if top.name not in (BUILD_CACHE, LAYOUT_FOLDER, BLOBS)
            for path in ([top] if top.is_file() else top.rglob("*"))
            if path.is_file()
        }
        content = sorted(spec_content | sources)
        for key in [*content, *metadata]:
            self._put(root, key, listed)
        nodes = [entry.node for entry in check.index]
        if check.layout == 3:
            in_cache = {entry.node.hash for entry in check.index if entry.in_buildcache}
            write_index_v3(self.store, nodes, in_buildcache=in_cache)
        else:
            write_index_v2(self.store, nodes)
        return len(content) + len(metadata)

    def _check_layout(self, layout: int) -> None:
        """A mirror already in the other layout would hide what is imported: readers look
        for ``v3/layout.json`` first, and Spack reads one layout per mirror."""
        other = 5 - layout
        if self.store.exists(LAYOUT_MARKERS[other]) and not self.store.exists(
            LAYOUT_MARKERS[layout]
        ):
            raise BundleError(
                f"{self.shown} is a layout-{other} binary cache (it has "
                f"{LAYOUT_MARKERS[other]}), but the bundle's mirror is layout {layout}",
                hint=f"import it into another mirror, or export the bundle from a layout-{other} "
                "mirror",
            )

    def _put(self, root: Path, key: str, listed: dict[str, FileDigest]) -> None:
        if key.startswith(f"{BLOBS}/") and self.store.exists(key):
            return  # content-addressed: the same key holds the same bytes
        written = self.store.put_file(key, root.joinpath(*key.split("/")))
        expected = listed.get(f"{MIRROR_FOLDER}/{key}")
        if expected is None or written != expected.sha256:
            raise BundleError(
                f"{key}: the bytes written into {self.shown} are not the bytes the bundle "
                "lists for it",
                hint="the unpacked copy changed during the import; import the bundle again",
            )


def import_into_mirror(
    bundle: Path, destination: ImportDestination, *, manifest_out: Path | None = None
) -> MirrorImportSummary:
    """Check ``bundle``, verify it in a private folder, then write it into ``destination``.
    With ``manifest_out`` (a new or empty folder), the bundle's manifest and keys go there,
    its mirror pointed at ``destination``."""
    if manifest_out is not None:
        check_destination(manifest_out)
    listed = scan_archive(bundle)  # nothing is unpacked before every member is checked
    with tempfile.TemporaryDirectory(prefix="reconcile-bundle-import-") as private:
        staging = Path(private) / "bundle"
        staging.mkdir(mode=0o700)
        unpack_archive(bundle, staging, listed)
        check = verify_bundle_tree(staging)
        files = destination.receive(check, listed)
        manifest = None
        if manifest_out is not None:
            manifest = _write_manifest(staging, manifest_out, destination.mirror_fields())
    return MirrorImportSummary(
        destination=destination.shown, files=files, check=check, manifest=manifest
    )


def _write_manifest(staging: Path, out: Path, fields: dict[str, object]) -> Path:
    """The bundle's manifest reading the mirror it was imported into. Its ``[[source]]``
    tables are left out: reconcile keeps source mirrors in folders only, and the archives are
    in the mirror already, where Spack finds them."""
    document = tomlkit.parse((staging / MANIFEST_NAME).read_text(encoding="utf-8"))
    mirrors = document["mirror"]
    assert isinstance(mirrors, AoT)
    mirror = mirrors[0]
    mirror.update(fields)
    document.pop("source", None)
    out.mkdir(parents=True, exist_ok=True)
    keys = staging / KEYS_FOLDER
    if keys.is_dir():
        shutil.copytree(keys, out / KEYS_FOLDER)
    manifest = out / MANIFEST_NAME
    manifest.write_text(tomlkit.dumps(document), encoding="utf-8")
    return manifest


class RegistryDestination(ImportDestination):
    """An OCI registry repository (``oci://host/repository``): an image per spec, then the
    ``index.spack`` tag, as publishing and syncing write them."""

    def __init__(self, transport: OciTransport, url: str) -> None:
        self.transport = transport
        self.url = url
        self.shown = mask_credentials(url)

    def mirror_fields(self) -> dict[str, object]:
        return {"url": self.url, "signed": False}  # Spack's OCI caches are unsigned

    def receive(self, check: BundleCheck, listed: dict[str, FileDigest]) -> int:
        assert check.mirror_root is not None
        root = check.mirror_root
        for spec in check.bundled:
            tarball = root.joinpath(*spec.tarball.split("/"))
            expected = listed.get(f"{MIRROR_FOLDER}/{spec.tarball}")
            pushed = push_package_oci(
                self.transport, spec_document={"spec": spec.document["spec"]}, tarball=tarball
            )
            if expected is None or pushed.tarball_sha256 != expected.sha256:
                raise BundleError(
                    f"{spec.tarball}: the tarball pushed to {self.shown} is not the one the "
                    "bundle lists",
                    hint="the unpacked copy changed during the import; import the bundle again",
                )
            if spec.sidecar is not None:  # verified with the bundle, tagged after its image
                sidecar = root.joinpath(*spec.sidecar.split("/")).read_bytes()
                push_sidecar_oci(self.transport, spec.node, sidecar)
        pushed_hashes = {spec.node.hash for spec in check.bundled}
        nodes = [entry.node for entry in check.index]
        update_index_oci(self.transport, self.url, nodes, in_buildcache=pushed_hashes)
        return len(check.bundled)


def destination_for(
    pool: TransportPool, url: str, *, endpoint_url: str | None, profile: str | None
) -> ImportDestination:
    """The mirror at ``url`` as a destination: a registry for ``oci://`` (and ``oci+http://``),
    else through the mirror's store. ``pool`` must hold a ``MirrorEndpoint`` for ``url`` (so
    its endpoint_url, profile or registry credentials apply)."""
    if url.startswith(("oci://", "oci+http://")):
        transport = pool.for_url(url)
        assert isinstance(transport, OciTransport)
        return RegistryDestination(transport, url)
    fields: dict[str, object] = {"url": url}
    if endpoint_url is not None:
        fields["endpoint_url"] = endpoint_url
    if profile is not None:
        fields["profile"] = profile
    return StoreDestination(pool.store_for(url), fields)
