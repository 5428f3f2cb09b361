"""``reconcile bundle export``: the manifest's full closure, sources and keys in one tar."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

import attrs

from reconcile.buildcache.layout_v2 import sidecar_url
from reconcile.buildcache.layout_v3 import blob_url, is_v3, sidecar_url_v3
from reconcile.buildcache.manifest_v3 import check_blob, parse_manifest
from reconcile.buildcache.pinned_keys import load_trusted_keys
from reconcile.buildcache.writer_v2 import write_index_v2
from reconcile.buildcache.writer_v3 import write_index_v3
from reconcile.bundle.archive import write_archive
from reconcile.bundle.errors import BundleError
from reconcile.bundle.listing import LISTING_NAME, listing_bytes
from reconcile.bundle.rewrite import key_member, rewritten_manifest, root_member
from reconcile.bundle.verify import MANIFEST_NAME, MIRROR_FOLDER, verify_bundle_tree
from reconcile.engine import lock_use, observe_and_plan
from reconcile.errors import NotFoundError
from reconcile.hashing import digest_file
from reconcile.manifest.load import load_manifest
from reconcile.manifest.model import ManifestFile
from reconcile.plan.model import InstallAction, source_url
from reconcile.redact import mask_credentials
from reconcile.reprs import fields_repr
from reconcile.sources.layout import source_paths
from reconcile.spack.spec import SpecNode, parse_node
from reconcile.transport.bounds import Cap, signed_size_cap, source_cap
from reconcile.transport.oci_reference import is_oci_url
from reconcile.transport.registry import TransportPool, endpoints_of
from reconcile.transport.urls import relative_to
from reconcile.trust.clearsign import unverified_text
from reconcile.trust.sigstore_key import SigstoreKey


@attrs.frozen(kw_only=True)
class ExportSummary:
    __repr__ = fields_repr

    out: Path
    specs: int
    sources: int
    keys: int


def _with_empty_root(loaded: ManifestFile, root: Path) -> ManifestFile:
    """The manifest planned against an empty install root: the plan is then the whole closure."""
    install = loaded.manifest.install
    assert install is not None
    manifest = attrs.evolve(loaded.manifest, install=attrs.evolve(install, root=str(root)))
    return attrs.evolve(loaded, manifest=manifest)


def _relative(url: str, base: str) -> str:
    below = relative_to(url, base)
    if not below:
        raise BundleError(
            f"{mask_credentials(url)} is not under its mirror {mask_credentials(base)}",
            hint="this is a bug; report it",
        )
    return below


def _write(root: Path, relative: str, data: bytes) -> None:
    target = root.joinpath(*relative.split("/"))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def _copy_tarball(data: bytes, expected: str, url: str, root: Path, relative: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise BundleError(
            f"{url}: the tarball has sha256 {actual}, but its signed metadata says {expected}",
            hint="the mirror is damaged or tampered with; repair it before exporting",
        )
    _write(root, relative, data)


def _copy_sidecar(
    action: InstallAction, pool: TransportPool, base: str, v3: bool, root: Path
) -> None:
    """The spec's sidecar signatures, when the mirror has them: copied as they are (the
    bundle is verified with its own keys before it is written, sidecars included)."""
    node = parse_node({**action.spec, "hash": action.hash})
    url = sidecar_url_v3(base, node) if v3 else sidecar_url(base, node)
    try:
        data = pool.read_bytes(url)
    except NotFoundError:
        return
    _write(root, _relative(url, base), data)


def _copy_spec(action: InstallAction, pool: TransportPool, base: str, v3: bool, root: Path) -> None:
    spec_url = pool.unmask(action.mirror, action.spec_url)
    metadata = pool.read_bytes(spec_url)
    _write(root, _relative(spec_url, base), metadata)
    _copy_sidecar(action, pool, base, v3, root)
    if not v3:
        url = pool.unmask(action.mirror, action.tarball_url)
        cap = Cap(action.tarball_bytes, "the size the plan recorded for it")
        data = pool.read_bytes(url, cap=cap)
        _copy_tarball(data, action.tarball_sha256, url, root, _relative(url, base))
        return
    # the bytes were verified by the planner; the bundled copy is verified again below
    manifest = parse_manifest(unverified_text(metadata), source=spec_url)
    for record in manifest.records:
        url = blob_url(base, record)
        data = pool.read_bytes(url, cap=signed_size_cap(record.content_length))
        check_blob(data, record, source=url)
        _write(root, _relative(url, base), data)


def _mirror_layout(loaded: ManifestFile, pool: TransportPool, names: set[str]) -> tuple[bool, bool]:
    """(layout 3?, signed?) shared by every mirror the closure comes from."""
    kinds = set()
    for name in sorted(names):
        mirror = loaded.manifest.mirror(name)
        url = loaded.mirror_url(mirror)
        if is_oci_url(url):
            raise BundleError(
                f"mirror '{name}' is an OCI registry: bundles are exported from file, http(s) "
                "and s3 mirrors of layout 2 or 3",
                hint=f"copy the closure out of the registry first (a folder mirror with specs = "
                f"[...], synced from '{name}'), then export from that mirror",
            )
        kinds.add((is_v3(pool.for_url(url), url), mirror.signed))
    if len(kinds) > 1:
        raise BundleError(
            f"the closure comes from mirrors {sorted(names)} of different layouts or signing",
            hint="export from mirrors of one layout (2 or 3) that are all signed or all unsigned",
        )
    return kinds.pop() if kinds else (False, True)


def _mirror_policy(loaded: ManifestFile, names: set[str]) -> tuple[tuple[str, ...] | None, int]:
    """The ``trust`` and ``require`` the bundle's one mirror keeps: those of the mirrors the
    closure comes from, which must agree (else the bundle would verify with less)."""
    policies = {
        (mirror.trust, mirror.require)
        for mirror in (loaded.manifest.mirror(name) for name in sorted(names))
    }
    if len(policies) > 1:
        raise BundleError(
            f"the closure comes from mirrors {sorted(names)} whose trust policies differ "
            "(trust, require); the bundle's one mirror could keep only one of them",
            hint="export from mirrors with the same trust and require",
        )
    return policies.pop() if policies else (None, 1)


def _fill(loaded: ManifestFile, pool: TransportPool, staging: Path) -> ExportSummary:
    install = loaded.manifest.install
    if install is None:
        raise BundleError(
            f"{loaded.path}: the manifest has no [install] table, so there is nothing to bundle",
            hint="add [install] with root and specs",
        )
    with tempfile.TemporaryDirectory(prefix="reconcile-bundle-plan-") as empty:
        # the lock file's hashes, where it satisfies the manifest: the bundle carries what
        # a locked apply would install
        lock = lock_use(loaded, locked=False)
        plan = observe_and_plan(_with_empty_root(loaded, Path(empty) / "root"), pool, lock=lock)
    installs = sorted(plan.installs, key=lambda a: a.hash)
    names = {a.mirror for a in installs}
    v3, signed = _mirror_layout(loaded, pool, names)
    mirror_root = staging / MIRROR_FOLDER
    mirror_root.mkdir(parents=True)
    for action in installs:
        base = loaded.mirror_url(loaded.manifest.mirror(action.mirror))
        _copy_spec(action, pool, base, v3, mirror_root)
    nodes: list[SpecNode] = [parse_node({**a.spec, "hash": a.hash}) for a in installs]
    (write_index_v3 if v3 else write_index_v2)(mirror_root, nodes)
    for source in loaded.manifest.sources:
        url = source_url(source.url, loaded.folder)
        # its sha256 is checked below, once the whole archive is in
        data = pool.read_bytes(url, cap=source_cap(pool.limits, source.size))
        _copy_tarball(data, source.sha256, url, mirror_root, source_paths(source).archive)
    # Each key's checked material: a gpg key's armored block, an ed25519 key's text.
    material = {k.name: k.material for k in load_trusted_keys(loaded, read_url=pool.read_bytes)}
    for key in loaded.manifest.keys:
        if key.kind == "sigstore":  # its trusted root, as checked
            root = SigstoreKey.from_material(material[key.name]).trusted_root
            _write(staging, root_member(key.name), root.encode())
            continue
        _write(staging, key_member(key.name), material[key.name])
    mirrors = loaded.manifest.mirrors
    name = (
        next(iter(names)) if len(names) == 1 else mirrors[0].name if len(mirrors) == 1 else "bundle"
    )
    trust, require = _mirror_policy(loaded, names)
    text = rewritten_manifest(
        loaded,
        mirror_name=name,
        layout=3 if v3 else 2,
        signed=signed,
        trust=trust,
        require=require,
    )
    (staging / MANIFEST_NAME).write_text(text, encoding="utf-8")
    verify_bundle_tree(staging)
    return ExportSummary(
        out=staging, specs=len(installs), sources=len(loaded.manifest.sources), keys=len(material)
    )


def _write_listing(staging: Path) -> None:
    files = {
        path.relative_to(staging).as_posix(): digest_file(path)
        for path in staging.rglob("*")
        if path.is_file()
    }
    (staging / LISTING_NAME).write_bytes(listing_bytes(files))


def export_bundle(manifest: Path, out: Path) -> ExportSummary:
    """Write the bundle for ``manifest`` to ``out`` (replaced atomically)."""
    loaded = load_manifest(manifest)
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        with TransportPool(endpoints_of(loaded), limits=loaded.manifest.limits) as pool:
            summary = _fill(loaded, pool, staging)
        _write_listing(staging)
        write_archive(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return attrs.evolve(summary, out=out)
