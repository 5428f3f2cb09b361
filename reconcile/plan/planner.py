"""The planner: a pure function from the manifest and observed facts to a plan.

When the facts do not yet cover what the plan needs (verified metadata of a spec it decided
to install, whether a prefix path is free), it returns ``NeedFacts`` instead; the observation
loop (``reconcile.engine``) fetches those and calls it again. It never does I/O.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping
from typing import NoReturn

import attrs

from reconcile.buildcache.layout_v2 import tarball_url
from reconcile.buildcache.layouts import OCI_LAYOUT, describe_layout
from reconcile.errors import PlanError
from reconcile.manifest.lockfile import LockedNode, LockedSigner, LockedSpec, LockFile, make_lock
from reconcile.manifest.model import InstallSettings, ManifestFile
from reconcile.observe.facts import MirrorView, Observed, VerifiedSpec
from reconcile.observe.findings import (
    ADDED_KIND,
    CONTENT_KINDS,
    METADATA_KINDS,
    Finding,
    drift_fingerprint,
    relative_to_prefix,
)
from reconcile.plan.claims import PrefixClaims, identity_problems, naming_disagreement
from reconcile.plan.externals import allowed_external, external_refusal
from reconcile.plan.locking import LockUse, locked_sources, source_findings, stale_note
from reconcile.plan.model import (
    InstallAction,
    MirrorPermissionsAction,
    NoOp,
    PermissionsAction,
    Plan,
    PublishAction,
    RemoveAction,
    RepairAction,
    ResignAction,
    ReverifyAction,
    SourceAction,
    ViewAction,
)
from reconcile.plan.publishing import Publishable, plan_publishing
from reconcile.plan.relocation import longer_prefix_warning
from reconcile.plan.sources import plan_sources
from reconcile.plan.syncing import plan_sync
from reconcile.plan.views import kept_by_views, plan_views
from reconcile.redact import mask_credentials
from reconcile.reprs import fields_repr
from reconcile.spack.projection import format_projection, pad_root
from reconcile.spack.selector import SpecSelector, compilers_of, parse_selector, version_key
from reconcile.spack.spec import SpecNode, parse_node
from reconcile.state.records import InstallRecord, owner_name, record_fingerprint
from reconcile.transport.base import join_url
from reconcile.transport.oci_reference import is_oci_url
from reconcile.trust.revocation import gone_signer

# How many spec names a "no spec matches" error lists.
_OFFERED_SHOWN = 12


@attrs.frozen
class _Visit:
    """A dependency the closure walk asks to visit next."""

    __repr__ = fields_repr

    dag_hash: str
    hint: SpecNode | None
    needed_by: str | None


@attrs.frozen(kw_only=True)
class NeedFacts:
    __repr__ = fields_repr

    specs: Mapping[str, SpecNode]  # hash -> node (enough to find its metadata on a mirror)
    paths: frozenset[str]  # paths whose existence the plan depends on
    # installed specs whose recorded signer no longer counts: look for a signature that does
    # on every mirror that lists them (``Observed.reverified``)
    reverify: Mapping[str, SpecNode] = attrs.field(factory=dict)
    # (mirror, hash) of published specs whose sidecar signatures publishing must know
    sidecars: frozenset[tuple[str, str]] = frozenset()


def padded_install_root(settings: InstallSettings, root: str) -> str:
    """The root prefixes are placed under: the observed install root, padded if asked."""
    padded = pad_root(root, settings.padded_length) if settings.padded_length else root
    # Spack's padding can end in "/" (when one character is left over); prefixes are joined
    # below it with a single "/", exactly as os.path.join does in Spack.
    return padded.rstrip("/") or "/"


def spec_resource(node: SpecNode) -> str:
    return f"spec:{node.name}@{node.version}/{node.hash}"


def _install(manifest_file: ManifestFile) -> InstallSettings:
    settings = manifest_file.manifest.install
    if settings is None:
        raise PlanError(
            f"{manifest_file.path}: the manifest has no [install] table, so there is nothing "
            "to plan",
            hint="add [install] with root and specs",
        )
    return settings


def record_node(record: InstallRecord) -> SpecNode:
    return parse_node(record.spec)


class _Planner:
    def __init__(
        self,
        manifest_file: ManifestFile,
        observed: Observed,
        *,
        force: bool = False,
        lock: LockUse | None = None,
    ) -> None:
        self.manifest_file = manifest_file
        self.force = force  # remove prefixes whose files differ from their records, too
        self.lock = lock
        self.lock_roots: dict[str, str] = {}  # selector -> the hash it resolved to (lock)
        self.locked_specs: list[LockedSpec] = []  # lock entries this plan resolved with
        self.pinned: set[str] = set()  # hashes whose tarball must be the locked one
        self.removals: list[RemoveAction] = []
        self.owner = owner_name(
            _install(manifest_file).owner, manifest_file.path, observed.install_root
        )
        self.settings = _install(manifest_file)
        self.observed = observed
        # the root as observed (resolved by the observer): planning itself touches no disk
        self.root = padded_install_root(self.settings, observed.install_root)
        self.errors: list[str] = []
        self.need_specs: dict[str, SpecNode] = {}
        self.need_paths: set[str] = set()
        self.need_reverify: dict[str, SpecNode] = {}
        self.reverify_actions: list[ReverifyAction] = []
        self.actions: list[InstallAction] = []
        self.permission_actions: list[PermissionsAction] = []
        self.repair_actions: list[RepairAction] = []
        self.noops: dict[str, NoOp] = {}
        self.fingerprints: dict[str, str] = {}
        self.prefixes: dict[str, str] = {}
        self.externals: dict[str, str] = {}  # hash -> path
        self.closures: dict[str, frozenset[str]] = {}  # hash -> transitive run-time deps
        # parsed once: selectors and walks consult them many times
        self.record_nodes = {h: record_node(r) for h, r in observed.records.items()}
        # by name: a selector names its spec, and checking every record and every index entry
        # against every selector made planning thousands of specs quadratic
        self.records_by_name = _by_name(self.record_nodes.items())
        self.index_by_name = [
            (mirror.name, mirror.index, _by_name((h, e.node) for h, e in mirror.index.items()))
            for mirror in observed.mirrors
        ]
        self.known = self._known_nodes()
        self.recorded_externals = {
            dag_hash: path
            for record in observed.records.values()
            for dag_hash, path in record.externals.items()
        }
        self.refusals: set[str] = set()  # kinds of refusal found: "prefix", "identity"
        self.claims = PrefixClaims(self.settings.projection)
        for dag_hash, record in sorted(observed.records.items()):
            if dag_hash in observed.present:
                node = self.record_nodes[dag_hash]
                self._refuse("prefix", self.claims.claim(record.prefix, node, installed=True))

    def _refuse(self, kind: str, problem: str | None) -> None:
        if problem is not None:
            self.refusals.add(kind)
            self.errors.append(problem)

    def _raise_errors(self, hint: str | None = None) -> NoReturn:
        prefix, identity = "prefix" in self.refusals, "identity" in self.refusals
        external = "external" in self.refusals
        cycle = "cycle" in self.refusals
        relocation = "relocation" in self.refusals
        locking = "lock-mismatch" in self.refusals or "not-locked" in self.refusals
        if locking and not (cycle or identity):
            mismatch = "lock-mismatch" in self.refusals
            name = self.lock.name if self.lock is not None else "the lock file"
            raise PlanError(
                "\n".join(dict.fromkeys(self.errors)),
                hint=(
                    f"a mirror now serves another tarball under a hash {name} pins: use it "
                    "only if you trust the change, with 'reconcile lock --update SELECTOR'"
                    if mismatch
                    else f"run 'reconcile lock' where the manifest changed, review the "
                    f"change to {name} and commit it with the manifest"
                ),
                reference="lock-mismatch" if mismatch else "not-locked",
            )
        signer = "signer" in self.refusals
        if signer and not (cycle or prefix or identity or external or relocation):
            hint = (
                "sign these specs with a key the manifest trusts (a [[publish]] naming the new "
                "key signs what it published again), or declare the key again if it was removed "
                "by mistake; reconcile never keeps an install vouched for by a key that does not "
                "count"
            )
        if cycle:
            hint = (
                "do not use this mirror until its owner fixes it: Spack never builds a spec "
                "that depends on itself, so its metadata is broken or hostile"
            )
        elif prefix:
            hint = (
                "make install.projection tell the specs apart ({hash} or {hash:7}; add "
                "{version}), or keep one of them; reconcile never installs two specs at one path"
            )
        elif identity:
            hint = (
                "do not use this mirror until its owner fixes it: a spec's signed metadata is "
                "what it is, and something else names its hash differently"
            )
        elif relocation:
            hint = (
                "shorten the install root (or lower padded_length, or choose a shorter "
                "projection) to the length given; or set [install] strict_relocation = false "
                "to let apply check each package's hard-coded strings"
            )
        elif external:
            hint = (
                "list the folder in [install] externals if you trust these specs to link into "
                "it (never '/'), or install specs that do not name it"
            )
        raise PlanError(
            "\n".join(dict.fromkeys(self.errors)),
            hint=hint,
            reference="dependency-cycle"
            if cycle
            else "prefix-claimed-twice"
            if prefix
            else (
                "identity-mismatch"
                if identity
                else "external-not-allowed"
                if external
                else "prefix-longer-than-built"
                if relocation
                else "no-valid-signer"
                if signer
                else None
            ),
        )

    def _known_nodes(self) -> dict[str, SpecNode]:
        """Every node any fact names, most trusted source last so it wins."""
        known: dict[str, SpecNode] = {}
        for mirror in reversed(self.observed.mirrors):
            for dag_hash, entry in mirror.index.items():
                known[dag_hash] = entry.node
        for verified in self.observed.verified.values():
            for node in verified.fetched.document.nodes:
                known[node.hash] = node
        known.update(self.record_nodes)
        return known

    def _arch_ok(self, node: SpecNode) -> bool:
        return self.settings.arch is None or node.arch == self.settings.arch

    # -- selectors --------------------------------------------------------------------------
    def resolve(self, selector: SpecSelector) -> list[str]:
        locked = self._locked_root(selector)
        if locked is not None:
            self.lock_roots[selector.text] = locked
            return [locked]
        if self.lock is not None and self.lock.mode == "locked":
            return []  # refused by _locked_root: nothing is resolved anew
        resolved = self._resolve_anew(selector)
        if self.lock is not None and self.lock.mode == "write" and resolved:
            self.lock_roots[selector.text] = resolved[0]
        return resolved

    def _resolve_anew(self, selector: SpecSelector) -> list[str]:
        installed = sorted(
            dag_hash
            for dag_hash in _named(self.records_by_name, selector.name, self.record_nodes)
            if dag_hash in self.observed.present
            and selector.matches(self.record_nodes[dag_hash], self.known.get)
            and self._arch_ok(self.record_nodes[dag_hash])
        )
        writing = self.lock is not None and self.lock.mode == "write"
        if len(installed) > 1 and writing:
            # a lock names one hash per selector: choose among the installed ones too
            installed = self._one_of(selector, installed, "installed")
        if installed:
            for dag_hash in installed:
                record = self.observed.records[dag_hash]
                node = self.record_nodes[dag_hash]
                self.noops[spec_resource(node)] = NoOp(
                    resource=spec_resource(node),
                    reason=f"already installed at {record.prefix} (satisfies '{selector.text}')",
                )
            return installed
        candidates: dict[str, tuple[SpecNode, list[str]]] = {}
        for mirror_name, index, by_name in self.index_by_name:
            for dag_hash in _named(by_name, selector.name, index):
                entry = index[dag_hash]
                node = entry.node
                wanted = entry.in_buildcache and not node.is_external
                if wanted and selector.matches(node, self.known.get) and self._arch_ok(node):
                    candidates.setdefault(dag_hash, (node, []))[1].append(mirror_name)
        if not candidates:
            self.errors.append(self._no_match(selector))
            return []
        if len(candidates) > 1 and writing and self.lock is not None and self.lock.pick_newest:
            order = {m.name: i for i, m in enumerate(self.observed.mirrors)}
            return [
                self._newest(
                    {h: min(order[n] for n in names) for h, (_, names) in candidates.items()}
                )
            ]
        if len(candidates) > 1:
            differences = _differing_parameters([node for node, _ in candidates.values()])
            listing = "\n".join(
                f"    {node.short()}  {node.arch}{self._compiler_text(node)}"
                f"{differences[node.hash]}  (mirror {', '.join(names)})"
                for node, names in sorted(
                    candidates.values(), key=lambda c: (c[0].name, c[0].version, c[0].hash)
                )
            )
            first = min(candidates.values(), key=lambda c: c[0].hash)[0]
            self.errors.append(
                f"'{selector.text}' matches {len(candidates)} specs that are not installed:\n"
                f"{listing}\n  pin one with a hash prefix, for example "
                f"'{first.name}/{first.hash[:7]}'" + (", or pass --pick newest" if writing else "")
            )
            return []
        return list(candidates)

    def _one_of(self, selector: SpecSelector, installed: list[str], where: str) -> list[str]:
        """The one installed spec a lock records for ``selector`` (the newest with
        ``--pick newest``), or none and an error listing them."""
        assert self.lock is not None
        order = {m.name: i for i, m in enumerate(self.observed.mirrors)}
        if self.lock.pick_newest:
            mirrors = {h: order.get(self.observed.records[h].mirror, len(order)) for h in installed}
            return [self._newest(mirrors)]
        nodes = [self.record_nodes[h] for h in installed]
        differences = _differing_parameters(nodes)
        listing = "\n".join(
            f"    {node.short()}  {node.arch}{self._compiler_text(node)}"
            f"{differences[node.hash]}  ({where} at {self.observed.records[node.hash].prefix})"
            for node in sorted(nodes, key=lambda n: (n.name, n.version, n.hash))
        )
        first = min(nodes, key=lambda n: n.hash)
        self.errors.append(
            f"'{selector.text}' matches {len(nodes)} installed specs, and a lock names one:\n"
            f"{listing}\n  pin one with a hash prefix, for example "
            f"'{first.name}/{first.hash[:7]}', or pass --pick newest"
        )
        return []

    def _newest(self, mirror_rank: Mapping[str, int]) -> str:
        """The candidate with the highest version; among builds of one version, the one
        from the first mirror in manifest order, then the first hash (deterministic)."""
        ordered = sorted(mirror_rank, key=lambda h: (mirror_rank[h], h))
        # max keeps the first of equal versions
        return max(ordered, key=lambda h: version_key(self.known[h].version))

    # -- the lock file ----------------------------------------------------------------------
    def _offered(self, dag_hash: str) -> bool:
        return any(
            dag_hash in m.index and m.index[dag_hash].in_buildcache for m in self.observed.mirrors
        )

    def _lock_problem(self, selector: SpecSelector) -> str | None:
        """Why the lock does not satisfy ``selector``; None when it does."""
        assert self.lock is not None
        if self.lock.lock is None:
            return f"there is no lock file {self.lock.name}"
        entry = self.lock.lock.spec(selector.text)
        if entry is None:
            return f"{self.lock.name} has no entry for it"
        installed = entry.hash in self.observed.present and entry.hash in self.observed.records
        node = self.known.get(entry.hash)
        locked = self.lock.lock.node(entry.hash)
        label = locked.short() if locked is not None else f"/{entry.hash[:7]}"
        if node is None or not (installed or self._offered(entry.hash)):
            return f"its locked spec {label} is neither installed nor offered by a declared mirror"
        if not selector.matches(node, self.known.get) or not self._arch_ok(node):
            return f"its locked spec {label} does not match it"
        return None

    def _locked_root(self, selector: SpecSelector) -> str | None:
        """The hash the lock gives ``selector``, when it satisfies it; else None, and a
        note (``use``), an error (``locked``) or nothing (``write`` resolves anew)."""
        use = self.lock
        if use is None or use.resolves_anew(selector.text):
            return None
        why = self._lock_problem(selector)
        resource = f"lock:{selector.text}"
        if why is None:
            assert use.lock is not None
            entry = use.lock.spec(selector.text)
            assert entry is not None
            self.locked_specs.append(entry)
            self.pinned.update(entry.closure)
            self.noops[resource] = NoOp(
                resource=resource, reason=f"resolved to {self._label(entry.hash)} by {use.name}"
            )
            return entry.hash
        if use.mode == "locked":
            self._refuse(
                "not-locked", f"'{selector.text}': {why}; --locked does not resolve it anew"
            )
        elif use.mode == "use":
            self.noops[resource] = stale_note(resource, f"{why}, so it was resolved anew")
        return None

    def _check_locked_tarball(self, node: SpecNode, verified: VerifiedSpec) -> bool:
        """False (and an error) when ``node`` is pinned and its verified tarball is not the
        locked one."""
        if self.lock is None or self.lock.lock is None or node.hash not in self.pinned:
            return True
        locked = self.lock.lock.node(node.hash)
        sha256 = verified.fetched.document.tarball_sha256
        if locked is None:
            return True  # the closure check names it
        if (locked.tarball_sha256, locked.tarball_size) == (sha256, verified.tarball_bytes):
            return True
        self._refuse(
            "lock-mismatch",
            f"{node.short()}: mirror '{verified.mirror}' serves a tarball of "
            f"{verified.tarball_bytes} bytes with sha256 {sha256}, but {self.lock.name} pins "
            f"{locked.tarball_size} bytes with sha256 {locked.tarball_sha256}; refused",
        )
        return False

    def _check_locked_closures(self) -> None:
        """A locked selector's closure, as the signed metadata (or the install records)
        give it, must be the one the lock records."""
        assert self.lock is not None
        for entry in self.locked_specs:
            actual = ({entry.hash} | self.closures.get(entry.hash, frozenset())) - set(
                self.externals
            )
            if actual == set(entry.closure):
                continue
            missing = sorted(self._label(h) for h in actual - set(entry.closure))
            extra = sorted(f"/{h[:7]}" for h in set(entry.closure) - actual)
            why = (
                f"the closure {self.lock.name} records differs from the signed metadata "
                f"(not locked: {', '.join(missing) or 'none'}; locked but not needed: "
                f"{', '.join(extra) or 'none'})"
            )
            if self.lock.mode == "locked":
                self._refuse("not-locked", f"'{entry.selector}': {why}")
            elif self.lock.mode == "use":
                resource = f"lock:{entry.selector}"
                self.noops[resource] = stale_note(resource, why)
            else:
                self.errors.append(f"'{entry.selector}': {why}")

    def _new_lock(self) -> LockFile:
        """The lock this plan resolved: every node from its freshly verified metadata."""
        specs: dict[str, LockedSpec] = {}
        nodes: dict[str, LockedNode] = {}
        for selector, root in self.lock_roots.items():
            closure = ({root} | self.closures.get(root, frozenset())) - set(self.externals)
            specs[selector] = LockedSpec(
                selector=selector, hash=root, closure=tuple(sorted(closure))
            )
            for dag_hash in closure:
                verified = self.observed.verified[dag_hash]
                node = verified.fetched.document.root
                if not self._check_locked_tarball(node, verified):
                    continue
                assert verified.fetched.document.tarball_sha256 is not None
                nodes[dag_hash] = LockedNode(
                    name=node.name,
                    version=node.version,
                    hash=dag_hash,
                    mirror=verified.mirror,
                    tarball_sha256=verified.fetched.document.tarball_sha256,
                    tarball_size=verified.tarball_bytes,
                    signer=LockedSigner.from_identity(verified.fetched.signer),
                )
        return make_lock(
            specs=specs, nodes=nodes, sources=locked_sources(self.manifest_file.manifest)
        )

    def _compiler_text(self, node: SpecNode) -> str:
        compilers = compilers_of(node, self.known.get)
        return "".join(f"  %{name}@{version or '?'}" for name, version in compilers)

    def _no_match(self, selector: SpecSelector) -> str:
        mirrors = self.observed.mirrors
        names = ", ".join(f"'{m.name}'" for m in mirrors)
        where = {0: "(no mirror is declared)", 1: f"in mirror {names}"}.get(
            len(mirrors), f"in mirrors {names}"
        )
        text = f"no spec matches '{selector.text}' {where}"
        if self.settings.arch:
            text += f" for arch {self.settings.arch}"
        problems = [f"    mirror '{m.name}': {m.problem}" for m in mirrors if m.problem]
        if problems:
            text += "\n" + "\n".join(problems)
        offered = sorted(
            {e.node.name for m in mirrors for e in m.index.values() if not e.node.is_external}
        )
        if offered:
            import difflib  # only for a selector nothing matches

            close = difflib.get_close_matches(selector.name or "", offered, n=3, cutoff=0.6)
            if close and selector.name not in close:
                text += "\n    did you mean " + " or ".join(f"'{n}'" for n in close) + "?"
            shown = ", ".join(offered[:_OFFERED_SHOWN])
            more = len(offered) - _OFFERED_SHOWN
            text += f"\n    the mirrors offer: {shown}" + (f" and {more} more" if more > 0 else "")
        return text

    # -- closure walk ---------------------------------------------------------------------
    def visit(self, dag_hash: str, hint: SpecNode | None, needed_by: str | None) -> bool:
        """Plan ``dag_hash`` and its run-time closure; False when facts are still missing.

        The walk is depth-first with an explicit stack (``_visit`` yields each dependency to
        visit and is sent its outcome), so a chain of thousands of specs never reaches
        Python's recursion limit; a dependency back onto the stack is a cycle, refused."""
        frames = [self._visit(dag_hash, hint, needed_by)]
        path, on_path = [dag_hash], {dag_hash}  # the hashes being visited, outermost first
        outcome, started = True, False
        while frames:
            try:
                call = frames[-1].send(outcome) if started else next(frames[-1])
            except StopIteration as done:
                frames.pop()
                on_path.discard(path.pop())
                outcome, started = done.value, True
                continue
            if call.dag_hash in on_path:
                self._refuse("cycle", self._cycle(path[path.index(call.dag_hash) :], call))
                outcome, started = False, True
                continue
            frames.append(self._visit(call.dag_hash, call.hint, call.needed_by))
            path.append(call.dag_hash)
            on_path.add(call.dag_hash)
            started = False
        return outcome

    def _cycle(self, hashes: list[str], call: _Visit) -> str:
        names = [self._label(h) for h in (*hashes, call.dag_hash)]
        what = "depends on itself" if len(hashes) == 1 else "is part of a dependency cycle"
        return (
            f"{names[0]} {what}: {' -> '.join(names)} (named by the signed metadata of "
            f"{call.needed_by}); a spec's run-time dependencies must form a DAG"
        )

    def _label(self, dag_hash: str) -> str:
        node = self.known.get(dag_hash)
        return node.short() if node is not None else f"/{dag_hash[:7]}"

    def _visit(
        self, dag_hash: str, hint: SpecNode | None, needed_by: str | None
    ) -> Generator[_Visit, bool, bool]:
        if dag_hash in self.closures:
            return True
        record = self.observed.records.get(dag_hash)
        if dag_hash in self.observed.present and record is not None:
            return (yield from self._visit_installed(record))
        node = self.known.get(dag_hash, hint)
        if node is None and dag_hash in self.recorded_externals:
            path = self._external(self.recorded_externals[dag_hash], f"/{dag_hash}", needed_by)
            if path is None:
                return False
            self.externals[dag_hash] = path
            resource = f"spec:/{dag_hash}"
            self.noops[resource] = NoOp(
                resource=resource, reason=f"external at {path} (from the install records)"
            )
            self.closures[dag_hash] = frozenset()
            return True
        if node is None:
            self.errors.append(
                f"dependency /{dag_hash} of {needed_by} is in no mirror's index and not installed"
            )
            return False
        if node.is_external:
            assert node.external_path is not None
            path = self._external(node.external_path, node.short(), needed_by)
            if path is None:
                return False
            self.externals[dag_hash] = path
            self.noops[spec_resource(node)] = NoOp(
                resource=spec_resource(node),
                reason=f"external at {node.external_path}: never fetched, installed or relocated",
            )
            self.closures[dag_hash] = frozenset()
            return True
        named_as = [
            (f"the index of mirror '{m.name}'", m.index[dag_hash].node)
            for m in self.observed.mirrors
            if dag_hash in m.index
        ]
        if hint is not None and needed_by is not None:
            named_as.append((f"the signed metadata of {needed_by}", hint))
        disagreement = naming_disagreement(dag_hash, named_as)
        if disagreement is not None:
            self._refuse("identity", disagreement)
            return False
        verified = self.observed.verified.get(dag_hash)
        if verified is None:
            self.need_specs[dag_hash] = node
            return False
        document = verified.fetched.document
        problems = identity_problems(dag_hash, document, named_as=named_as)
        for problem in problems:
            self._refuse("identity", problem)
        if problems:
            return False
        node = document.root
        complete = True
        for dep in node.runtime_dependencies():
            hint_dep = next((n for n in document.nodes if n.hash == dep.hash), None)
            complete = (yield _Visit(dep.hash, hint_dep, node.short())) and complete
        if not complete:
            return False
        self._plan_install(node, verified, record)
        return True

    def _external(self, path: str, spec: str, needed_by: str | None) -> str | None:
        """The external's folder when the manifest allows it, else None (and a refusal)."""
        allowed = self.settings.externals
        normal = allowed_external(path, allowed)
        if normal is None:
            who = f"{spec} (needed by {needed_by})" if needed_by else spec
            self._refuse("external", external_refusal(path, allowed, spec=who))
        return normal

    def _visit_installed(self, record: InstallRecord) -> Generator[_Visit, bool, bool]:
        node = self.record_nodes[record.hash]
        self.prefixes[node.hash] = record.prefix
        self.fingerprints[f"record:{node.hash}"] = record_fingerprint(record)
        self._check_permissions(node, record)
        self.noops.setdefault(
            spec_resource(node),
            NoOp(resource=spec_resource(node), reason=f"already installed at {record.prefix}"),
        )
        if self.lock is not None and self.lock.mode == "write":
            self._verify_for_lock(node)
        complete = True
        for dep in node.runtime_dependencies():
            complete = (yield _Visit(dep.hash, None, node.short())) and complete
        if complete:
            self.closures[node.hash] = self._closure_of(node)
            self._check_drift(node, record)
            self._check_signer(node, record)
        return complete

    def _check_signer(self, node: SpecNode, record: InstallRecord) -> None:
        """An install whose recorded signer no longer counts: verified again from a mirror
        whose signature that does count vouches for the same tarball (``reverify``), else
        re-staged from one that vouches for another tarball (a repair), else refused."""
        gone = gone_signer(record, self.manifest_file.manifest.keys)
        if gone is None:
            return
        found = self.observed.reverified.get(node.hash)
        if found is None:
            self.need_reverify[node.hash] = node
            return
        # the observer only returns signed metadata; the planner checks again, however the
        # facts came about
        signer = found.verified.fetched.signer if found.verified is not None else None
        if found.verified is None or signer is None:
            lines = list(found.tried)
            if found.verified is not None:
                lines.append(f"mirror '{found.verified.mirror}': its metadata carries no signature")
            tried = (
                "".join(f"\n    {line}" for line in lines) or "\n    no declared mirror lists it"
            )
            self._refuse(
                "signer",
                f"{gone.describe()}, and no mirror carries a signature that counts now:{tried}",
            )
            return
        verified = found.verified
        fetched = verified.fetched
        named = {k.identity.upper(): k.name for k in self.manifest_file.manifest.keys}
        by = f"key '{named[signer.upper()]}'" if signer.upper() in named else signer
        resource = spec_resource(node)
        repair = next((r for r in self.repair_actions if r.hash == node.hash), None)
        if repair is not None and repair.restage is not None:
            return  # re-staged from metadata verified now: its new record names that signer
        self.fingerprints[f"metadata:{node.hash}"] = fetched.metadata_sha256
        self.noops.pop(resource, None)
        if fetched.document.tarball_sha256 == record.tarball_sha256:
            view = next(m for m in self.observed.mirrors if m.name == verified.mirror)
            self.reverify_actions.append(
                ReverifyAction(
                    hash=node.hash,
                    name=node.name,
                    version=node.version,
                    prefix=record.prefix,
                    mirror=verified.mirror,
                    mirror_url=mask_credentials(view.url),
                    layout=view.layout,
                    spec_url=mask_credentials(fetched.url),
                    tarball_sha256=record.tarball_sha256,
                    old_signer=record.signer or "",
                    signer=signer,
                    reason=f"it was verified only by {gone.why}; mirror '{verified.mirror}' "
                    f"carries a signature by {by} over the same tarball",
                )
            )
            return
        closure = self.closures.get(node.hash, frozenset())
        reason = (  # shown as "because it <reason>"
            f"was verified only by {gone.why}; mirror '{verified.mirror}' carries a "
            f"signature by {by}, but over another tarball: reinstalled"
        )
        restage = self._install_action(
            fetched.document.root, verified, record.prefix, closure, "repair"
        )
        if restage is None:
            return
        drift = drift_fingerprint(self.observed.drift.get(node.hash, ()))
        self.fingerprints.setdefault(f"drift:{node.hash}", drift)
        if repair is not None:
            self.repair_actions.remove(repair)
            repair = attrs.evolve(repair, restage=restage, reason=f"{repair.reason}; {reason}")
        else:
            repair = RepairAction(
                hash=node.hash,
                name=node.name,
                version=node.version,
                prefix=record.prefix,
                differ=(),
                metadata=(),
                added=(),
                keep_added=not self.settings.strict,
                restage=restage,
                reason=reason,
            )
        self.repair_actions.append(repair)

    def _verify_for_lock(self, node: SpecNode) -> None:
        """A lock names what a fresh install fetches, so an installed spec it records is
        verified from a mirror like one to install."""
        if node.hash in self.observed.verified:
            return
        if self._offered(node.hash):
            self.need_specs[node.hash] = node
        else:
            self.errors.append(
                f"{node.short()} is installed, but no declared mirror offers it: a lock must "
                "name the mirror a fresh install fetches it from"
            )

    def _check_drift(self, node: SpecNode, record: InstallRecord) -> None:
        """An installed prefix that differs from its record: plan its repair."""
        findings = self.observed.drift.get(node.hash)
        if self.observed.drift_mode is None or findings is None:
            return  # not compared (a plan made without looking at the prefixes)
        self.fingerprints[f"drift:{node.hash}"] = drift_fingerprint(findings)
        if not findings:
            return
        prefix = record.prefix
        resource = spec_resource(node)

        def paths(kinds: frozenset[str]) -> tuple[str, ...]:
            return tuple(
                sorted({relative_to_prefix(f.path, prefix) for f in findings if f.kind in kinds})
            )

        differ, metadata = paths(CONTENT_KINDS), paths(METADATA_KINDS)
        added = paths(frozenset({ADDED_KIND}))
        strict = self.settings.strict
        if not differ and not metadata and not (added and strict):
            self.noops[resource] = NoOp(
                resource=resource,
                reason=f"installed at {prefix}; {_count(added, 'path')} reconcile did not "
                f"install kept (install.strict is false): {_examples(added)}",
                differs=True,
            )
            return
        restage = None
        if differ or (added and strict):
            restage = self._restage(node, record, len(differ) + len(added))
            if restage is None:
                return
        self.noops.pop(resource, None)
        self.repair_actions.append(
            RepairAction(
                hash=node.hash,
                name=node.name,
                version=node.version,
                prefix=prefix,
                differ=differ,
                metadata=metadata,
                added=added,
                keep_added=not strict,
                restage=restage,
                reason=_repair_reason(findings, prefix, self.observed.drift_mode, strict),
            )
        )

    def _restage(self, node: SpecNode, record: InstallRecord, count: int) -> InstallAction | None:
        """How to re-stage a drifted prefix from its verified tarball, as an install would;
        None when the facts are still missing or no mirror lists it."""
        verified = self.observed.verified.get(node.hash)
        if verified is None:
            listed = any(
                node.hash in m.index and m.index[node.hash].in_buildcache
                for m in self.observed.mirrors
            )
            if listed:
                self.need_specs[node.hash] = node
            else:
                resource = spec_resource(node)
                self.noops[resource] = NoOp(
                    resource=resource,
                    reason=f"{_count(range(count), 'path')} of {record.prefix} differ from its "
                    "install record, but no declared mirror lists it to repair it from",
                    differs=True,
                )
            return None
        closure = self.closures.get(node.hash, frozenset())
        return self._install_action(
            verified.fetched.document.root, verified, record.prefix, closure, "repair"
        )

    def _check_permissions(self, node: SpecNode, record: InstallRecord) -> None:
        """An installed prefix whose recorded permissions differ from the manifest's."""
        wanted = self.settings.permissions
        if wanted is None or node.hash in {a.hash for a in self.permission_actions}:
            return
        desired = {"read": wanted.read, "write": wanted.write, "group": wanted.group}
        applied = record.permissions or {}
        current = {key: applied.get(key) for key in desired}
        if current == desired:
            return
        was = "none set" if not applied else _describe(current)
        self.permission_actions.append(
            PermissionsAction(
                hash=node.hash,
                name=node.name,
                version=node.version,
                prefix=record.prefix,
                permissions=desired,
                reason=f"permissions are {was}; the manifest asks for {_describe(desired)}",
            )
        )

    def _alternates(self, node: SpecNode, chosen: str, sha256: str) -> tuple[tuple[str, str], ...]:
        """The same tarball on the other mirrors that list the spec: named by layout 2's
        path, or by its content address in layout 3 (the signed checksum is the same)."""
        alternates = []
        for mirror in self.observed.mirrors:
            entry = mirror.index.get(node.hash)
            if mirror.name == chosen or entry is None or not entry.in_buildcache:
                continue
            if mirror.layout == OCI_LAYOUT:
                from reconcile.buildcache.layout_oci import blob_url as oci_blob_url

                url = oci_blob_url(mirror.url, sha256)
            elif mirror.layout == 3:
                url = join_url(mirror.url, "blobs", "sha256", sha256[:2], sha256)
            else:
                url = tarball_url(mirror.url, node)
            alternates.append((mirror.name, mask_credentials(url)))
        return tuple(alternates)

    def _closure_of(self, node: SpecNode) -> frozenset[str]:
        closure: set[str] = set()
        for dep in node.runtime_dependencies():
            closure.add(dep.hash)
            closure |= self.closures.get(dep.hash, frozenset())
        return frozenset(closure)

    def _unpinned_signer(
        self, node: SpecNode, mirror: MirrorView, signer: str | None
    ) -> str | None:
        """Why metadata from ``mirror`` must not be installed, or None. Observation already
        refuses signers the manifest does not pin; the plan checks again, so that no fact
        however gathered installs a spec of a signed mirror without a pinned signer."""
        if not mirror.signed:
            return None
        pinned = {key.identity for key in self.manifest_file.manifest.keys}
        if signer is not None and signer in pinned:
            return None
        return (
            f"{node.short()}: its metadata from signed mirror '{mirror.name}' was accepted with "
            f"{f'key {signer}' if signer else 'no signature'}, which the manifest does not pin"
        )

    def _plan_install(
        self, node: SpecNode, verified: VerifiedSpec, record: InstallRecord | None
    ) -> None:
        try:
            relative = format_projection(self.settings.projection, node)
        except ValueError as exc:
            self.errors.append(f"cannot place {node.short()} with install.projection: {exc}")
            return
        prefix = f"{self.root}/{relative}"
        claimed = self.claims.claim(prefix, node, installed=False)
        if claimed is not None:
            self._refuse("prefix", claimed)
            return
        if prefix not in self.observed.path_exists:
            self.need_paths.add(prefix)
        elif self.observed.path_exists[prefix] and (record is None or record.prefix != prefix):
            self.errors.append(
                f"{prefix} already exists but reconcile has no install record for it, so it "
                f"will not overwrite it (needed for {node.short()}); move it away or remove it"
            )
        self.prefixes[node.hash] = prefix
        closure = self._closure_of(node)
        self.closures[node.hash] = closure
        if record is None:
            reason = "not installed"
        else:
            reason = f"recorded prefix {record.prefix} is missing: reinstall"
        action = self._install_action(node, verified, prefix, closure, reason)
        if action is None:
            return
        if self.settings.strict_relocation:
            self._refuse("relocation", longer_prefix_warning(action, self.root))
        self.actions.append(action)
        self.fingerprints[f"record:{node.hash}"] = record_fingerprint(record)
        self.fingerprints[f"path:{prefix}"] = "absent"

    def _built_prefix(self, dag_hash: str, verified: VerifiedSpec) -> str | None:
        """Where the spec was built: read from its own cached tarball, else from a cached
        dependent's record of where its dependencies were (hash_to_prefix)."""
        if verified.built_prefix is not None:
            return verified.built_prefix
        for _, other in sorted(self.observed.verified.items()):
            found = other.dependency_prefixes.get(dag_hash)
            if found is not None:
                return found
        return None

    def _install_action(
        self,
        node: SpecNode,
        verified: VerifiedSpec,
        prefix: str,
        closure: frozenset[str],
        reason: str,
    ) -> InstallAction | None:
        """Staging ``node`` at ``prefix`` from its verified tarball; None (and an error)
        when its signer is not pinned."""
        fetched = verified.fetched
        assert fetched.document.tarball_sha256 is not None
        mirror = next(m for m in self.observed.mirrors if m.name == verified.mirror)
        unpinned = self._unpinned_signer(node, mirror, fetched.signer)
        if unpinned is not None:
            self.errors.append(unpinned)
            return None
        if not self._check_locked_tarball(node, verified):
            return None
        allowed = [self.prefixes[h] for h in sorted(closure) if h in self.prefixes]
        allowed += [self.externals[h] for h in sorted(closure) if h in self.externals]
        self.fingerprints[f"metadata:{node.hash}"] = fetched.metadata_sha256
        self.fingerprints[f"tarball:{node.hash}"] = str(verified.tarball_bytes)
        return InstallAction(
            hash=node.hash,
            name=node.name,
            version=node.version,
            prefix=prefix,
            mirror=mirror.name,
            mirror_url=mask_credentials(mirror.url),
            spec_url=mask_credentials(fetched.url),
            tarball_url=mask_credentials(verified.tarball_url),
            tarball_sha256=fetched.document.tarball_sha256,
            tarball_bytes=verified.tarball_bytes,
            signer=fetched.signer,
            logged_at=fetched.logged_at,
            reason=reason,
            dependencies=tuple(d.hash for d in node.runtime_dependencies()),
            allowed_link_targets=tuple(allowed),
            alternates=self._alternates(node, mirror.name, fetched.document.tarball_sha256),
            cached=verified.cached,
            built_prefix=self._built_prefix(node.hash, verified),
            externals={
                d.hash: self.externals[d.hash]
                for d in node.runtime_dependencies()
                if d.hash in self.externals
            },
            spec=dict(node.raw),
        )

    def run(self) -> Plan | NeedFacts:
        written = _written_mirrors(self.manifest_file)
        for mirror in self.observed.mirrors:
            if mirror.problem:
                resource = f"mirror:{mirror.name}"
                if mirror.empty and mirror.name in written:
                    reason = f"empty: apply creates it in {describe_layout(written[mirror.name])}"
                else:
                    reason = f"skipped: its index cannot be read: {mirror.problem}"
                self.noops[resource] = NoOp(resource=resource, reason=reason)
        roots: list[str] = []
        for text in self.settings.specs:
            roots.extend(self.resolve(parse_selector(text)))
        if self.errors:
            writing = self.lock is not None and self.lock.mode == "write"
            self._raise_errors(hint=_hint_for(self.errors, writing=writing))
        for dag_hash in roots:
            self.visit(dag_hash, None, None)
        if self.errors:
            self._raise_errors()
        if self.need_specs or self.need_paths or self.need_reverify:
            return NeedFacts(
                specs=dict(self.need_specs),
                paths=frozenset(self.need_paths),
                reverify=dict(self.need_reverify),
            )
        new_lock = None
        if self.lock is not None:
            self._check_locked_closures()
            if self.lock.mode == "write":
                new_lock = self._new_lock()
            if self.errors:
                self._raise_errors()
        views = self._plan_views(roots)
        self._plan_removals()
        publishing = self._plan_publishing()
        if isinstance(publishing, NeedFacts):
            return publishing
        return Plan(
            manifest_path=str(self.manifest_file.path),
            manifest_digest=self.manifest_file.digest,
            install_root=self.root,
            actions=(
                *self.actions,
                *self.repair_actions,
                *self.reverify_actions,
                *self.permission_actions,
                *self.removals,
                *views,
                *publishing,
            ),
            noops=tuple(sorted(self.noops.values(), key=lambda n: n.resource)),
            fingerprints=dict(sorted(self.fingerprints.items())),
            prefixes=dict(sorted(self.prefixes.items())),
            external_paths=tuple(sorted(set(self.externals.values()))),
            checked=self.observed.drift_mode,
            resolved_lock=new_lock,
        )

    # -- views ---------------------------------------------------------------------------------
    def _plan_views(self, roots: list[str]) -> tuple[ViewAction, ...]:
        nodes = dict(self.known)
        nodes.update((a.hash, parse_node(a.spec)) for a in self.actions)
        planned = plan_views(
            self.manifest_file,
            self.observed.views,
            roots=list(dict.fromkeys(roots)),
            nodes=nodes,
            prefixes=self.prefixes,
            closures=self.closures,
            lookup=nodes.get,
            install_root=self.root,
        )
        self.noops.update((n.resource, n) for n in planned.noops)
        self.fingerprints.update(planned.fingerprints)
        return planned.actions

    # -- removal ------------------------------------------------------------------------------
    def _plan_removals(self) -> None:
        """Installed prefixes no declared closure needs: removed with ``install.prune``,
        else listed as undeclared and kept. Kept whatever ``prune`` says: a prefix whose
        record names no manifest or another one, whose files differ from its record (unless
        ``--force``), one a kept generation of a view links, and everything a kept prefix
        needs at run time."""
        records = self.observed.records
        needed = set(self.prefixes)  # the declared closures, installed or planned
        kept: dict[str, str] = {}
        removable: list[str] = []
        linked = kept_by_views(self.manifest_file, self.observed.views)
        for dag_hash in sorted(set(records) - needed):
            why = linked.get(dag_hash) or self._why_kept(records[dag_hash])
            if why is None:
                removable.append(dag_hash)
            else:
                kept[dag_hash] = why
        pending = list(kept)
        while pending:
            dag_hash = pending.pop()
            for dependency in self.record_nodes[dag_hash].runtime_dependencies():
                if dependency.hash in records and dependency.hash not in needed | set(kept):
                    kept[dependency.hash] = (
                        f"needed at run time by {self.record_nodes[dag_hash].short()}, "
                        "which is kept"
                    )
                    pending.append(dependency.hash)
        for dag_hash, why in kept.items():
            node = self.record_nodes[dag_hash]
            self.noops[spec_resource(node)] = NoOp(
                resource=spec_resource(node),
                reason=f"undeclared, kept: {why} ({records[dag_hash].prefix})",
                differs=True,
            )
        for dag_hash in removable:
            if dag_hash not in kept:
                self._plan_removal(records[dag_hash])

    def _why_kept(self, record: InstallRecord) -> str | None:
        """Why an undeclared prefix must stay; None when it may be removed."""
        if record.owner is None:
            return "its install record names no manifest (written before records had owners)"
        if record.owner != self.owner:
            return f"installed by another manifest ({record.owner})"
        if not self.settings.prune:
            return "no declared spec needs it; install.prune is false"
        findings = self.observed.drift.get(record.hash, ())
        if findings and not self.force:
            first = findings[0]
            return (
                f"{len(findings)} path(s) differ from its install record, for example "
                f"{first.kind} {first.path}; remove it anyway with --force"
            )
        if record.hash in self.observed.present and self.observed.drift_mode is None:
            return "its files were not compared with its record"
        return None

    def _plan_removal(self, record: InstallRecord) -> None:
        present = record.hash in self.observed.present
        self.fingerprints[f"record:{record.hash}"] = record_fingerprint(record)
        findings = self.observed.drift.get(record.hash, ())
        self.fingerprints[f"drift:{record.hash}"] = drift_fingerprint(findings)
        reason = "no longer declared"
        if not present:
            reason += "; its prefix is gone already, so only its install record is removed"
        elif findings:
            reason += f"; {len(findings)} path(s) differ from its record (--force)"
        self.removals.append(
            RemoveAction(
                hash=record.hash,
                name=record.name,
                version=record.version,
                prefix=record.prefix,
                owner=self.owner,
                prefix_present=present,
                force=self.force,
                reason=reason,
            )
        )

    def _plan_publishing(self) -> tuple[PublishAction | ResignAction, ...] | NeedFacts:
        manifest = self.manifest_file.manifest
        if not manifest.publish:
            return ()
        removed = {r.hash for r in self.removals}
        available = {
            h: Publishable(node=self.record_nodes[h], prefix=r.prefix, installed=True)
            for h, r in self.observed.records.items()
            if h in self.observed.present and h not in removed
        }
        for action in self.actions:
            available[action.hash] = Publishable(
                node=parse_node(action.spec), prefix=action.prefix, installed=False
            )
        result = plan_publishing(
            manifest,
            self.observed.mirrors,
            available,
            self.closures,
            self.root,
            self.observed.sidecar_signers,
        )
        if result.errors:
            raise PlanError("\n".join(result.errors))
        if result.need_sidecars:
            return NeedFacts(specs={}, paths=frozenset(), sidecars=result.need_sidecars)
        self.fingerprints.update(result.fingerprints)
        for noop in result.noops:
            self.noops[noop.resource] = noop
        return result.actions


