"""Planning ``[[publish]]``: which installed specs each publishing mirror still lacks.

Pure, like the rest of the planner: it works from the install records, the specs this plan
installs, and the mirrors' indexes.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from reconcile.buildcache.layouts import OCI_LAYOUT
from reconcile.manifest.model import Manifest, Publish
from reconcile.observe.facts import MirrorView
from reconcile.observe.sidecars import sidecar_fact_key
from reconcile.plan.model import NoOp, PublishAction, ResignAction
from reconcile.redact import mask_credentials
from reconcile.reprs import fields_repr
from reconcile.spack.consumers import SpackRelease, consumer_prefix_length
from reconcile.spack.selector import parse_selector
from reconcile.spack.spec import SpecNode


@attrs.frozen(kw_only=True)
class Publishable:
    """A spec that is installed, or will be once this plan's installs are committed."""

    __repr__ = fields_repr

    node: SpecNode
    prefix: str
    installed: bool


@attrs.frozen(kw_only=True)
class PublishingPlan:
    __repr__ = fields_repr

    actions: tuple[PublishAction | ResignAction, ...]
    noops: tuple[NoOp, ...]
    errors: tuple[str, ...]
    # (mirror, hash) of published specs whose sidecar signers must be observed first
    need_sidecars: frozenset[tuple[str, str]] = frozenset()
    fingerprints: Mapping[str, str] = attrs.field(factory=dict)  # sidecar:<mirror>/<hash>


def plan_publishing(
    manifest: Manifest,
    mirrors: tuple[MirrorView, ...],
    available: Mapping[str, Publishable],
    closures: Mapping[str, frozenset[str]],
    buildpath: str,
    sidecar_signers: Mapping[str, frozenset[str]] | None = None,
) -> PublishingPlan:
    """One publish action per (spec of a selected closure, mirror) the mirror lacks, and one
    resign action per spec there whose sidecar lacks a signature by a statement key the
    entry names (``sidecar_signers``: what the mirror's sidecars carry, observed on demand)."""
    actions: dict[tuple[str, str], PublishAction | ResignAction] = {}
    noops: dict[str, NoOp] = {}
    errors: list[str] = []
    need: set[tuple[str, str]] = set()
    observed: dict[str, str] = {}
    signed = sidecar_signers or {}
    fingerprints = {key.name: key.fingerprint for key in manifest.keys}
    kinds = {key.name: key.kind for key in manifest.keys}
    identities = {key.name: key.identity for key in manifest.keys}
    views = {view.name: view for view in mirrors}
    for number, entry in enumerate(manifest.publish):
        view = views[entry.mirror]
        gpg_keys = [name for name in entry.key if kinds.get(name) == "gpg"]
        statement_keys = tuple(
            name for name in entry.key if kinds.get(name) in ("ed25519", "sigstore")
        )
        if len(gpg_keys) > 1:
            errors.append(
                f"publish[{number}]: names the gpg keys {', '.join(gpg_keys)}; Spack's metadata "
                "carries one GnuPG signature, so name at most one gpg key (and any ed25519 keys)"
            )
            continue
        gpg_key = gpg_keys[0] if gpg_keys else None
        oci = view.layout == OCI_LAYOUT
        if oci and gpg_key is not None:
            errors.append(
                f"publish[{number}]: mirror '{entry.mirror}' is an OCI registry, whose images "
                f"carry no GnuPG signature (Spack pushes them unsigned); remove the gpg key "
                f"'{gpg_key}' from this entry (ed25519 keys sign a sidecar tagged beside "
                "each image)"
            )
            continue
        roots: list[str] = []
        for text in entry.specs:
            selector = parse_selector(text)
            nodes = {h: p.node for h, p in available.items()}
            matches = sorted(h for h, p in available.items() if selector.matches(p.node, nodes.get))
            if not matches:
                errors.append(
                    f"publish[{number}]: '{text}' matches no installed spec (and none that "
                    "this plan installs); add it to install.specs first"
                )
            roots.extend(matches)
        for root in roots:
            for dag_hash in sorted({root, *closures.get(root, frozenset())}):
                item = available.get(dag_hash)
                if item is None:  # an external: never published
                    continue
                resource = f"publish:{entry.mirror}/{dag_hash}"
                listed = view.index.get(dag_hash)
                if listed is not None and listed.in_buildcache:
                    reason = f"{item.node.short()} is already in mirror '{entry.mirror}'"
                    fact = sidecar_fact_key(entry.mirror, dag_hash)
                    # an OCI image has no GnuPG signature: only its sidecar tag is signed again
                    resign_keys = (*([gpg_key] if gpg_key and not oci else []), *statement_keys)
                    if resign_keys and fact not in signed:
                        need.add((entry.mirror, dag_hash))
                        continue
                    have = signed.get(fact, frozenset())
                    missing = tuple(k for k in resign_keys if identities[k] not in have)
                    if resign_keys:
                        observed[f"sidecar:{fact}"] = ",".join(sorted(have)) or "none"
                        reason += f", signed by {', '.join(resign_keys)}"
                    if not missing:
                        noops[resource] = NoOp(resource=resource, reason=reason)
                        continue
                    actions[(entry.mirror, dag_hash)] = resign_action(
                        entry.mirror,
                        view,
                        dag_hash,
                        item.node,
                        dict(listed.node.raw),
                        missing=missing,
                        gpg_key=gpg_key,
                        have=have,
                        identities=identities,
                        fingerprints=fingerprints,
                        who=f"publish[{number}] signs with",
                    )
                    continue
                too_short = _too_short(entry, number, item, buildpath)
                if too_short is not None:
                    errors.append(too_short)
                    continue
                hash_to_prefix = {
                    h: available[h].prefix
                    for h in sorted({dag_hash, *closures.get(dag_hash, frozenset())})
                    if h in available
                }
                actions[(entry.mirror, dag_hash)] = PublishAction(
                    hash=dag_hash,
                    name=item.node.name,
                    version=item.node.version,
                    prefix=item.prefix,
                    mirror=entry.mirror,
                    mirror_url=mask_credentials(view.url),
                    layout=OCI_LAYOUT if oci else _layout_of(manifest, entry.mirror),
                    key=gpg_key,
                    fingerprint=fingerprints.get(gpg_key) if gpg_key else None,
                    statement_keys=statement_keys,
                    buildpath=buildpath,
                    hash_to_prefix=hash_to_prefix,
                    reason=f"mirror '{entry.mirror}' does not have it"
                    + ("" if item.installed else " (installed by this plan first)"),
                )
    return PublishingPlan(
        actions=tuple(actions.values()),
        noops=tuple(noops.values()),
        errors=tuple(errors),
        need_sidecars=frozenset(need),
        fingerprints=observed,
    )


