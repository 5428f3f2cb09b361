"""A plan as data: the actions to take, the no-ops with their reasons, the fingerprints.

A plan is what ``reconcile plan --out`` saves and ``reconcile apply PLAN`` executes; it is
also what ``--json`` prints (``schemas/plan.schema.json``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

import attrs

from reconcile.manifest.lockfile import LockFile
from reconcile.observe.findings import CheckMode
from reconcile.redact import mask_credentials
from reconcile.reprs import fields_repr
from reconcile.userpath import expand_user
from reconcile.views.contents import ViewContents

FORMAT_VERSION = 1

ActionKind = Literal[
    "install",
    "repair",
    "reverify",
    "permissions",
    "remove",
    "publish",
    "resign",
    "sync",
    "source-fetch",
    "source-record",
    "source-link",
    "mirror-permissions",
    "view",
]

# The commit steps, in the order the executor runs them once every action's preparation
# (phase 1: fetch and verify) has passed. Each action belongs to one (its ``phase``).
Phase = Literal[
    "install",
    "repair",
    "permissions",
    "reverify",
    "remove",
    "view",
    "publish",
    "resign",
    "sync",
    "source",
    "mirror-permissions",
]
COMMIT_ORDER: tuple[Phase, ...] = (
    "install",  # all-or-nothing: every prefix staged and checked before the first rename
    "repair",  # drifted prefixes: re-staged and swapped in, or modes and group re-applied
    "permissions",  # installed prefixes whose [install.permissions] changed
    "reverify",  # installs whose signer no longer counts: their records name a signer that does
    "remove",  # prefixes no declared closure needs (install.prune): after the installs
    "view",  # new view generations, switched to atomically (they link installed prefixes)
    "publish",  # installed (and re-verified) prefixes packed into mirrors
    "resign",  # specs published before, signed again by keys added to [[publish]] key
    "sync",  # verified specs copied between mirrors
    "source",  # verified source archives and their links
    "mirror-permissions",  # last: what this apply wrote into a mirror gets its modes too
)


class ActionProtocol(Protocol):
    """What every planned action is: the executor, the renderer and the codec need no more."""

    @property
    def id(self) -> str:
        """Unique within a plan."""

    @property
    def kind(self) -> ActionKind:
        """The ``action`` tag of its JSON form."""

    @property
    def resource(self) -> str:
        """What it changes, as a no-op of the same resource would name it."""

    @property
    def label(self) -> str:
        """How humans are shown it."""

    @property
    def reason(self) -> str: ...

    @property
    def inputs(self) -> tuple[str, ...]:
        """The keys of ``Plan.fingerprints`` it was planned from: a saved plan whose inputs
        changed is stale."""

    @property
    def phase(self) -> Phase:
        """The commit step it belongs to (``COMMIT_ORDER``)."""


class _OfSpec:
    """Label and resource of actions on one spec, from its name, version and DAG hash."""

    __slots__ = ()
    hash: str
    name: str
    version: str

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}/{self.hash[:7]}"

    @property
    def spec_resource(self) -> str:
        return f"spec:{self.name}@{self.version}/{self.hash}"


@attrs.frozen(kw_only=True)
class InstallAction(_OfSpec):
    """Fetch, verify, unpack, relocate and commit one spec's prefix."""

    __repr__ = fields_repr

    hash: str
    name: str
    version: str
    prefix: str  # the final absolute prefix
    mirror: str  # mirror name
    mirror_url: str  # with credentials masked
    spec_url: str
    tarball_url: str
    tarball_sha256: str  # from the verified metadata
    tarball_bytes: int
    signer: str | None  # fingerprint; None when the mirror is declared unsigned
    reason: str
    dependencies: tuple[str, ...]  # DAG hashes of the direct run-time dependencies
    # where absolute symlinks of this prefix may point once relocated: the prefixes of its
    # run-time closure and the paths of the externals in it
    allowed_link_targets: tuple[str, ...]
    externals: dict[str, str]  # DAG hash -> path of the external direct dependencies
    # other mirrors whose index lists the same spec, in manifest order: (name, tarball URL).
    # The tarball is verified against the same signed checksum whichever mirror serves it.
    alternates: tuple[tuple[str, str], ...] = ()
    cached: bool = False  # a cache root held the tarball when the plan was made
    # the prefix it was built in, when plan could read it (from a cached tarball); None: known
    # only once the tarball is downloaded. Not compared between plans: it is advice only.
    built_prefix: str | None = attrs.field(default=None, eq=False)
    # when a transparency log recorded the signer's signature (sigstore), for the record
    logged_at: str | None = None
    spec: dict[str, Any] = attrs.field(eq=False, repr=False)  # the verified node, for the record

    kind: ClassVar[Literal["install"]] = "install"
    phase: ClassVar[Phase] = "install"

    @property
    def id(self) -> str:
        return f"install:{self.hash}"

    @property
    def resource(self) -> str:
        return self.spec_resource

    @property
    def inputs(self) -> tuple[str, ...]:
        h = self.hash
        return (f"record:{h}", f"metadata:{h}", f"tarball:{h}", f"path:{self.prefix}")


