"""``bundle import BUNDLE.tar oci://...``: a verified bundle pushed into a real registry
(Debian's docker-registry on 127.0.0.1) as Spack's OCI build cache, one image per spec and the
index tag last, then installed from there with the manifest ``--out`` wrote."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from oci_harness import oci_registry, registry_available
from test_bundle_into_s3 import bundles  # noqa: F401 (a module fixture, shared)

pytestmark = pytest.mark.skipif(
    not registry_available(), reason="docker-registry is not installed (.ci/run installs it)"
)


def _reconcile(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconcile", *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=300,
    )


@pytest.mark.parametrize("layout", [2, 3])
def test_bundle_into_a_registry_then_install_from_it(
    bundles: dict[int, Path],  # noqa: F811
    tmp_path: Path,
    layout: int,
) -> None:
    with oci_registry(tmp=tmp_path / "registry") as registry:
        url = registry.mirror_url(f"site/cache-{layout}")
        out = tmp_path / "site"
        done = _reconcile("bundle", "import", str(bundles[layout]), url, "--out", str(out))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Imported 3 specs" in done.stdout
        pushes = [
            path
            for method, path, status in registry.requests()
            if method == "PUT" and "/manifests/" in path and status == 201
        ]
        assert len(pushes) == 4 and pushes[-1].endswith("/manifests/index.spack"), pushes
        text = (out / "reconcile.toml").read_text()
        assert f'url = "{url}"' in text and "signed = false" in text
        installed = _reconcile("-m", str(out / "reconcile.toml"), "apply", "--yes")
        assert installed.returncode == 0, installed.stdout + installed.stderr
        [hello] = (out / "opt").glob("hello-app-3.0-*")
        ran = subprocess.run([hello / "bin/hello-app"], capture_output=True, text=True, check=True)
        assert str(hello) in ran.stdout and "greetlib 2.1 says hello." in ran.stdout
