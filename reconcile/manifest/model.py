"""The manifest as data: frozen, keyword-only attrs classes.

The TOML layout maps onto these classes one to one, except that the arrays of tables
``[[mirror]]`` and ``[[key]]`` are the attributes ``mirrors`` and ``keys``. Paths are kept as
written; ``ManifestFile.resolve`` makes them absolute against the manifest's folder.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Literal

import attrs

from reconcile.limits import DEFAULT_LIMITS, Limits
from reconcile.manifest.kinds import SUPPORTED_KEY_KINDS as SUPPORTED_KEY_KINDS
from reconcile.reprs import fields_repr
from reconcile.userpath import expand_user

DEFAULT_PROJECTION = "{name}-{version}-{hash}"
DEFAULT_EXTERNALS = ("/usr",)

ReadScope = Literal["world", "group", "user"]
WriteScope = Literal["user", "group", "world"]
KeyKind = Literal["gpg", "ed25519", "sigstore"]
SigstoreInstance = Literal["production", "staging"]
LinkKind = Literal["symlink", "hardlink", "copy"]
ConflictPolicy = Literal["error", "first"]
LINK_KINDS: tuple[str, ...] = ("symlink", "hardlink", "copy")
CONFLICT_POLICIES: tuple[str, ...] = ("error", "first")
DEFAULT_VIEW_KEEP = 5

SUPPORTED_SCHEMES = ("file", "http", "https", "s3", "oci", "oci+http")
# OCI registries (Spack's oci:// build caches; oci+http:// for a registry without TLS).
OCI_SCHEMES = ("oci", "oci+http")
# What an ed25519 signer's identity starts with (gpg identities are bare fingerprints).
ED25519_IDENTITY_PREFIX = "ed25519:"
# Likewise for a sigstore key: "sigstore:<[[key]] name>" (the certificate's SAN may vary
# within an ``identity_glob``; the key that accepted it does not).
SIGSTORE_IDENTITY_PREFIX = "sigstore:"
SIGSTORE_INSTANCES: tuple[str, ...] = ("production", "staging")


@attrs.frozen(kw_only=True)
class Permissions:
    """Spack's ``packages:all:permissions`` model."""

    __repr__ = fields_repr

    read: ReadScope = "world"
    write: WriteScope = "user"
    group: str | None = None


@attrs.frozen(kw_only=True)
class InstallSettings:
    __repr__ = fields_repr

    root: str
    projection: str = DEFAULT_PROJECTION
    padded_length: int | None = None
    specs: tuple[str, ...] = ()
    arch: str | None = None
    permissions: Permissions | None = None
    # Folders a signed spec may name as an external (absolute symlinks may then point there).
    externals: tuple[str, ...] = DEFAULT_EXTERNALS
    # prune: remove prefixes this manifest installed that no declared closure needs now
    prune: bool = False
    # strict: a repair leaves out the files reconcile did not install
    strict: bool = False
    # strict_relocation: plan refuses a spec whose new prefix is longer than the one it was
    # built in (when plan knows that one), instead of only warning
    strict_relocation: bool = False
    # who owns the records this manifest writes (several manifests may share one root);
    # None: the manifest's path relative to the install root
    owner: str | None = None


@attrs.frozen(kw_only=True)
class Mirror:
    __repr__ = fields_repr

    name: str
    url: str  # a URL (file, http, https, s3) or a plain path, relative to the manifest's folder
    signed: bool = True
    endpoint_url: str | None = None  # s3 only: an S3-compatible service (MinIO, Ceph, ...)
    profile: str | None = None  # s3 only: the AWS profile holding the credentials
    layout: int = 3  # the binary cache layout reconcile writes here (2 or 3); reading detects it
    specs: tuple[str, ...] = ()  # selectors whose closures this mirror must hold (synced)
    # [[key]] names that sign what a sync writes here (TOML: one name or an array): at most
    # one gpg key re-signs Spack's metadata (needed across layouts), each ed25519 key signs
    # the sidecar. () copies signatures as they are.
    sign_with: tuple[str, ...] = ()
    # [[key]] names whose signatures count for this mirror (None: every declared key), and
    # how many distinct ones a spec needs, across schemes.
    trust: tuple[str, ...] | None = None
    require: int = 1
    permissions: Permissions | None = None  # enforced on every file and folder it holds
    drift_ignore: tuple[str, ...] = ()  # globs of paths in the mirror that drift leaves out