@attrs.frozen(kw_only=True)
class RepairAction(_OfSpec):
    """Bring an installed prefix back to its install record. Files that differ (content,
    type, link target) or are gone: the prefix is re-staged from its verified tarball exactly
    as an install would stage it, and swapped in atomically. Only modes or group differ: they
    are set back in place. Files reconcile did not install are copied into the repaired
    prefix, or left out when ``[install] strict = true``."""

    __repr__ = fields_repr

    hash: str
    name: str
    version: str
    prefix: str
    differ: tuple[str, ...]  # relative paths whose content, type or link target differ, or gone
    metadata: tuple[str, ...]  # relative paths whose mode or group differ
    added: tuple[str, ...]  # relative paths reconcile did not install
    keep_added: bool  # copied into the repaired prefix (strict = false); else removed
    # how to re-stage the prefix from its verified tarball; None: fixed in place
    restage: InstallAction | None
    reason: str

    kind: ClassVar[Literal["repair"]] = "repair"
    phase: ClassVar[Phase] = "repair"

    @property
    def id(self) -> str:
        return f"repair:{self.hash}"

    @property
    def resource(self) -> str:
        return self.spec_resource

    @property
    def differing(self) -> int:
        """How many paths the repair changes."""
        removed = () if self.keep_added else self.added
        return len({*self.differ, *self.metadata, *removed})

    @property
    def inputs(self) -> tuple[str, ...]:
        h = self.hash
        staged = (f"metadata:{h}", f"tarball:{h}") if self.restage is not None else ()
        return (f"record:{h}", f"drift:{h}", *staged)


@attrs.frozen(kw_only=True)
class ReverifyAction(_OfSpec):
    """An installed spec whose recorded signer no longer counts (its key was revoked or is no
    longer declared), while a mirror carries signed metadata for the same tarball that does
    count: verified again from that mirror, and its install record made to name the new
    signer. The prefix is not touched."""

    __repr__ = fields_repr

    hash: str
    name: str
    version: str
    prefix: str
    mirror: str  # where the signature that counts was found
    mirror_url: str  # credentials masked
    layout: int  # that mirror's binary cache layout
    spec_url: str  # credentials masked
    tarball_sha256: str  # the recorded tarball, which the signed metadata names too
    old_signer: str  # what the record names now
    signer: str  # the signer that counts, recorded once verified again
    reason: str

    kind: ClassVar[Literal["reverify"]] = "reverify"
    phase: ClassVar[Phase] = "reverify"

    @property
    def id(self) -> str:
        return f"reverify:{self.hash}"

    @property
    def resource(self) -> str:
        return self.spec_resource

    @property
    def inputs(self) -> tuple[str, ...]:
        return (f"record:{self.hash}", f"metadata:{self.hash}")


@attrs.frozen(kw_only=True)
class PermissionsAction(_OfSpec):
    """Bring an installed prefix to the manifest's ``[install.permissions]``."""

    __repr__ = fields_repr

    hash: str
    name: str
    version: str
    prefix: str
    permissions: dict[str, str | None]  # read, write, group as in the manifest
    reason: str

    kind: ClassVar[Literal["permissions"]] = "permissions"
    phase: ClassVar[Phase] = "permissions"

    @property
    def id(self) -> str:
        return f"permissions:{self.hash}"

    @property
    def resource(self) -> str:
        return self.spec_resource

    @property
    def inputs(self) -> tuple[str, ...]:
        return (f"record:{self.hash}",)