def resign_action(
    mirror: str,
    view: MirrorView,
    dag_hash: str,
    node: SpecNode,
    spec: dict[str, object],
    *,
    missing: tuple[str, ...],
    gpg_key: str | None,
    have: frozenset[str],
    identities: Mapping[str, str],
    fingerprints: Mapping[str, str],
    who: str,
) -> ResignAction:
    """The resign of a spec ``mirror`` holds that the keys in ``missing`` have not signed
    (the gpg key among them clear-signs its metadata again), for [[publish]] and sync alike."""
    gpg_missing = gpg_key if gpg_key in missing else None
    return ResignAction(
        hash=dag_hash,
        name=node.name,
        version=node.version,
        mirror=mirror,
        mirror_url=mask_credentials(view.url),
        layout=view.layout,
        keys=missing,
        reason=resign_reason(mirror, who, missing, gpg_missing, have, identities),
        spec=spec,
        key=gpg_missing,
        fingerprint=fingerprints.get(gpg_missing) if gpg_missing else None,
    )


def resign_reason(
    mirror: str,
    who: str,
    missing: tuple[str, ...],
    gpg_key: str | None,
    have: frozenset[str],
    identities: Mapping[str, str],
) -> str:
    """Which signatures the spec lacks, where each goes, who asks for them (``who``:
    "publish[0] signs with") and who signed it so far."""
    have_names = sorted(k for k, i in identities.items() if i in have)
    statement_keys = [k for k in missing if k != gpg_key]
    parts = []
    if gpg_key is not None:
        parts.append(f"its metadata in mirror '{mirror}' is not clear-signed by {gpg_key}")
    if statement_keys:
        parts.append(
            f"its sidecar in mirror '{mirror}' has no signature by {', '.join(statement_keys)}"
        )
    return f"{' and '.join(parts)}, which {who} (signed now by: {', '.join(have_names) or 'none'})"


def _too_short(entry: Publish, number: int, item: Publishable, buildpath: str) -> str | None:
    """Why ``item`` cannot be published for the consumers ``entry`` names, or None: its
    prefix (or the install root, which relocation maps too) is shorter than what they need."""
    wanted = entry.min_prefix_length or 0
    why = f"publish[{number}].min_prefix_length is {wanted}"
    if entry.for_spack is not None:
        release: SpackRelease = "0.23" if entry.for_spack == "0.23" else "1.x"
        needed = consumer_prefix_length(item.node, release, entry.consumer_padded_length)
        if needed > wanted:
            wanted = needed
            why = (
                f"Spack {entry.for_spack}'s default tree with a root padded to "
                f"{entry.consumer_padded_length} puts it at {needed} characters"
            )
        if len(buildpath) < entry.consumer_padded_length:
            return (
                f"publish[{number}]: the install root {buildpath} is {len(buildpath)} "
                f"characters, shorter than the {entry.consumer_padded_length} of the root it "
                f"is published for (consumer_padded_length): Spack could not relocate it"
                f"\n    set install.padded_length to at least {entry.consumer_padded_length}"
            )
    if len(item.prefix) >= wanted:
        return None
    return (
        f"publish[{number}]: {item.node.short()} is installed at {item.prefix} "
        f"({len(item.prefix)} characters), but {why}: its binaries cannot be relocated to a "
        f"longer prefix\n    pad the install root (install.padded_length) by at least "
        f"{wanted - len(item.prefix)} more characters, or use a longer projection"
    )


def _layout_of(manifest: Manifest, mirror: str) -> int:
    return next(m.layout for m in manifest.mirrors if m.name == mirror)