@attrs.frozen(kw_only=True)
class Source:
    """A source archive that a mirror must hold, in Spack's source-mirror layout."""

    __repr__ = fields_repr

    name: str
    version: str
    url: str  # where to fetch it from (file, http, https, s3, or a plain path)
    sha256: str  # 64 lower-case hex digits
    mirror: str  # the [[mirror]] that must hold it
    # the archive's bytes, when known: a download stops at the first byte past it (else at
    # [limits] max_source_bytes)
    size: int | None = None


@attrs.frozen(kw_only=True)
class Publish:
    """Installed specs to publish as binary packages to a mirror."""

    __repr__ = fields_repr

    specs: tuple[str, ...]  # selectors of installed specs (their run-time closures go too)
    mirror: str
    # The [[key]] names whose secret keys sign (TOML: one name or an array): at most one gpg
    # key clear-signs Spack's metadata, each ed25519 key signs the sidecar. () is unsigned.
    key: tuple[str, ...] = ()
    # Every published prefix must be at least this long (a consumer relocates into it).
    min_prefix_length: int | None = None
    # Installable by this Spack release's default tree ("0.23" or "1.x"), padded to
    # consumer_padded_length: sets the minimum per spec from Spack's default projection.
    for_spack: str | None = None
    consumer_padded_length: int = 128


@attrs.frozen(kw_only=True)
class CacheRoot:
    """A folder of downloaded blobs, used for URLs that start with one of ``prefixes``
    (every URL when there are none). The first matching root in manifest order wins."""

    __repr__ = fields_repr

    root: str  # relative to the manifest's folder
    prefixes: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class Key:
    """A trusted key. gpg: ``fingerprint`` and exactly one of ``file`` and ``source``;
    ed25519: exactly one of ``public_key`` and ``file``; sigstore: exactly one of
    ``san`` (TOML ``identity``) and ``identity_glob``, ``issuer``, and at most one of
    ``trusted_root`` and ``instance``."""

    __repr__ = fields_repr

    name: str
    kind: KeyKind = "gpg"
    fingerprint: str = ""  # gpg: 40 upper-case hex digits
    file: str | None = None  # gpg: an armored public key; ed25519: a "name:base64" key
    source: str | None = None  # gpg: "mirror:<name>", take it from that mirror's published keys
    public_key: str | None = None  # ed25519: "name:base64", as Nix writes public keys
    # sigstore: the signing certificate's SAN, exactly (TOML ``identity``; the attribute
    # ``identity`` is what a signer is recorded as), or a pattern (``*`` within one ``/``
    # segment, ``**`` across them), and the OIDC issuer the certificate must name.
    san: str | None = None
    identity_glob: str | None = None
    issuer: str | None = None
    # sigstore: a trusted_root.json (relative to the manifest's folder), or the root of the
    # public instance embedded in the sigstore package (None: production).
    trusted_root: str | None = None
    instance: SigstoreInstance | None = None
    # sigstore, for publishing: a signing_config.json naming the instance's CA and log URLs
    # (None: the public instance's, embedded in the sigstore package).
    signing_config: str | None = None
    # Revocation: ``revoked`` alone refuses every signature by the key; ``revoked_after``
    # (UTC) refuses those reconcile verifies from then on and keeps installs verified before.
    revoked: bool = False
    revoked_after: datetime.datetime | None = None

    def revoked_for(self, verified_at: datetime.datetime) -> bool:
        """Whether a signature by this key, verified (by reconcile) at ``verified_at``, no
        longer counts."""
        if self.revoked_after is not None:
            return verified_at >= self.revoked_after
        return self.revoked

    @property
    def identity(self) -> str:
        """What a valid signature by this key is recorded as: a gpg key's fingerprint, an
        ed25519 key's manifest name (prefixed, so it never looks like a fingerprint)."""
        if self.kind == "ed25519":
            return ED25519_IDENTITY_PREFIX + self.name
        if self.kind == "sigstore":
            return SIGSTORE_IDENTITY_PREFIX + self.name
        return self.fingerprint