@attrs.frozen(kw_only=True)
class RemoveAction(_OfSpec):
    """Remove a prefix this manifest installed that no declared closure needs any more
    (``[install] prune = true``): renamed into the trash, logged, its record deleted."""

    __repr__ = fields_repr

    hash: str
    name: str
    version: str
    prefix: str
    owner: str  # the manifest its record names (this one)
    prefix_present: bool  # False: the prefix is gone already, only the record is removed
    force: bool  # planned with --force: removed even if its files differ from the record
    reason: str

    kind: ClassVar[Literal["remove"]] = "remove"
    phase: ClassVar[Phase] = "remove"

    @property
    def id(self) -> str:
        return f"remove:{self.hash}"

    @property
    def resource(self) -> str:
        return self.spec_resource

    @property
    def inputs(self) -> tuple[str, ...]:
        return (f"record:{self.hash}", f"drift:{self.hash}")


@attrs.frozen(kw_only=True)
class PublishAction(_OfSpec):
    """Write an installed prefix as a binary package to a mirror (Spack's layout 2 or 3)."""

    __repr__ = fields_repr

    hash: str
    name: str
    version: str
    prefix: str
    mirror: str
    mirror_url: str  # credentials masked
    layout: int
    key: str | None  # the gpg [[key]] that clear-signs Spack's metadata; None: not clear-signed
    fingerprint: str | None
    buildpath: str  # the install root the prefix lives under (recorded for relocation)
    hash_to_prefix: dict[str, str]  # this spec and its run-time closure: DAG hash -> prefix
    reason: str
    statement_keys: tuple[str, ...] = ()  # ed25519/sigstore [[key]] names that sign the sidecar

    kind: ClassVar[Literal["publish"]] = "publish"
    phase: ClassVar[Phase] = "publish"

    @property
    def id(self) -> str:
        return f"publish:{self.mirror}/{self.hash}"

    @property
    def resource(self) -> str:
        return f"publish:{self.mirror}/{self.name}@{self.version}/{self.hash}"

    @property
    def target(self) -> str:
        """The fingerprint key of what the mirror holds of this spec (``absent`` when planned)."""
        return f"target:{self.mirror}/{self.hash}"

    @property
    def inputs(self) -> tuple[str, ...]:
        return (f"record:{self.hash}", self.target)


@attrs.frozen(kw_only=True)
class ResignAction(_OfSpec):
    """A spec a ``[[publish]]`` entry published before (or a mirror's ``specs`` copied) that
    lacks a signature by a key the entry (or ``sign_with``) names now (a key added or changed
    for rotation): its metadata is read and verified under the keys that count, then
    Spack's metadata is clear-signed again by the entry's gpg key when another (or none)
    signed it, and the statement is signed by each new ed25519 or sigstore key, merged into
    the sidecar. The tarball is not touched."""

    __repr__ = fields_repr

    hash: str
    name: str
    version: str
    mirror: str
    mirror_url: str  # credentials masked
    layout: int
    keys: tuple[str, ...]  # the [[key]] names whose signatures the spec lacks
    reason: str
    spec: dict[str, Any] = attrs.field(eq=False, repr=False)  # the node, as the index has it
    # the gpg key among ``keys`` (it re-signs Spack's metadata) and its fingerprint
    key: str | None = None
    fingerprint: str | None = None

    kind: ClassVar[Literal["resign"]] = "resign"
    phase: ClassVar[Phase] = "resign"

    @property
    def id(self) -> str:
        return f"resign:{self.mirror}/{self.hash}"

    @property
    def resource(self) -> str:
        return f"publish:{self.mirror}/{self.name}@{self.version}/{self.hash}"

    @property
    def target(self) -> str:
        """The fingerprint key of the signatures the mirror holds for this spec."""
        return f"sidecar:{self.mirror}/{self.hash}"

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.target,)


@attrs.frozen(kw_only=True)
class MirrorPermissionsAction:
    """Give every file and folder of a local mirror its ``[mirror.permissions]``: those that
    differ now, and those this apply writes there."""

    __repr__ = fields_repr

    mirror: str
    root: str
    permissions: dict[str, str | None]  # read, write, group as in the manifest
    changes: int  # paths that differ now
    examples: tuple[str, ...]  # a few of them, for the plan
    reason: str

    kind: ClassVar[Literal["mirror-permissions"]] = "mirror-permissions"
    phase: ClassVar[Phase] = "mirror-permissions"

    @property
    def id(self) -> str:
        return f"mirror-permissions:{self.mirror}"

    @property
    def resource(self) -> str:
        return f"mirror:{self.mirror}"

    @property
    def label(self) -> str:
        return f"mirror '{self.mirror}'"

    @property
    def inputs(self) -> tuple[str, ...]:
        return (f"mirror-permissions:{self.mirror}",)


