"""Four applies on one install root and one cache root at once, with a `cache gc` among
them, against a real nginx: all finish (the later ones wait on the lock and then find nothing
to do), the tree is correct, and each tarball crosses the wire once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO
from nginx_harness import NginxServer
from support import write_manifest
from test_fixture_install import check_hello_works
from test_network_install import CACHE_TOML, tarball_requests

from reconcile.state.records import read_records

APPLIES = 4


def test_four_applies_and_a_gc_at_once(tmp_path: Path, nginx_mirror: NginxServer) -> None:
    manifest = write_manifest(tmp_path, mirror=nginx_mirror.url, extra=CACHE_TOML)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    base = [sys.executable, "-m", "reconcile", "-m", str(manifest)]
    processes = [
        subprocess.Popen(
            [*base, "apply", "--yes", "--lock-timeout", "300"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(APPLIES)
    ]
    processes.append(
        subprocess.Popen(
            [*base, "cache", "gc", "--max-size", "0"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    )
    results = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=600)
            results.append((process.returncode, out, err))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    for code, out, err in results:
        assert code == 0, out + err
        assert "Traceback" not in err
    outputs = [out for _, out, _ in results[:APPLIES]]
    # one did it; the others waited, planned again and found it done
    assert sum("Apply complete: 3 installed" in out for out in outputs) == 1, outputs
    assert sum("No changes" in out for out in outputs) == 3
    root = tmp_path / "opt"
    assert len(read_records(root)) == 3
    check_hello_works(root)
    # each tarball was downloaded once: the waiting applies planned after the first finished
    gets = tarball_requests(nginx_mirror)
    assert len(gets) == 3, gets
    assert len({e["uri"] for e in gets}) == 3
