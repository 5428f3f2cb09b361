"""What the source-mirror tests share: the two sources of the Spack-made fixture mirror, and
one observe -> plan -> apply pass as ``reconcile apply`` would run it."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

from conftest import FIXTURES
from shared_with_symlinks import LinkForm, build_shared_copy

from reconcile.apply.events import SilentReporter
from reconcile.apply.sources import SourcesApplied, apply_sources
from reconcile.manifest.model import Source
from reconcile.plan.model import NoOp, SourceAction
from reconcile.plan.sources import plan_sources
from reconcile.sources.observe import observe_source_mirror
from reconcile.transport.registry import TransportPool

SPACK_MIRROR = FIXTURES / "spack-source-mirror"
GREETLIB_SHA256 = "fa2d16c7c3e49771597f3368c60265178be903aa6705b848ae6a82ef262e98df"
HELLO_SHA256 = "7ba9fd213dbd67030b30b08d252aba22e364805d7625e31c21e86b3b5b50fb57"
GREETLIB_ARCHIVE = f"_source-cache/archive/fa/{GREETLIB_SHA256}.tar.gz"
HELLO_ARCHIVE = f"_source-cache/archive/7b/{HELLO_SHA256}.tar.gz"
GREETLIB_LINK = "greetlib/greetlib-2.1.tar.gz"
HELLO_LINK = "hello-app/hello-app-3.0.tar.gz"
MIRROR = "sources"

Step = SourceAction | NoOp


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def served_copy(dest: Path) -> Path:
    """A copy of the fixture mirror that nginx (and tests) may read and change."""
    shutil.copytree(SPACK_MIRROR, dest, symlinks=True)
    for path in [dest, *dest.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    return dest


def mirror_in_form(dest: Path, form: LinkForm) -> Path:
    """A writable copy of the fixture mirror whose links are real symlinks or flattened files,
    whichever form ../shared holds."""
    return build_shared_copy(SPACK_MIRROR, dest, links=form)


def fixture_sources(base_url: str, *, greetlib_sha256: str = GREETLIB_SHA256) -> list[Source]:
    """greetlib 2.1 and hello-app 3.0, fetched from the archives below ``base_url`` (a
    mirror in Spack's layout, such as the fixture or nginx serving a copy of it)."""
    return [
        Source(
            name="greetlib",
            version="2.1",
            url=f"{base_url}/{GREETLIB_ARCHIVE}",
            sha256=greetlib_sha256,
            mirror=MIRROR,
        ),
        Source(
            name="hello-app",
            version="3.0",
            url=f"{base_url}/{HELLO_ARCHIVE}",
            sha256=HELLO_SHA256,
            mirror=MIRROR,
        ),
    ]


def plan(root: Path, sources: list[Source], *, check_contents: bool = False) -> list[Step]:
    return plan_sources(
        sources, observe_source_mirror(root, sources, check_contents=check_contents)
    )


def actions(steps: list[Step]) -> list[SourceAction]:
    return [step for step in steps if isinstance(step, SourceAction)]


def summary(steps: list[Step]) -> list[tuple[str, str]]:
    """(kind or "noop", resource label) per step, for compact assertions."""
    return [
        (step.operation, step.label) if isinstance(step, SourceAction) else ("noop", step.resource)
        for step in steps
    ]


def apply(steps: list[Step]) -> SourcesApplied:
    with TransportPool() as pool:
        return apply_sources(actions(steps), read=pool, reporter=SilentReporter())


def converge(root: Path, sources: list[Source]) -> SourcesApplied:
    return apply(plan(root, sources))


class HashCounter:
    """Counts the archives the pipeline hashes (wrapping the real function)."""

    def __init__(self, real: Callable[[Path], str]) -> None:
        self.real = real
        self.paths: list[Path] = []

    def __call__(self, path: Path) -> str:
        self.paths.append(path)
        return self.real(path)


def leftovers(root: Path) -> list[Path]:
    """Temporary files a run may have left behind (downloads, links being made)."""
    return sorted(path for path in root.rglob(".*") if path.name.endswith((".part", ".tmp")))
