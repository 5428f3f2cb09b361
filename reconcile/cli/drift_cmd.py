"""``reconcile drift``: audit the install tree and what the manifest writes, read-only.

Exit codes follow ``plan --detailed-exitcode``: 0 clean, 2 drift found, 1 error.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from reconcile.atomic_write import atomic_write_bytes
from reconcile.drift.audit import audit
from reconcile.drift.render import render_junit, render_text, report_document
from reconcile.manifest.load import load_manifest

EXIT_CLEAN, EXIT_DRIFT = 0, 2


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