def _describe(permissions: Mapping[str, str | None]) -> str:
    return ", ".join(f"{k}={v}" for k, v in permissions.items() if v is not None)


def _count(items: object, noun: str) -> str:
    number = len(items)  # type: ignore[arg-type]
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _examples(paths: tuple[str, ...], shown: int = 3) -> str:
    more = len(paths) - shown
    return ", ".join(paths[:shown]) + (f" and {more} more" if more > 0 else "")


def _repair_reason(
    findings: tuple[Finding, ...], prefix: str, mode: str | None, strict: bool
) -> str:
    """What differs, a few paths per kind, and how it was found."""
    by_kind: dict[str, list[str]] = {}
    for finding in findings:
        by_kind.setdefault(finding.kind, []).append(relative_to_prefix(finding.path, prefix))
    parts = []
    for kind in sorted(by_kind):
        shown = _examples(tuple(sorted(by_kind[kind])), shown=2)
        if kind == ADDED_KIND:
            fate = "removed (install.strict)" if strict else "kept"
            parts.append(f"added, {fate}: {shown}")
        else:
            parts.append(f"{kind}: {shown}")
    how = "contents hashed" if mode == "contents" else "fast check"
    return f"differs from its install record ({how}): " + "; ".join(parts)


def _differing_parameters(nodes: list[SpecNode]) -> dict[str, str]:
    """Per node, the variants whose values are not the same for every node (`` +x ~y z=v``),
    so that an ambiguous selector's candidates can be told apart."""

    def parameters(node: SpecNode) -> dict[str, object]:
        raw = node.raw.get("parameters")
        return dict(raw) if isinstance(raw, dict) else {}

    every = [parameters(node) for node in nodes]
    keys = sorted({key for p in every for key in p if len({repr(q.get(key)) for q in every}) > 1})
    shown: dict[str, str] = {}
    for node, values in zip(nodes, every, strict=True):
        parts = []
        for key in keys:
            value = values.get(key)
            if isinstance(value, bool):
                parts.append(f"{'+' if value else '~'}{key}")
            elif isinstance(value, list):
                parts.append(f"{key}={','.join(str(v) for v in value)}")
            elif value is not None:
                parts.append(f"{key}={value}")
        shown[node.hash] = "".join(f" {part}" for part in parts)
    return shown


