"""Mirror permissions, the last commit step: what this apply wrote into a local mirror gets
the mirror's ``[mirror.permissions]`` too. Phase 1 resolves each group, so an unknown group
stops the run before anything is committed."""

from __future__ import annotations

from pathlib import Path

import attrs

from reconcile.apply.context import ApplyResult, RunContext
from reconcile.manifest.model import Permissions
from reconcile.permissions import apply_permissions, resolve_group


class MirrorPermissionsStep:
    def __init__(self, run: RunContext) -> None:
        self.run = run
        self.wanted: list[tuple[Permissions, int | None]] = []

    def prepare(self, workdir: Path) -> None:
        del workdir
        manifest = self.run.manifest_file.manifest
        for action in self.run.plan.mirror_permission_changes:
            permissions = manifest.mirror(action.mirror).permissions
            assert permissions is not None  # planned only for mirrors that declare them
            gid = resolve_group(permissions.group) if permissions.group else None
            self.wanted.append((permissions, gid))

    def commit(self, result: ApplyResult) -> ApplyResult:
        fixed = []
        actions = self.run.plan.mirror_permission_changes
        for action, (permissions, gid) in zip(actions, self.wanted, strict=True):
            apply_permissions(Path(action.root), permissions, gid=gid)
            self.run.reporter.event(f"set permissions of mirror '{action.mirror}' ({action.root})")
            fixed.append(action.mirror)
        return attrs.evolve(result, mirrors_fixed=tuple(fixed))