@attrs.frozen(kw_only=True)
class View:
    """``[[view]]``: installed prefixes merged into one tree at ``path``, Spack-style, built
    as numbered generations beside it (``<path>.generations/<N>``) that ``path`` (a symlink)
    points at; switched atomically, rolled back by ``reconcile rollback``."""

    __repr__ = fields_repr

    name: str
    path: str  # relative to the manifest's folder; a symlink reconcile owns
    specs: tuple[str, ...] | None = None  # selectors among the declared closures; None: roots
    run_dependencies: bool = False  # also the run-time closures of the specs
    link: LinkKind = "symlink"
    # Spack's view projections: selector (or "all") -> path in the view; none: one merged tree
    projections: dict[str, str] = attrs.field(factory=dict, hash=False)
    exclude: tuple[str, ...] = ()  # globs of paths inside each prefix left out of the view
    conflicts: ConflictPolicy = "error"  # two prefixes with one path: refuse, or the first wins
    keep: int = DEFAULT_VIEW_KEEP  # generations kept (the current one always is)


@attrs.frozen(kw_only=True)
class DriftSettings:
    """``[drift]``: what ``reconcile drift`` leaves out."""

    __repr__ = fields_repr

    ignore: tuple[str, ...] = ()  # globs of paths inside each installed prefix


@attrs.frozen(kw_only=True)
class Manifest:
    __repr__ = fields_repr

    version: int = 1
    install: InstallSettings | None = None
    mirrors: tuple[Mirror, ...] = ()
    keys: tuple[Key, ...] = ()
    caches: tuple[CacheRoot, ...] = ()  # TOML: [[cache]]
    sources: tuple[Source, ...] = ()  # TOML: [[source]]
    publish: tuple[Publish, ...] = ()  # TOML: [[publish]]
    views: tuple[View, ...] = ()  # TOML: [[view]]
    drift: DriftSettings = DriftSettings()  # TOML: [drift]
    limits: Limits = DEFAULT_LIMITS  # TOML: [limits]

    def view(self, name: str) -> View:
        for view in self.views:
            if view.name == name:
                return view
        raise KeyError(name)

    def mirror(self, name: str) -> Mirror:
        for mirror in self.mirrors:
            if mirror.name == name:
                return mirror
        raise KeyError(name)


@attrs.frozen(kw_only=True)
class ManifestFile:
    """A loaded manifest together with where it came from."""

    __repr__ = fields_repr

    path: Path  # absolute path of the TOML file
    digest: str  # sha256 hex of the file's bytes; saved plans record it
    manifest: Manifest

    @property
    def folder(self) -> Path:
        return self.path.parent

    def resolve(self, relative: str) -> Path:
        """A path from the manifest, made absolute against the manifest's folder."""
        return (self.folder / expand_user(relative)).resolve()

    def mirror_url(self, mirror: Mirror) -> str:
        """The mirror's URL, with a plain path turned into an absolute ``file://`` URL."""
        if "://" in mirror.url:
            return mirror.url.rstrip("/")
        return self.resolve(mirror.url).as_uri()

    def view_path(self, view: View) -> Path:
        """Where the view's symlink is: its folder resolved, the link itself not followed."""
        path = self.folder / expand_user(view.path)
        return path.parent.resolve() / path.name

    def install_root(self) -> Path:
        if self.manifest.install is None:
            raise ValueError("the manifest has no [install] table")
        return self.resolve(self.manifest.install.root)