def _written_mirrors(manifest_file: ManifestFile) -> dict[str, int]:
    """Mirror name -> the layout reconcile writes there, for mirrors this manifest fills."""
    manifest = manifest_file.manifest
    targets = {p.mirror for p in manifest.publish} | {m.name for m in manifest.mirrors if m.specs}
    return {
        m.name: OCI_LAYOUT if is_oci_url(m.url) else m.layout
        for m in manifest.mirrors
        if m.name in targets
    }


def _hint_for(errors: list[str], *, writing: bool = False) -> str | None:
    if writing and any("matches" in e and " specs" in e for e in errors):
        return (
            "make each selector match one spec (add @version or /hashprefix), or let "
            "'reconcile lock --pick newest' choose"
        )
    if any("matches" in e and "specs that are not installed" in e for e in errors):
        return "make each selector match one spec: add @version or /hashprefix"
    no_match = [e for e in errors if e.startswith("no spec matches")]
    if no_match and all("\n    mirror '" in e and "offer:" not in e for e in no_match):
        return "no mirror could be read: fix the mirrors' URLs first (see each mirror's line)"
    if no_match:
        return "check the selector's spelling, the mirrors' URLs and install.arch"
    return None


def make_plan(
    manifest_file: ManifestFile,
    observed: Observed,
    *,
    force: bool = False,
    lock: LockUse | None = None,
) -> Plan | NeedFacts:
    """The plan for ``manifest_file`` given ``observed``, or the facts still needed.
    ``force`` removes undeclared prefixes (with ``install.prune``) even if they drifted;
    ``lock`` says how the lock file is used (``plan/locking.py``)."""
    actions, noops, fingerprints = _plan_source_mirrors(manifest_file, observed)
    if lock is not None:
        source_errors, source_notes = source_findings(manifest_file.manifest, lock)
        if source_errors:
            raise PlanError(
                "\n".join(source_errors),
                hint=f"run 'reconcile lock', review the change to {lock.name} and commit it",
                reference="not-locked",
            )
        noops = (*noops, *source_notes)
    if manifest_file.manifest.install is None:
        result = Plan(
            manifest_path=str(manifest_file.path),
            manifest_digest=manifest_file.digest,
            install_root="",
            actions=(),
            noops=(),
            fingerprints={},
            prefixes={},
            resolved_lock=make_lock(
                specs={}, nodes={}, sources=locked_sources(manifest_file.manifest)
            )
            if lock is not None and lock.mode == "write"
            else None,
        )
    else:
        planned = _Planner(manifest_file, observed, force=force, lock=lock).run()
        if isinstance(planned, NeedFacts):
            return planned
        result = planned
    synced = plan_sync(manifest_file.manifest, observed.mirrors, observed.sidecar_signers)
    if synced.errors:
        raise PlanError("\n".join(synced.errors))
    if synced.need_sidecars:
        return NeedFacts(specs={}, paths=frozenset(), sidecars=synced.need_sidecars)
    resigning = {a.id for a in result.resignings}  # a [[publish]] entry's resign comes first
    result = attrs.evolve(
        result,
        actions=(
            *result.actions,
            *synced.actions,
            *(a for a in synced.resignings if a.id not in resigning),
        ),
        noops=(*result.noops, *synced.noops),
        # what a mirror lacks is the state a publish or sync starts from: a saved plan whose
        # target got the spec meanwhile skips it, one whose target changed otherwise is stale
        fingerprints={
            **result.fingerprints,
            **synced.fingerprints,
            **{a.target: "absent" for a in result.publications},
            **{a.target: "absent" for a in synced.actions},
        },
    )
    written = (
        {a.mirror for a in actions}
        | {a.mirror for a in result.publications}
        | {a.mirror for a in result.resignings}
        | {a.mirror for a in synced.actions}
    )
    mirror_actions, mirror_noops, mirror_fingerprints = _plan_mirror_permissions(
        manifest_file, observed, written
    )
    return attrs.evolve(
        result,
        actions=(*result.actions, *mirror_actions, *actions),
        noops=tuple(sorted((*result.noops, *noops, *mirror_noops), key=lambda n: n.resource)),
        fingerprints=dict(
            sorted({**result.fingerprints, **fingerprints, **mirror_fingerprints}.items())
        ),
    )


