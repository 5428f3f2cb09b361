"""``bundle import BUNDLE.tar file:///mirror``: bundles added to an existing mirror folder
through the write seam. The mirror's index keeps what it listed, a second import of the same
bundle changes nothing, and a mirror of the other layout is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from bundle_support import write_manifest
from test_bundle_into_s3 import (
    SPACK1,
    SPACK1_FPR,
    SPACK1_KEY,
    bundles,  # noqa: F401 (a module fixture, shared)
)

from reconcile.buildcache.layout_v3 import read_index_v3
from reconcile.bundle.errors import BundleError
from reconcile.bundle.export import export_bundle
from reconcile.bundle.into_mirror import StoreDestination, import_into_mirror
from reconcile.transport.file import FileTransport
from reconcile.transport.store import LocalMirrorStore

HELLO_RPATH = "vdd2rtu4sojx4zel5ngjhep7jxjhgfux"
HELLO_APP = "ysrcvre4xvqeyafearwsb2xo5uvmbqmr"


def _destination(folder: Path) -> StoreDestination:
    return StoreDestination(LocalMirrorStore(folder), {"url": folder.as_uri()})


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def test_bundles_are_added_to_a_mirror_folder(
    bundles: dict[int, Path],  # noqa: F811
    tmp_path: Path,
) -> None:
    manifest = write_manifest(
        tmp_path / "rpath", mirror=SPACK1, key_file=SPACK1_KEY, fingerprint=SPACK1_FPR
    )
    manifest.write_text(manifest.read_text().replace('"hello-app"', '"hello-rpath"'))
    rpath_bundle = tmp_path / "rpath.tar"
    export_bundle(manifest, rpath_bundle)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    import_into_mirror(rpath_bundle, _destination(mirror))
    import_into_mirror(bundles[3], _destination(mirror))
    index = read_index_v3(FileTransport(), mirror.as_uri())
    assert index[HELLO_RPATH].in_buildcache and index[HELLO_APP].in_buildcache
    before = _files(mirror)
    import_into_mirror(bundles[3], _destination(mirror))  # again: nothing changes
    assert _files(mirror) == before
    with pytest.raises(BundleError, match="is a layout-3 binary cache"):
        import_into_mirror(bundles[2], _destination(mirror))
    assert _files(mirror) == before
