"""Writing Spack's binary cache layout v2 (``build_cache/``) into a mirror folder.

The files are the ones ``spack buildcache push`` writes (FORMATS.md): the tarball, the spec
metadata (plain or clear-signed), the index with its hash, and the signers' public keys.
Every file goes through the mirror's write seam (``transport/store.py``: a folder or a
bucket) and is replaced atomically; the read-modify-write of the two indexes holds the
store's lock on its folder (local folders: concurrent publishers on one host do not lose
entries).

Order matters to readers that look while we write: the tarball lands before the spec that
names its checksum, and the spec before the index that lists it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from reconcile.buildcache.database import add_entries
from reconcile.buildcache.layout_v2 import (
    BUILD_CACHE,
    INDEX,
    INDEX_HASH,
    KEYS_FOLDER,
    spec_stem,
    unsafe_path_component,
)
from reconcile.buildcache.pack import binary_distribution_yaml, scan_relocation, write_tarball
from reconcile.errors import ReconcileError
from reconcile.faults import crash_point
from reconcile.hashing import sha256_of
from reconcile.reprs import fields_repr
from reconcile.spack.spec import SpecDocument, SpecNode, parse_spec_document
from reconcile.transport.store import LocalMirrorStore, MirrorStore, as_store
from reconcile.trust.sign import GpgSigner
from reconcile.trust.verify import key_fingerprints

LAYOUT_VERSION = 2
DATABASE_VERSION = "7"  # what Spack 0.20 to 0.23 write into build_cache/index.json
KEY_INDEX = "index.json"


@attrs.frozen(kw_only=True)
class PublishedSpec:
    __repr__ = fields_repr

    stem: str
    tarball: Path
    tarball_sha256: str
    tarball_size: int
    metadata: Path  # the .spec.json or .spec.json.sig written


def spec_json_bytes(document: Mapping[str, Any]) -> bytes:
    """JSON with one token per line, exactly as Spack writes ``spec.json``: GnuPG's
    clear-signing breaks lines longer than about 20,000 characters, this never makes any."""
    return json.dumps(document, indent=0, separators=(",", ":")).encode()


def compact_json_bytes(document: Mapping[str, Any]) -> bytes:
    """Compact JSON, as Spack writes ``index.json`` and ``_pgp/index.json``."""
    return json.dumps(document, separators=(",", ":")).encode()


def parse_checked(spec_document: Mapping[str, Any]) -> SpecDocument:
    try:
        document = parse_spec_document(spec_document)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ReconcileError(
            f"cannot publish this spec document: {exc}",
            hint="pass the JSON object of a concrete spec: {'spec': {'nodes': [...]}} with the "
            "package's node first",
            reference="bad-spec",
        ) from exc
    root = document.root
    part = unsafe_path_component(root)
    if part is not None:
        raise ReconcileError(
            f"spec {root.name}@{root.version}: {part!r} cannot be part of a mirror path",
            hint="names, versions, hashes and architectures may hold only letters, digits "
            "and . _ + = ~ -",
            reference="bad-spec",
        )
    return document


def tarball_key(node: SpecNode) -> str:
    """``build_cache/<arch>/<compiler>-<cver>/<name>-<version>/<stem>.spack``."""
    folder = f"{BUILD_CACHE}/{node.arch}/{node.compiler}/{node.name}-{node.version}"
    return f"{folder}/{spec_stem(node)}.spack"


def spec_key(node: SpecNode, *, signed: bool) -> str:
    suffix = ".spec.json.sig" if signed else ".spec.json"
    return f"{BUILD_CACHE}/{spec_stem(node)}{suffix}"


def tarball_path(mirror_root: Path, node: SpecNode) -> Path:
    return mirror_root.joinpath(*tarball_key(node).split("/"))


def spec_path(mirror_root: Path, node: SpecNode, *, signed: bool) -> Path:
    return mirror_root.joinpath(*spec_key(node, signed=signed).split("/"))


def _already_there(store: MirrorStore, key: str, tarball: Path) -> bool:
    """Whether ``tarball`` is the very file at ``key`` (packed in place)."""
    if not isinstance(store, LocalMirrorStore):
        return False
    target = store.local_path(key)
    return target.exists() and target.samefile(tarball)


def write_spec_v2(
    mirror: MirrorStore | Path,
    *,
    spec_document: Mapping[str, Any],
    tarball: Path,
    signer: GpgSigner | None,
) -> PublishedSpec:
    """Put ``tarball`` and the spec's metadata into the mirror.

    The metadata is ``spec_document`` (its ``spec.nodes``, package first) plus
    ``buildcache_layout_version`` and the tarball's sha256; clear-signed as
    ``<stem>.spec.json.sig`` with a signer, else plain ``<stem>.spec.json``. The other
    variant, if an earlier push left one, is removed: it would name an older checksum.
    """
    document = parse_checked(spec_document)
    if not tarball.is_file():
        raise ReconcileError(
            f"the tarball {tarball} does not exist",
            hint="write it first (reconcile.buildcache.pack.write_tarball)",
            reference="tarball-missing",
        )
    root = document.root
    store = as_store(mirror)
    target = tarball_key(root)
    with mirror_errors(store):
        if _already_there(store, target, tarball):
            checksum = sha256_of(tarball)
        else:
            checksum = store.put_file(target, tarball)  # the sha256 of the bytes written
    crash_point("publish-tarball-written")
    metadata = {
        key: value
        for key, value in spec_document.items()
        if key not in ("buildcache_layout_version", "binary_cache_checksum")
    }
    metadata["buildcache_layout_version"] = LAYOUT_VERSION
    metadata["binary_cache_checksum"] = {"hash_algorithm": "sha256", "hash": checksum}
    text = spec_json_bytes(metadata)
    signed = signer is not None
    written = spec_key(root, signed=signed)
    with mirror_errors(store):
        store.put_bytes(written, signer.clearsign(text) if signer is not None else text)
        store.delete(spec_key(root, signed=not signed))
    return PublishedSpec(
        stem=spec_stem(root),
        tarball=store.local_path(target),
        tarball_sha256=checksum,
        tarball_size=tarball.stat().st_size,
        metadata=store.local_path(written),
    )


@contextlib.contextmanager
def mirror_errors(
    store: MirrorStore, *, folders: str = "build_cache/ must be a folder"
) -> Iterator[None]:
    """File-system failures (read-only mirror, full disk, a file where a folder should be)
    become one clear error naming the path; ``folders`` says what the layout needs."""
    try:
        yield
    except OSError as exc:
        raise ReconcileError(
            f"cannot publish into {store.url}: {exc.filename or ''}: {exc.strerror or exc}",
            hint="check that the mirror folder is writable, has room, and holds a binary "
            f"cache layout ({folders})",
            reference="mirror-unwritable",
        ) from exc


def _read_json_object(store: MirrorStore, key: str, *, expected: str) -> dict[str, Any]:
    data = store.read_bytes(key)
    if data is None:
        return {}
    path = store.local_path(key)
    try:
        loaded = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReconcileError(
            f"{path} is not valid JSON ({exc}): expected {expected}",
            hint="move the damaged file away; publishing again writes a fresh one from the "
            "specs published from now on (or run `spack buildcache update-index`)",
            reference="malformed-metadata",
        ) from exc
    if not isinstance(loaded, dict):
        raise ReconcileError(
            f"{path} holds a JSON {type(loaded).__name__}: expected {expected}",
            hint="move the damaged file away and publish again",
            reference="malformed-metadata",
        )
    return loaded


def write_index_v2(mirror: MirrorStore | Path, nodes: Iterable[SpecNode]) -> None:
    """Add or replace ``nodes`` in ``build_cache/index.json``, then write ``index.json.hash``.

    Entries already there stay. Non-external nodes are listed ``in_buildcache: true`` (pass
    only those whose tarball is in this mirror); externals ``false``. ``ref_count`` is
    recomputed over the whole index.
    """
    store = as_store(mirror)
    index_key = f"{BUILD_CACHE}/{INDEX}"
    index_file = store.local_path(index_key)
    with mirror_errors(store), store.locked(BUILD_CACHE):
        index = _read_json_object(store, index_key, expected="a Spack database {'database': {...}}")
        database = index.setdefault("database", {"version": DATABASE_VERSION, "installs": {}})
        if not isinstance(database, dict) or not isinstance(database.get("installs"), dict):
            raise ReconcileError(
                f"{index_file} is not a Spack database: expected {{'database': {{'installs': "
                "{...}}}",
                hint="move the file away and publish again",
                reference="malformed-metadata",
            )
        installs: dict[str, Any] = database["installs"]
        add_entries(installs, nodes)
        data = compact_json_bytes(index)
        store.put_bytes(index_key, data)
        store.put_bytes(f"{BUILD_CACHE}/{INDEX_HASH}", hashlib.sha256(data).hexdigest().encode())


def single_key_fingerprint(armored: bytes) -> str:
    """The fingerprint of the one public key a mirror may publish from ``armored``."""
    fingerprints = key_fingerprints(armored)
    if len(fingerprints) != 1:
        found = ", ".join(fingerprints) if fingerprints else "no OpenPGP public key"
        raise ReconcileError(
            f"expected exactly one armored public key to publish, found {found}",
            hint="export a single key: gpg --armor --export <FINGERPRINT>",
            reference="bad-public-key",
        )
    return fingerprints[0]


def publish_key_v2(mirror: MirrorStore | Path, armored: bytes) -> str:
    """Publish one signer's armored public key as ``build_cache/_pgp/<FPR>.pub`` and list it
    in ``_pgp/index.json``; returns the fingerprint. Readers trust it only if pinned."""
    fingerprint = single_key_fingerprint(armored)
    store = as_store(mirror)
    folder = f"{BUILD_CACHE}/{KEYS_FOLDER}"
    with mirror_errors(store), store.locked(folder):
        store.put_bytes(f"{folder}/{fingerprint}.pub", armored)
        key_index_key = f"{folder}/{KEY_INDEX}"
        key_index_file = store.local_path(key_index_key)
        key_index = _read_json_object(store, key_index_key, expected="{'keys': {...}}")
        keys = key_index.setdefault("keys", {})
        if not isinstance(keys, dict):
            raise ReconcileError(
                f"{key_index_file}: 'keys' is not an object",
                hint="move the file away and publish the keys again",
                reference="malformed-metadata",
            )
        keys.setdefault(fingerprint, {})
        store.put_bytes(key_index_key, compact_json_bytes(key_index))
    return fingerprint


def pack_prefix(
    prefix: Path,
    out: Path,
    *,
    own_hash: str,
    buildpath: str,
    hash_to_prefix: Mapping[str, str],
    root: Path | None = None,
) -> str:
    """Write the installed ``prefix`` as a deterministic Spack tarball at ``out`` (in the
    mirror ``root``, when given, never through a link below it), with the
    ``binary_distribution`` that records where it and its dependencies live now; returns
    the tarball's sha256. Shared by the layout 2 and 3 writers."""
    old_prefix = hash_to_prefix[own_hash]
    # The package's own prefix first, as Spack records it.
    ordered = {own_hash: old_prefix}
    ordered.update((h, p) for h, p in hash_to_prefix.items() if h != own_hash)
    scan = scan_relocation(prefix, [*ordered.values(), buildpath])
    recipe = binary_distribution_yaml(
        buildpath=buildpath, old_prefix=old_prefix, scan=scan, hash_to_prefix=ordered
    )
    return write_tarball(prefix, out, member_prefix=old_prefix, build_info_yaml=recipe, root=root)