def _plan_mirror_permissions(
    manifest_file: ManifestFile, observed: Observed, written: set[str]
) -> tuple[tuple[MirrorPermissionsAction, ...], tuple[NoOp, ...], dict[str, str]]:
    actions, noops, fingerprints = [], [], {}
    for mirror in manifest_file.manifest.mirrors:
        wanted = mirror.permissions
        if wanted is None:
            continue
        resource = f"mirror-permissions:{mirror.name}"
        facts = observed.mirror_permissions.get(mirror.name)
        if facts is None:
            noops.append(
                NoOp(resource=resource, reason="only local mirrors' permissions can be enforced")
            )
            continue
        fingerprints[resource] = (
            str(len(facts.changes)) + ":" + ",".join(c.path for c in facts.changes[:20])
        )
        desired = {"read": wanted.read, "write": wanted.write, "group": wanted.group}
        if not facts.changes and mirror.name not in written:
            noops.append(NoOp(resource=resource, reason=f"{_describe(desired)} everywhere"))
            continue
        reasons = []
        if facts.changes:
            reasons.append(f"{len(facts.changes)} path(s) differ from {_describe(desired)}")
        if mirror.name in written:
            reasons.append("this apply writes into it")
        actions.append(
            MirrorPermissionsAction(
                mirror=mirror.name,
                root=facts.root,
                permissions=desired,
                changes=len(facts.changes),
                examples=tuple(c.path for c in facts.changes[:5]),
                reason="; ".join(reasons),
            )
        )
    return tuple(actions), tuple(noops), fingerprints


