"""Shared test fixtures: where the read-only Spack-made fixtures live, and tool checks."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO.parent / "shared").resolve()
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
