"""A saved plan reads back as the plan that was saved: ``load(dump(plan)) == plan`` for any
plan, through JSON text as ``reconcile plan --out`` writes it."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reconcile.manifest.model import Source
from reconcile.plan.model import (
    Action,
    InstallAction,
    MirrorPermissionsAction,
    NoOp,
    PermissionsAction,
    Plan,
    PublishAction,
    SourceAction,
    SyncAction,
)
from reconcile.plan.serialize import plan_from_dict, plan_to_dict
from reconcile.sources.layout import source_paths

text = st.text(max_size=12)
small = st.integers(min_value=0, max_value=2**53)  # what JSON numbers hold exactly
dag_hash = st.text("abcdefghijklmnopqrstuvwxyz234567", min_size=32, max_size=32)
sha256 = st.text("0123456789abcdef", min_size=64, max_size=64)
fingerprint = st.none() | st.text("0123456789ABCDEF", min_size=40, max_size=40)
json_value = st.recursive(
    st.none() | st.booleans() | small | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
spec = st.dictionaries(text, json_value, max_size=4)
permissions = st.fixed_dictionaries(
    {"read": st.sampled_from(["world", "group", "user"]), "write": st.sampled_from(["user"])},
    optional={"group": st.none() | text},
)
common: dict[str, Any] = {"hash": dag_hash, "name": text, "version": text, "reason": text}

installs = st.builds(
    InstallAction,
    **common,
    prefix=text,
    mirror=text,
    mirror_url=text,
    spec_url=text,
    tarball_url=text,
    tarball_sha256=sha256,
    tarball_bytes=small,
    signer=fingerprint,
    dependencies=st.tuples(dag_hash) | st.just(()),
    allowed_link_targets=st.lists(text, max_size=3).map(tuple),
    externals=st.dictionaries(dag_hash, text, max_size=2),
    alternates=st.lists(st.tuples(text, text), max_size=2).map(tuple),
    cached=st.booleans(),
    spec=spec,
)
permission_changes = st.builds(PermissionsAction, **common, prefix=text, permissions=permissions)
publications = st.builds(
    PublishAction,
    **common,
    prefix=text,
    mirror=text,
    mirror_url=text,
    layout=st.sampled_from([2, 3]),
    key=st.none() | text,
    fingerprint=fingerprint,
    buildpath=text,
    hash_to_prefix=st.dictionaries(dag_hash, text, max_size=3),
)
mirror_permissions = st.builds(
    MirrorPermissionsAction,
    mirror=text,
    root=text,
    permissions=permissions,
    changes=small,
    examples=st.lists(text, max_size=3).map(tuple),
    reason=text,
)
syncs = st.builds(
    SyncAction,
    **common,
    mirror=text,
    mirror_url=text,
    layout=st.sampled_from([2, 3]),
    source=text,
    source_url=text,
    source_layout=st.sampled_from([2, 3]),
    source_signed=st.booleans(),
    sign_with=st.none() | text,
    fingerprint=fingerprint,
    spec=spec,
)
actions: st.SearchStrategy[Action] = st.one_of(
    installs, permission_changes, publications, mirror_permissions, syncs
)
name = st.from_regex(r"[a-z][a-z0-9_.+-]{0,10}", fullmatch=True).filter(
    lambda n: n not in (".", "..")
)


@st.composite
def source_actions(draw: st.DrawFn) -> SourceAction:
    """Saved source actions hold URLs without credentials and no observed sizes (apply plans
    sources again); their link target follows from the rest."""
    source = Source(
        name=draw(name),
        version=draw(name),
        url=f"https://example.org/{draw(name)}.{draw(st.sampled_from(['tar.gz', 'zip', 'x']))}",
        sha256=draw(sha256),
        mirror=draw(text),
    )
    paths = source_paths(source)
    return SourceAction(
        operation=draw(st.sampled_from(["fetch", "record", "link"])),
        name=source.name,
        version=source.version,
        mirror=source.mirror,
        mirror_root=draw(text),
        url=source.url,
        sha256=source.sha256,
        archive=paths.archive,
        link=paths.link,
        link_target=paths.link_target,
        reason=draw(text),
    )


plans = st.builds(
    Plan,
    manifest_path=text,
    manifest_digest=sha256,
    install_root=text,
    actions=st.lists(st.one_of(actions, source_actions()), max_size=5).map(tuple),
    noops=st.lists(st.builds(NoOp, resource=text, reason=text), max_size=3).map(tuple),
    fingerprints=st.dictionaries(text, text, max_size=4),
    prefixes=st.dictionaries(dag_hash, text, max_size=3),
    external_paths=st.lists(text, max_size=2).map(tuple),
)


@settings(deadline=None)
@given(plans)
def test_a_saved_plan_loads_as_the_plan_that_was_saved(plan: Plan) -> None:
    saved = json.dumps(plan_to_dict(plan), indent=1)
    loaded = plan_from_dict(json.loads(saved), source="plan.json")
    assert loaded == plan
    # fields left out of equality must survive too: the executor records them
    assert [getattr(a, "spec", None) for a in loaded.actions] == [
        getattr(a, "spec", None) for a in plan.actions
    ]