def _plan_source_mirrors(
    manifest_file: ManifestFile, observed: Observed
) -> tuple[tuple[SourceAction, ...], tuple[NoOp, ...], dict[str, str]]:
    actions: list[SourceAction] = []
    noops: list[NoOp] = []
    fingerprints: dict[str, str] = {}
    for name, facts in observed.source_mirrors.items():
        sources = [s for s in manifest_file.manifest.sources if s.mirror == name]
        for step in plan_sources(sources, facts, folder=manifest_file.folder):
            (actions if isinstance(step, SourceAction) else noops).append(step)  # type: ignore[arg-type]
        for relative, archive in facts.archives.items():
            state = f"{archive.kind}:{archive.size}:{archive.mtime_ns}"
            fingerprints[f"source:{name}/{relative}"] = state
    return tuple(actions), tuple(noops), fingerprints


def _by_name(nodes: Iterable[tuple[str, SpecNode]]) -> dict[str, list[str]]:
    """Spec name -> the DAG hashes of that name, in the given order."""
    found: dict[str, list[str]] = {}
    for dag_hash, node in nodes:
        found.setdefault(node.name, []).append(dag_hash)
    return found


def _named(
    by_name: Mapping[str, list[str]], name: str | None, every: Iterable[str]
) -> Iterable[str]:
    """The hashes a selector for ``name`` can match: all of them when it names no spec."""
    return every if name is None else by_name.get(name, ())