def write_package_v2(
    mirror: MirrorStore | Path,
    *,
    prefix: Path,
    spec_document: Mapping[str, Any],
    buildpath: str,
    hash_to_prefix: Mapping[str, str],
    signer: GpgSigner | None,
    publish_key: bool = True,
) -> PublishedSpec:
    """Publish the installed ``prefix`` of the package ``spec_document`` describes.

    ``buildpath`` is the install-tree root it was installed under, ``hash_to_prefix`` the
    prefix of the package and of each non-external dependency (by DAG hash), as recorded for
    relocation. Writes the tarball, the (signed) spec, the index entries of the package and
    of its externals, and, with a signer and ``publish_key``, the signer's public key.
    """
    document = parse_checked(spec_document)
    root = document.root
    if root.hash not in hash_to_prefix:
        raise ReconcileError(
            f"hash_to_prefix has no prefix for {root.short()} itself",
            hint="map the package's DAG hash to the prefix it was installed at",
            reference="bad-spec",
        )
    store = as_store(mirror)
    with tempfile.TemporaryDirectory(prefix="reconcile-pack-") as private:
        tarball = Path(private) / f"{root.hash}.spack"  # packed privately, then put
        pack_prefix(
            prefix, tarball, own_hash=root.hash, buildpath=buildpath, hash_to_prefix=hash_to_prefix
        )
        published = write_spec_v2(
            store, spec_document=spec_document, tarball=tarball, signer=signer
        )
    externals = [node for node in document.nodes if node.is_external]
    crash_point("publish-before-index")
    write_index_v2(store, [*externals, root])
    if signer is not None and publish_key:
        publish_key_v2(store, signer.public_key())
    return published
