"""``reconcile bundle export`` and ``reconcile bundle import``: carrying what a manifest needs
to a machine without network access."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from reconcile.bundle.export import export_bundle
from reconcile.bundle.importer import import_bundle
from reconcile.bundle.into_mirror import destination_for, import_into_mirror
from reconcile.bundle.verify import BundleCheck
from reconcile.errors import ReconcileError
from reconcile.transport.registry import MirrorEndpoint, TransportPool

EXIT_OK = 0


def run_bundle(args: argparse.Namespace, manifest: Path) -> int:
    if args.bundle_command == "export":
        summary = export_bundle(manifest, _export_target(args))
        if args.json:
            _print_json(
                {
                    "out": str(summary.out),
                    "specs": summary.specs,
                    "sources": summary.sources,
                    "keys": summary.keys,
                }
            )
            return EXIT_OK
        print(
            f"Wrote {summary.out}: {summary.specs} specs, {summary.sources} sources, "
            f"{summary.keys} keys."
        )
        return EXIT_OK
    if args.bundle_command == "import":
        if "://" in args.dest:
            return _import_into_mirror(args)
        if args.out is not None or args.endpoint_url is not None or args.profile is not None:
            raise ReconcileError(
                "bundle import: --out, --endpoint-url and --profile go with a mirror URL, "
                f"not with the folder {args.dest}",
                hint="a folder import writes the manifest into the folder itself",
                reference="usage",
            )
        imported = import_bundle(args.bundle, Path(args.dest))
        check = imported.check
        if args.json:
            _print_json(
                {
                    "dest": str(imported.dest),
                    "files": imported.files,
                    "manifest": str(imported.manifest),
                    "signed": check.signed,
                    "specs": check.specs,
                    "fingerprints": list(check.fingerprints),
                }
            )
            return EXIT_OK
        print(f"Imported {imported.files} files into {imported.dest}.")
        _print_check(check)
        print(f"Next: reconcile -m {shlex.quote(str(imported.manifest))} apply")
        return EXIT_OK
    raise AssertionError(args.bundle_command)


def _import_into_mirror(args: argparse.Namespace) -> int:
    endpoint = MirrorEndpoint(
        name="destination", url=args.dest, endpoint_url=args.endpoint_url, profile=args.profile
    )
    with TransportPool([endpoint]) as pool:
        destination = destination_for(
            pool, args.dest, endpoint_url=args.endpoint_url, profile=args.profile
        )
        imported = import_into_mirror(args.bundle, destination, manifest_out=args.out)
    check = imported.check
    if args.json:
        _print_json(
            {
                "dest": imported.destination,
                "files": imported.files,
                "manifest": str(imported.manifest) if imported.manifest else None,
                "signed": check.signed,
                "specs": check.specs,
                "fingerprints": list(check.fingerprints),
            }
        )
        return EXIT_OK
    print(
        f"Imported {check.specs} specs ({imported.files} files) into {imported.destination}, "
        "and added them to its index."
    )
    _print_check(check)
    if imported.manifest is not None:
        print(f"Next: reconcile -m {shlex.quote(str(imported.manifest))} apply")
    return EXIT_OK


def _export_target(args: argparse.Namespace) -> Path:
    """``--out FILE``, or the old positional ``OUT.tar`` (with a warning)."""
    if args.out is not None and args.out_positional is not None:
        raise ReconcileError(
            "bundle export got both --out and a positional archive name: expected one",
            hint="pass only --out FILE",
            reference="usage",
        )
    if args.out_positional is not None:
        print("warning: 'bundle export OUT.tar' is deprecated; use --out FILE", file=sys.stderr)
        return Path(args.out_positional)
    if args.out is None:
        raise ReconcileError(
            "bundle export needs --out FILE: the archive to write",
            hint="for example: reconcile bundle export --out site.tar",
            reference="usage",
        )
    return Path(args.out)


def _print_check(check: BundleCheck) -> None:
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


def _print_json(document: dict[str, Any]) -> None:
    print(json.dumps(document, indent=1))
