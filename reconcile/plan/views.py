"""Planning views: what each ``[[view]]`` should hold, compared with its current generation;
and which prefixes the kept generations link to (removal never takes those).

Pure: the view's generations were read by the observer (``Observed.views``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import attrs

from reconcile.errors import PlanError
from reconcile.manifest.model import ManifestFile, View
from reconcile.plan.model import NoOp, ViewAction
from reconcile.reprs import fields_repr
from reconcile.spack.projection import format_projection
from reconcile.spack.selector import parse_selector
from reconcile.spack.spec import SpecNode
from reconcile.views.contents import ViewContents, ViewSpec
from reconcile.views.generations import ViewState


@attrs.frozen(kw_only=True)
class ViewPlan:
    __repr__ = fields_repr

    actions: tuple[ViewAction, ...]
    noops: tuple[NoOp, ...]
    fingerprints: dict[str, str]


def view_state_fingerprint(state: ViewState) -> str:
    """What a view action starts from: the generation the view points at and its contents."""
    current = state.current_generation
    if current is None:
        return "absent" if state.current is None else f"{state.current}:incomplete"
    return f"{current.number}:{current.fingerprint}"


def kept_by_views(manifest_file: ManifestFile, views: Mapping[str, ViewState]) -> dict[str, str]:
    """DAG hash -> why it stays: every prefix a kept generation of a declared view links."""
    kept: dict[str, str] = {}
    for view in manifest_file.manifest.views:
        state = views.get(view.name)
        if state is None:
            continue
        for generation in state.kept(view.keep):
            for spec in generation.contents.specs:
                kept.setdefault(
                    spec.hash, f"generation {generation.number} of view '{view.name}' links it"
                )
    return kept


class _ViewPlanner:
    def __init__(
        self,
        *,
        roots: Sequence[str],
        nodes: Mapping[str, SpecNode],
        prefixes: Mapping[str, str],
        closures: Mapping[str, frozenset[str]],
        lookup: Callable[[str], SpecNode | None],
    ) -> None:
        self.roots = roots
        self.nodes = nodes
        self.prefixes = prefixes
        self.closures = closures
        self.lookup = lookup

    def selected(self, view: View) -> list[str]:
        """The hashes a view links, in merge order: each selected spec (then, with
        ``run_dependencies``, its run-time closure by name), each once, externals left out."""
        if view.specs is None:
            chosen = list(self.roots)
        else:
            chosen = []
            for text in view.specs:
                selector = parse_selector(text)
                matched = sorted(
                    (h for h in self.prefixes if selector.matches(self.nodes[h], self.lookup)),
                    key=lambda h: (self.nodes[h].name, self.nodes[h].version, h),
                )
                if not matched:
                    raise PlanError(
                        f"view '{view.name}': '{text}' matches none of the specs the manifest "
                        "installs (a view links only the declared specs and their run-time "
                        "dependencies)",
                        hint="add the spec to [install] specs, or fix the view's selector",
                    )
                chosen.extend(matched)
        ordered: list[str] = []
        for dag_hash in chosen:
            group = [dag_hash]
            if view.run_dependencies:
                group += sorted(
                    self.closures.get(dag_hash, frozenset()),
                    key=lambda h: (self.nodes[h].name, h) if h in self.nodes else ("", h),
                )
            ordered.extend(h for h in group if h in self.prefixes and h not in ordered)
        return ordered

    def projection(self, view: View, node: SpecNode) -> str:
        """Spack's rule: the first selector that matches, else ``all``, else the root."""
        chosen = view.projections.get("all", "")
        for key, projection in view.projections.items():
            if key != "all" and parse_selector(key).matches(node, self.lookup):
                chosen = projection
                break
        if not chosen:
            return ""
        try:
            return format_projection(chosen, node, unique=False)
        except ValueError as exc:
            raise PlanError(
                f"view '{view.name}': projection {chosen!r} cannot place {node.short()}: {exc}",
                hint="use placeholders the spec has a value for",
            ) from None

    def contents(self, view: View) -> ViewContents:
        specs = []
        for dag_hash in self.selected(view):
            node = self.nodes[dag_hash]
            specs.append(
                ViewSpec(
                    hash=dag_hash,
                    name=node.name,
                    version=node.version,
                    prefix=self.prefixes[dag_hash],
                    projection=self.projection(view, node),
                )
            )
        return ViewContents(
            link=view.link, conflicts=view.conflicts, exclude=view.exclude, specs=tuple(specs)
        )


def _difference(old: ViewContents, new: ViewContents) -> str:
    before = {s.hash: s for s in old.specs}
    after = {s.hash: s for s in new.specs}
    changes = [f"+{s.label}" for h, s in after.items() if h not in before]
    changes += [f"-{s.label}" for h, s in before.items() if h not in after]
    if changes:
        return "specs " + " ".join(changes)
    return "its settings changed (link, projections, exclude, conflicts or order)"


def plan_views(
    manifest_file: ManifestFile,
    views: Mapping[str, ViewState],
    *,
    roots: Sequence[str],
    nodes: Mapping[str, SpecNode],
    prefixes: Mapping[str, str],
    closures: Mapping[str, frozenset[str]],
    lookup: Callable[[str], SpecNode | None],
    install_root: str,
) -> ViewPlan:
    planner = _ViewPlanner(
        roots=roots, nodes=nodes, prefixes=prefixes, closures=closures, lookup=lookup
    )
    actions, noops, fingerprints = [], [], {}
    for view in manifest_file.manifest.views:
        state = views.get(view.name)
        path = manifest_file.view_path(view)
        if state is None:  # not observed (a saved plan's recheck observes every view)
            continue
        resource = f"view:{view.name}"
        fingerprints[resource] = view_state_fingerprint(state)
        contents = planner.contents(view)
        wanted = contents.fingerprint()
        current = state.current_generation
        if current is not None and current.fingerprint == wanted:
            noops.append(
                NoOp(
                    resource=resource,
                    reason=f"generation {current.number} at {path} holds "
                    f"{len(contents.specs)} spec(s) as declared",
                )
            )
            continue
        if current is None and state.current is None:
            reason = "no generation yet"
        elif current is None:
            reason = f"its current generation {state.current} is incomplete"
        else:
            changed = _difference(current.contents, contents)
            reason = f"generation {current.number} differs: {changed}"
        actions.append(
            ViewAction(
                view=view.name,
                path=str(path),
                contents=contents,
                fingerprint=wanted,
                keep=view.keep,
                current=state.current,
                install_root=install_root,
                reason=reason,
            )
        )
    return ViewPlan(actions=tuple(actions), noops=tuple(noops), fingerprints=fingerprints)
