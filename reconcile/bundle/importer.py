"""``reconcile bundle import``: check the archive, unpack it beside the destination, verify
every signature and checksum with the bundle's pinned keys, and only then move it into place."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import attrs

from reconcile.bundle.archive import scan_archive, unpack_archive
from reconcile.bundle.errors import BundleError
from reconcile.bundle.verify import MANIFEST_NAME, BundleCheck, verify_bundle_tree
from reconcile.reprs import fields_repr


@attrs.frozen(kw_only=True)
class ImportSummary:
    __repr__ = fields_repr

    dest: Path
    manifest: Path
    files: int
    check: BundleCheck


def check_destination(dest: Path) -> None:
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise BundleError(
            f"{dest} exists and is not a folder", hint="choose a new folder to import into"
        )
    if dest.is_dir() and any(dest.iterdir()):
        raise BundleError(
            f"{dest} is not empty; a bundle is imported into a new or empty folder",
            hint="choose a new folder, or remove this one first",
        )


def import_bundle(bundle: Path, dest: Path) -> ImportSummary:
    dest = dest.absolute()
    check_destination(dest)
    listed = scan_archive(bundle)  # nothing is written before every member is checked
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.import-", dir=dest.parent))
    try:
        unpack_archive(bundle, staging, listed)
        check = verify_bundle_tree(staging)
        check_destination(dest)
        staging.chmod(0o755)
        # renaming a folder onto an empty one replaces it; a non-empty one makes this fail
        staging.rename(dest)
    except OSError as exc:
        raise BundleError(
            f"cannot move the verified bundle into {dest}: {exc.strerror}",
            hint="check that the folder is writable and still empty",
        ) from exc
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return ImportSummary(dest=dest, manifest=dest / MANIFEST_NAME, files=len(listed), check=check)