@attrs.frozen(kw_only=True)
class SyncAction(_OfSpec):
    """Copy one spec (metadata and tarball) from another mirror into a mirror whose
    ``specs`` name its closure; verified before it is written."""

    __repr__ = fields_repr

    hash: str
    name: str
    version: str
    mirror: str  # the mirror that must hold it
    mirror_url: str  # credentials masked
    layout: int
    source: str  # the mirror it is copied from
    source_url: str  # credentials masked
    source_layout: int
    source_signed: bool
    sign_with: str | None  # re-sign with this gpg [[key]]; None copies the signature as it is
    fingerprint: str | None
    reason: str
    spec: dict[str, Any] = attrs.field(eq=False, repr=False)  # the node, as the index has it
    statement_keys: tuple[str, ...] = ()  # ed25519 / sigstore [[key]] names signing the sidecar

    kind: ClassVar[Literal["sync"]] = "sync"
    phase: ClassVar[Phase] = "sync"

    @property
    def id(self) -> str:
        return f"sync:{self.mirror}/{self.hash}"

    @property
    def resource(self) -> str:
        return f"sync:{self.mirror}/{self.name}@{self.version}/{self.hash}"

    @property
    def target(self) -> str:
        """The fingerprint key of what the mirror holds of this spec (``absent`` when planned)."""
        return f"target:{self.mirror}/{self.hash}"

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.target,)  # the source is verified afresh when copied


SourceOperation = Literal["fetch", "record", "link"]


@attrs.frozen(kw_only=True)
class SourceAction:
    """One step for a ``[[source]]`` in its mirror: fetch the archive (checked against the
    manifest's sha256), record an archive found good, or link ``<name>/<name>-<version>``."""

    __repr__ = fields_repr

    operation: SourceOperation
    name: str
    version: str
    mirror: str  # the [[mirror]] that must hold the source
    mirror_root: str  # its folder, absolute
    url: str = attrs.field(repr=False)  # where to fetch from; may carry credentials
    sha256: str
    archive: str  # relative to mirror_root
    link: str  # relative to mirror_root
    link_target: str  # what the link holds, relative to its folder
    reason: str
    # record: the size and mtime of the file that was hashed when planning
    observed_size: int | None = None
    observed_mtime_ns: int | None = None
    size: int | None = None  # fetch: the [[source]]'s size, the download's cap when given

    phase: ClassVar[Phase] = "source"

    @property
    def kind(self) -> ActionKind:
        kinds: dict[SourceOperation, ActionKind] = {
            "fetch": "source-fetch",
            "record": "source-record",
            "link": "source-link",
        }
        return kinds[self.operation]

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def resource(self) -> str:
        return f"source:{self.mirror}/{self.label}"

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.mirror}/{self.label}"

    @property
    def inputs(self) -> tuple[str, ...]:
        return (f"source:{self.mirror}/{self.archive}",)

    @property
    def shown_url(self) -> str:
        """The URL with credentials masked: the only form to print."""
        return mask_credentials(self.url)


def source_url(url: str, folder: Path | None = None) -> str:
    """A source's URL, with a plain path made an absolute ``file://`` URL against ``folder``
    (the manifest's folder; the current directory when None)."""
    if "://" in url:
        return url
    path = expand_user(url)
    if not path.is_absolute():
        path = (folder if folder is not None else Path.cwd()) / path
    return Path(os.path.normpath(path)).as_uri()


@attrs.frozen(kw_only=True)
class ViewAction:
    """Build a new generation of a ``[[view]]`` beside it, switch the view's symlink to it
    atomically, and remove the generations beyond ``keep``."""

    __repr__ = fields_repr

    view: str  # its name
    path: str  # the view's symlink, absolute
    contents: ViewContents
    fingerprint: str  # of ``contents``: what the new generation's metadata records
    keep: int
    current: int | None  # the generation the view pointed at when planned
    install_root: str  # a copy view relocates mentions of it to the view
    reason: str

    kind: ClassVar[Literal["view"]] = "view"
    phase: ClassVar[Phase] = "view"

    @property
    def id(self) -> str:
        return f"view:{self.view}"

    @property
    def resource(self) -> str:
        return f"view:{self.view}"

    @property
    def label(self) -> str:
        return f"view '{self.view}'"

    @property
    def inputs(self) -> tuple[str, ...]:
        return (f"view:{self.view}",)


