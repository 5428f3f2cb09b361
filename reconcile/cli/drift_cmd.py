"""``reconcile drift``: audit the install tree and what the manifest writes, read-only.

Exit codes follow ``plan --detailed-exitcode``: 0 clean, 2 drift found, 1 error.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from reconcile.atomic_write import atomic_write_bytes
from reconcile.drift.audit import audit
from reconcile.drift.render import render_junit, render_text, report_document
from reconcile.manifest.load import load_manifest

EXIT_CLEAN, EXIT_DRIFT = 0, 2


def add_drift_parser(
    subparsers: argparse._SubParsersAction[Any], jobs_type: Any, jobs: int
) -> None:
    drift = subparsers.add_parser(
        "drift",
        help="audit the install tree against what reconcile recorded (read-only)",
        description="Compare every prefix reconcile installed with its install record (files "
        "modified, missing or added, modes, owner group, link targets), and the records with "
        "the manifest (declared specs missing, installs no longer declared, signers no longer "
        "pinned), and report leftovers of interrupted runs. Reads only and takes no lock, so "
        "it never blocks an apply. Exits 0 when nothing drifted, 2 when something did, 1 on "
        "error.",
    )
    drift.add_argument(
        "--check-contents",
        action="store_true",
        help="hash every file (default: hash only files whose size or mtime changed)",
    )
    drift.add_argument("--json", action="store_true", help="print the report as JSON")
    drift.add_argument("--junit", type=Path, metavar="FILE", help="also write JUnit XML to FILE")
    drift.add_argument(
        "-j",
        "--jobs",
        type=jobs_type,
        default=jobs,
        help="check up to N prefixes at once (default: the number of CPUs, at most 8)",
    )


def run_drift(args: argparse.Namespace, manifest: Path) -> int:
    loaded = load_manifest(manifest)
    report = audit(loaded, mode="contents" if args.check_contents else "fast", jobs=args.jobs)
    if args.junit is not None:
        atomic_write_bytes(args.junit, render_junit(report))
    if args.json:
        print(json.dumps(report_document(report), indent=2))
    else:
        print(render_text(report))
    return EXIT_CLEAN if report.clean else EXIT_DRIFT
