"""``reconcile bundle export`` and ``reconcile bundle import``: carrying what a manifest needs
to a machine without network access."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from reconcile.bundle.export import export_bundle
from reconcile.bundle.importer import import_bundle

EXIT_OK = 0


def add_bundle_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    bundle = subparsers.add_parser(
        "bundle", help="export or import an air-gapped bundle of everything the manifest needs"
    )
    actions = bundle.add_subparsers(dest="bundle_command", required=True, metavar="ACTION")
    export = actions.add_parser(
        "export",
        help="write one tar archive with the closure, sources, keys and a manifest for them",
        description="Plan the manifest against an empty install root and write everything the "
        "plan fetches (signed spec metadata and tarballs, in the mirror's layout), the "
        "[[source]] archives and the pinned keys into OUT, with a manifest that uses them.",
    )
    export.add_argument("out", metavar="OUT.tar", type=Path, help="the archive to write")
    importing = actions.add_parser(
        "import",
        help="verify a bundle and unpack it into a new folder",
        description="Check every member of the bundle against its bundle.json, unpack it beside "
        "DEST_DIR, verify every signature with the keys its manifest pins, then move it to "
        "DEST_DIR (which must not exist or be empty).",
    )
    importing.add_argument("bundle", metavar="BUNDLE.tar", type=Path)
    importing.add_argument("dest", metavar="DEST_DIR", type=Path)


def run_bundle(args: argparse.Namespace, manifest: Path) -> int:
    if args.bundle_command == "export":
        summary = export_bundle(manifest, args.out)
        print(
            f"Wrote {summary.out}: {summary.specs} specs, {summary.sources} sources, "
            f"{summary.keys} keys."
        )
        return EXIT_OK
    if args.bundle_command == "import":
        imported = import_bundle(args.bundle, args.dest)
        check = imported.check
        print(f"Imported {imported.files} files into {imported.dest}.")
        if check.signed:
            print(
                f"Verified {check.specs} specs signed by pinned keys: "
                + ", ".join(check.fingerprints)
                + " (compare these fingerprints with the sender's)."
            )
        else:
            print(
                f"warning: the bundle declares its mirror unsigned: {check.specs} specs were "
                "checked against their checksums only, not signatures."
            )
        print(f"Next: reconcile -m {shlex.quote(str(imported.manifest))} apply")
        return EXIT_OK
    raise AssertionError(args.bundle_command)
