"""What the HTTP transport tests share: a served copy of the signed fixture cache, and fast
retry settings (real timeouts and backoff, just small)."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from conftest import GCC_RUNTIME_HASH, HELLO_HASH, SIGNED_CACHE
from nginx_harness import NginxServer, nginx_server

from reconcile.transport.http import HttpTransport

SPEC_PREFIX = "linux-debian12-x86_64_v4-gcc-12.2.0"
INDEX = "build_cache/index.json"
HELLO_SIG = f"build_cache/{SPEC_PREFIX}-hello-app-3.0-{HELLO_HASH}.spec.json.sig"
BIG_TARBALL = (
    "build_cache/linux-debian12-x86_64_v4/gcc-12.2.0/gcc-runtime-12.2.0/"
    f"{SPEC_PREFIX}-gcc-runtime-12.2.0-{GCC_RUNTIME_HASH}.spack"
)
BIG_TARBALL_SHA256 = "0448526af2bad1701bc3b7e009f0890e47285e5c4c34da04ad21b7e45eb35fdf"
BIG_TARBALL_SIZE = 9_566_481

# Small but real: a dead port fails within a second, a retry loop within milliseconds.
FAST: dict[str, Any] = {
    "connect_timeout": 0.5,
    "read_timeout": 2.0,
    "attempts": 4,
    "backoff_base": 0.001,
    "backoff_cap": 0.01,
}


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def writable_copy_of_signed_cache(dest: Path) -> Path:
    shutil.copytree(SIGNED_CACHE, dest)
    for path in [dest, *dest.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dest


@contextlib.contextmanager
def served_signed_cache(tmp: Path, *, tls: bool = False) -> Iterator[NginxServer]:
    root = writable_copy_of_signed_cache(tmp / "root")
    with nginx_server(root, tmp=tmp / "nginx", tls=tls) as server:
        yield server


def fresh(server: NginxServer) -> NginxServer:
    """The shared server as a test expects it: not flaky, empty access log."""
    server.set_flaky(False)
    server.clear_access_log()
    return server


def transport(
    base_url: str,
    *,
    mirror_name: str | None = "team",
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> HttpTransport:
    settings = {**FAST, **overrides}
    return HttpTransport(
        base_url=base_url, mirror_name=mirror_name, environ=environ or {}, **settings
    )


def dead_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (it was just bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def root_of(server: NginxServer) -> Path:
    return server.tmp.parent / "root"
