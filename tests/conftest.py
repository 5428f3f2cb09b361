"""Shared test fixtures: where the read-only Spack-made fixtures live, and tool checks."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from gpg_agents import agents_under, stop
from hypothesis import Phase, settings

# bench/mutation.py: many mutants, little CPU. Properties without a max_examples of their own
# try a few examples and do not shrink a failure (a failure is all a mutation run needs).
settings.register_profile(
    "mutation", max_examples=10, deadline=None, phases=[Phase.generate], database=None
)

REPO = Path(__file__).resolve().parents[1]
# The shared fixtures: ``../shared`` beside the repository, or $RECONCILE_SHARED (a copy with
# its links in the other form, tests/shared_with_symlinks.py; or a tree copied elsewhere).
SHARED = Path(os.environ.get("RECONCILE_SHARED") or REPO.parent / "shared").resolve()
FIXTURES = SHARED / "fixtures"
SIGNED_CACHE = FIXTURES / "spack-v2-signed"
UNSIGNED_CACHE = FIXTURES / "spack-v2-unsigned"
FIXTURE_KEY = FIXTURES / "keys" / "E4A1C447981D70AB30BD8B09643A47B4E5E41176.pub"
FIXTURE_FPR = "E4A1C447981D70AB30BD8B09643A47B4E5E41176"

HELLO_HASH = "d7r6xmzoqurk6flnbcq6ygnn57fqrl35"
GREETLIB_HASH = "yrhiacwgupby4tv3k7q335q6ovlg2ts2"
GCC_RUNTIME_HASH = "75b4t5rehtewc6bh4sj3aqwpli7tah3f"
GLIBC_HASH = "o6a3cwhnprfwt6michm5sbkyvo7tltol"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite the expected outputs of golden tests (tests/plan/golden) from the code",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    """True when the run was asked to rewrite golden files instead of comparing with them."""
    return bool(request.config.getoption("--update-golden"))


def pytest_configure(config: pytest.Config) -> None:
    if not SIGNED_CACHE.is_dir():
        raise pytest.UsageError(f"the shared fixtures are missing: expected {SIGNED_CACHE}")


@pytest.fixture(scope="session", autouse=True)
def no_gpg_agent_survives(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Temporary GnuPG homes (reconcile's own, in this process and in the CLI runs it starts)
    go under the session's test folder, through a short $TMPDIR; at the end of the session no
    gpg-agent may still serve a home there. Set RECONCILE_TEST_KEEP_AGENTS=1 to turn the
    per-test cleanup off and see every agent a run leaves behind."""
    base = tmp_path_factory.getbasetemp()
    short = base / "tmp"
    short.mkdir(exist_ok=True)
    saved = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(short)
    tempfile.tempdir = None  # recomputed from $TMPDIR
    try:
        yield base
    finally:
        if saved is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved
        tempfile.tempdir = None
        left = agents_under(base)
        for agent in left:
            stop(agent)
    assert left == [], "gpg-agents outlived the tests (stopped now): " + ", ".join(
        str(agent.home) for agent in left
    )


@pytest.fixture(autouse=True)
def stop_gpg_agents_of_the_test(no_gpg_agent_survives: Path) -> Iterator[None]:
    """Stop the agents of GnuPG homes that this test made in its own folders (a test's helper
    that signs starts one), and those whose home was removed while they ran."""
    base = no_gpg_agent_survives
    before = set(base.iterdir())
    yield
    if os.environ.get("RECONCILE_TEST_KEEP_AGENTS") == "1":
        return
    new = [folder for folder in base.iterdir() if folder not in before and folder.name != "tmp"]
    for agent in agents_under(base):
        if not agent.home.exists() or any(agent.home.is_relative_to(f) for f in new):
            stop(agent)


@pytest.fixture
def signed_cache_copy(tmp_path: Path) -> Path:
    """A writable copy of the signed fixture cache (for tampering)."""
    dest = tmp_path / "mirror"
    shutil.copytree(SIGNED_CACHE, dest)
    for path in [dest, *dest.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    return dest


@pytest.fixture
def nginx_mirror(tmp_path: Path, signed_cache_copy: Path):  # type: ignore[no-untyped-def]
    """A real nginx on 127.0.0.1 serving a copy of the signed fixture cache."""
    from nginx_harness import nginx_server

    with nginx_server(signed_cache_copy, tmp=tmp_path / "nginx") as server:
        yield server