Action = (
    InstallAction
    | RepairAction
    | ReverifyAction
    | RemoveAction
    | PermissionsAction
    | PublishAction
    | ResignAction
    | SyncAction
    | SourceAction
    | MirrorPermissionsAction
    | ViewAction
)


@attrs.frozen(kw_only=True)
class NoOp:
    """A resource the plan leaves alone, and why."""

    __repr__ = fields_repr

    resource: str
    reason: str
    # it does not match what reconcile recorded or the manifest declares, and the plan
    # leaves it so on purpose (files kept, undeclared prefixes kept): never "up to date"
    differs: bool = False


@attrs.frozen(kw_only=True)
class Plan:
    __repr__ = fields_repr

    manifest_path: str
    manifest_digest: str
    install_root: str
    actions: tuple[Action, ...]  # installs first (dependencies before dependents)
    noops: tuple[NoOp, ...]
    # resource -> fingerprint of what was observed (record, verified metadata, mirror file)
    fingerprints: dict[str, str]
    # DAG hash -> final prefix for every spec of the closures (installed ones included); the
    # executor relocates against these.
    prefixes: dict[str, str]
    # absolute paths of externals in the closures (absolute symlinks may point there)
    external_paths: tuple[str, ...] = ()
    # how installed prefixes were compared with their records: "fast" (size and mtime,
    # hashing only what they do not settle) or "contents" (every file hashed); None when
    # no prefix was compared
    checked: CheckMode | None = None
    format_version: int = FORMAT_VERSION
    # what the selectors resolved to, as a lock file: made only for 'reconcile lock', never
    # saved with the plan (a saved plan binds by its actions and fingerprints)
    resolved_lock: LockFile | None = attrs.field(default=None, eq=False)

    @property
    def is_empty(self) -> bool:
        return not self.actions

    def in_phase(self, phase: Phase) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.phase == phase)

    @property
    def source_actions(self) -> tuple[SourceAction, ...]:
        """Fetch, record and link actions of source mirrors, in manifest order."""
        return tuple(a for a in self.actions if isinstance(a, SourceAction))

    @property
    def installs(self) -> tuple[InstallAction, ...]:
        return tuple(a for a in self.actions if isinstance(a, InstallAction))

    @property
    def repairs(self) -> tuple[RepairAction, ...]:
        return tuple(a for a in self.actions if isinstance(a, RepairAction))

    @property
    def reverifications(self) -> tuple[ReverifyAction, ...]:
        return tuple(a for a in self.actions if isinstance(a, ReverifyAction))

    @property
    def removals(self) -> tuple[RemoveAction, ...]:
        return tuple(a for a in self.actions if isinstance(a, RemoveAction))

    @property
    def differing(self) -> tuple[NoOp, ...]:
        """No-ops of resources that do not match and are left so."""
        return tuple(n for n in self.noops if n.differs)

    @property
    def permission_changes(self) -> tuple[PermissionsAction, ...]:
        return tuple(a for a in self.actions if isinstance(a, PermissionsAction))

    @property
    def publications(self) -> tuple[PublishAction, ...]:
        return tuple(a for a in self.actions if isinstance(a, PublishAction))

    @property
    def resignings(self) -> tuple[ResignAction, ...]:
        return tuple(a for a in self.actions if isinstance(a, ResignAction))

    @property
    def mirror_permission_changes(self) -> tuple[MirrorPermissionsAction, ...]:
        return tuple(a for a in self.actions if isinstance(a, MirrorPermissionsAction))

    @property
    def syncs(self) -> tuple[SyncAction, ...]:
        return tuple(a for a in self.actions if isinstance(a, SyncAction))

    @property
    def views(self) -> tuple[ViewAction, ...]:
        return tuple(a for a in self.actions if isinstance(a, ViewAction))

    @property
    def touches_install_tree(self) -> bool:
        """Whether the apply holds the install root's lock (views: so that no prune takes a
        prefix while a generation links it)."""
        return bool(
            self.installs
            or self.repairs
            or self.reverifications
            or self.permission_changes
            or self.publications
            or self.views
        )

    @property
    def bytes_to_fetch(self) -> int:
        restaged = (r.restage for r in self.repairs)
        return sum(a.tarball_bytes for a in (*self.installs, *restaged) if a is not None)
