"""Planning mirror ``specs``: which specs of the selected closures a mirror still lacks,
and which other mirror (in manifest order) each comes from, and which of those it holds lack
a signature by a key its ``sign_with`` names (a key added or changed for rotation: ``~
resign``, as for ``[[publish]]``). Pure: it reads the indexes and the signers observed;
apply verifies every signature and checksum before it writes anything."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from reconcile.buildcache.layouts import OCI_LAYOUT
from reconcile.manifest.model import Manifest, Mirror
from reconcile.observe.facts import MirrorView
from reconcile.observe.sidecars import sidecar_fact_key
from reconcile.plan.model import NoOp, ResignAction, SyncAction
from reconcile.plan.publishing import resign_action
from reconcile.redact import mask_credentials
from reconcile.reprs import fields_repr
from reconcile.spack.selector import parse_selector
from reconcile.spack.spec import SpecNode
from reconcile.transport.oci_reference import is_oci_url


@attrs.frozen(kw_only=True)
class SyncPlan:
    __repr__ = fields_repr

    actions: tuple[SyncAction, ...]
    noops: tuple[NoOp, ...]
    errors: tuple[str, ...]
    resignings: tuple[ResignAction, ...] = ()
    # (mirror, hash) of specs a mirror holds whose signers must be observed first
    need_sidecars: frozenset[tuple[str, str]] = frozenset()
    fingerprints: Mapping[str, str] = attrs.field(factory=dict)  # sidecar:<mirror>/<hash>


def _closure(root: str, nodes: dict[str, SpecNode]) -> list[str]:
    seen: list[str] = []
    pending = [root]
    while pending:
        dag_hash = pending.pop()
        if dag_hash in seen or dag_hash not in nodes:
            continue
        seen.append(dag_hash)
        pending.extend(d.hash for d in nodes[dag_hash].runtime_dependencies())
    return seen


def plan_sync(
    manifest: Manifest,
    mirrors: tuple[MirrorView, ...],
    sidecar_signers: Mapping[str, frozenset[str]] | None = None,
) -> SyncPlan:
    actions: list[SyncAction] = []
    noops: list[NoOp] = []
    errors: list[str] = []
    resignings: dict[tuple[str, str], ResignAction] = {}
    need: set[tuple[str, str]] = set()
    observed: dict[str, str] = {}
    signed = sidecar_signers or {}
    fingerprints = {key.name: key.fingerprint for key in manifest.keys}
    kinds = {key.name: key.kind for key in manifest.keys}
    identities = {key.name: key.identity for key in manifest.keys}
    for target in manifest.mirrors:
        if not target.specs:
            continue
        gpg_keys = [name for name in target.sign_with if kinds.get(name) == "gpg"]
        statement_keys = tuple(
            n for n in target.sign_with if kinds.get(n) in ("ed25519", "sigstore")
        )
        if len(gpg_keys) > 1:
            errors.append(
                f"mirror '{target.name}': sign_with names the gpg keys {', '.join(gpg_keys)}; "
                "Spack's metadata carries one GnuPG signature, so name at most one gpg key "
                "(and any ed25519 or sigstore keys)"
            )
            continue
        gpg_key = gpg_keys[0] if gpg_keys else None
        if gpg_key is not None and is_oci_url(target.url):
            errors.append(
                f"mirror '{target.name}': it is an OCI registry, whose images carry no GnuPG "
                f"signature; remove the gpg key '{gpg_key}' from sign_with (ed25519 and "
                "sigstore keys sign the sidecar tagged beside each image)"
            )
            continue
        view = next(v for v in mirrors if v.name == target.name)
        # what the mirror holds is signed again by sign_with's keys (the gpg key of a registry
        # was refused above: only its sidecar tags are signed again)
        resign_keys = (*([gpg_key] if gpg_key else []), *statement_keys)
        others = [v for v in mirrors if v.name != target.name]
        nodes: dict[str, SpecNode] = {}
        origin: dict[str, MirrorView] = {}
        for other in reversed(others):  # the first mirror in manifest order wins
            for dag_hash, entry in other.index.items():
                nodes[dag_hash] = entry.node
                if entry.in_buildcache:
                    origin[dag_hash] = other
        for text in target.specs:
            selector = parse_selector(text)
            matches = sorted(
                h for h, n in nodes.items() if h in origin and selector.matches(n, nodes.get)
            )
            if len(matches) != 1:
                found = ", ".join(nodes[h].short() for h in matches) or "none"
                errors.append(
                    f"mirror '{target.name}': '{text}' must match one spec in the other "
                    f"mirrors (found {found}); pin a version or /hashprefix"
                )
                continue
            for dag_hash in _closure(matches[0], nodes):
                node = nodes[dag_hash]
                if node.is_external:
                    continue
                resource = f"sync:{target.name}/{dag_hash}"
                listed = view.index.get(dag_hash)
                if listed is not None and listed.in_buildcache:
                    fact = sidecar_fact_key(target.name, dag_hash)
                    if resign_keys and fact not in signed:
                        need.add((target.name, dag_hash))
                        continue
                    have = signed.get(fact, frozenset())
                    missing = tuple(k for k in resign_keys if identities[k] not in have)
                    reason = f"{node.short()} is already there"
                    if resign_keys:
                        observed[f"sidecar:{fact}"] = ",".join(sorted(have)) or "none"
                        reason += f", signed by {', '.join(resign_keys)}"
                    if not missing:
                        noops.append(NoOp(resource=resource, reason=reason))
                        continue
                    resignings[(target.name, dag_hash)] = resign_action(
                        target.name,
                        view,
                        dag_hash,
                        node,
                        dict(listed.node.raw),
                        missing=missing,
                        gpg_key=gpg_key,
                        have=have,
                        identities=identities,
                        fingerprints=fingerprints,
                        who=f"the sign_with of mirror '{target.name}' names",
                    )
                    continue
                found_in = origin.get(dag_hash)
                if found_in is None:
                    errors.append(f"mirror '{target.name}': {node.short()} is in no other mirror")
                    continue
                problem = _copy_problem(target, found_in)
                if problem:
                    errors.append(f"mirror '{target.name}': {problem}")
                    continue
                actions.append(
                    SyncAction(
                        hash=dag_hash,
                        name=node.name,
                        version=node.version,
                        mirror=target.name,
                        mirror_url=mask_credentials(view.url),
                        layout=_layout(target),
                        source=found_in.name,
                        source_url=mask_credentials(found_in.url),
                        source_layout=found_in.layout,
                        source_signed=found_in.signed,
                        sign_with=gpg_key,
                        fingerprint=fingerprints.get(gpg_key or ""),
                        reason=f"mirror '{target.name}' does not have it",
                        spec=dict(node.raw),
                        statement_keys=statement_keys,
                    )
                )
    unique = {(a.mirror, a.hash): a for a in actions}
    return SyncPlan(
        actions=tuple(unique.values()),
        noops=tuple(noops),
        errors=tuple(errors),
        resignings=tuple(resignings.values()),
        need_sidecars=frozenset(need),
        fingerprints=observed,
    )


def _layout(target: Mirror) -> int:
    return OCI_LAYOUT if is_oci_url(target.url) else target.layout


def _copy_problem(target: Mirror, source: MirrorView) -> str | None:
    """Why a spec cannot be copied from ``source`` to ``target``, or None."""
    if is_oci_url(target.url):
        return None  # an OCI image carries no GnuPG signature; sidecars travel as tags
    verbatim = source.layout == target.layout
    # an OCI source has no GnuPG signature to keep: its sidecar carries what vouches for it
    if verbatim or target.sign_with or not source.signed or source.layout == OCI_LAYOUT:
        return None
    return (
        f"its specs come from layout-{source.layout} mirror '{source.name}' and it is "
        f"layout {target.layout}: the signed metadata must be re-signed; set sign_with to "
        "the [[key]] to sign with (mirrors of the same layout are copied verbatim)"
    )
