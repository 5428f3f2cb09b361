"""Command line: parsing, and the one place that catches errors and sets exit codes.

Exit codes: 0 success and nothing to do; 1 error; 2 success with changes pending
(``plan --detailed-exitcode``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from reconcile import __version__
from reconcile.cli import commands
from reconcile.cli.bundle_cmd import add_bundle_parser, run_bundle
from reconcile.cli.cache_cmd import add_cache_parser, run_cache
from reconcile.cli.completion import add_completion_parser, completion_script
from reconcile.cli.drift_cmd import add_drift_parser, run_drift
from reconcile.cli.failures import environment_failure, input_closed
from reconcile.cli.init_cmd import add_init_parser, run_init
from reconcile.cli.keys_cmd import add_keys_parser, run_keys
from reconcile.cli.locks_cmd import add_locks_parser, run_locks
from reconcile.cli.mirror_cmd import add_mirror_parser, run_mirror
from reconcile.cli.signals import PromptInterrupted, Terminated, terminate_like_interrupt
from reconcile.errors import ManifestError, ReconcileError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error exits 1 (2 means "changes pending" here)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 <= value <= 86_400 * 7:
        raise argparse.ArgumentTypeError(f"expected 0 to 604800 seconds, got {text!r}")
    return value


def _default_jobs() -> int:
    return min(8, os.cpu_count() or 1)


_MANIFEST_HELP = "the manifest (default: ./reconcile.toml, or $RECONCILE_MANIFEST)"
_EXIT_CODES = (
    "exit codes: 0 success, nothing to do; 1 error; 2 changes pending (with --detailed-exitcode)"
)


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every parser below ``parser``, at any depth (``cache gc``, ``keys list``, ...)."""
    found: list[argparse.ArgumentParser] = []
    pending = [parser]
    while pending:
        current = pending.pop()
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                children = list(dict.fromkeys(action.choices.values()))
                found.extend(children)
                pending.extend(children)
    return found


def _accept_manifest_anywhere(parser: argparse.ArgumentParser) -> None:
    """``reconcile plan -m FILE`` works like ``reconcile -m FILE plan``: users put options
    after the verb. SUPPRESS keeps the global value when the verb's own option is absent."""
    for sub in _subparsers(parser):
        sub.add_argument(
            "-m", "--manifest", type=Path, default=argparse.SUPPRESS, help=_MANIFEST_HELP
        )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="reconcile",
        description="Make install trees and mirrors match a declarative manifest.",
    )
    parser.add_argument("--version", action="version", version=f"reconcile {__version__}")
    parser.add_argument(
        "-m",
        "--manifest",
        type=Path,
        default=Path(os.environ.get("RECONCILE_MANIFEST", "reconcile.toml")),
        help=_MANIFEST_HELP,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = sub.add_parser(
        "validate",
        help="check the manifest and report every problem",
        description="Check the manifest without reading any mirror or the install tree: "
        "every problem is reported at once, with its file, line and column. Exits 0 when the "
        "manifest is valid, 1 otherwise.",
    )
    validate.add_argument("--json", action="store_true", help="print the result as JSON")

    plan = sub.add_parser(
        "plan",
        help="show what apply would do",
        description="Compare the manifest with the install tree and the mirrors, and print "
        "every action apply would take, with a reason for each. Nothing is changed.",
        epilog=_EXIT_CODES,
    )
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 2 when there are changes to apply (0 when there are none)",
    )
    plan.add_argument("--out", type=Path, help="save the plan for 'reconcile apply PLAN'")
    plan.add_argument("-v", "--verbose", action="store_true", help="also list the no-ops")
    plan.add_argument(
        "--check-contents",
        action="store_true",
        help="hash every source archive in the source mirrors, not only changed ones",
    )

    plan.add_argument(
        "--force",
        action="store_true",
        help="with install.prune: also remove undeclared prefixes whose files differ from "
        "their install records",
    )

    apply = sub.add_parser(
        "apply",
        help="make the install tree match the manifest",
        description="Plan afresh (or take a plan saved by 'plan --out'), show it, ask for "
        "confirmation (unless --yes), then fetch, verify, unpack, relocate and commit. Nothing "
        "is committed unless every check of the whole plan passes. Exits 0 on success, 1 on "
        "error.",
    )
    apply.add_argument("plan", nargs="?", type=Path, help="a plan saved by 'plan --out'")
    apply.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    apply.add_argument("--json", action="store_true", help="print the result as JSON")
    apply.add_argument(
        "--check-contents",
        action="store_true",
        help="hash every source archive in the source mirrors, not only changed ones",
    )
    apply.add_argument(
        "--force",
        action="store_true",
        help="with install.prune: also remove undeclared prefixes whose files differ from "
        "their install records",
    )
    apply.add_argument(
        "-j",
        "--jobs",
        type=_positive_int,
        default=_default_jobs(),
        help="fetch and stage up to N specs at once (default: the number of CPUs, at most 8)",
    )
    apply.add_argument(
        "--lock-timeout",
        type=_seconds,
        default=600.0,
        metavar="SECONDS",
        help="wait up to SECONDS for another run's lock on the install root (default 600; 0 "
        "fails at once)",
    )
    listing = sub.add_parser(
        "list",
        help="show what is installed under the install root",
        description="List the specs reconcile installed under the manifest's root, from its "
        "install records: whether the manifest declares each (or needs it as a dependency), "
        "its size, when it was installed, the mirror and key it came from. Reads only.",
    )
    listing.add_argument("--json", action="store_true", help="print the list as JSON")
    add_drift_parser(sub, _positive_int, _default_jobs())
    add_locks_parser(sub)
    add_init_parser(sub)
    add_completion_parser(sub)
    add_mirror_parser(sub)
    add_cache_parser(sub)
    add_keys_parser(sub)
    add_bundle_parser(sub)
    _accept_manifest_anywhere(parser)
    return parser


def error_document(exc: ReconcileError) -> dict[str, object]:
    """An error as data: its reference, message and hint, and located problems if any."""
    document: dict[str, object] = {
        "reference": exc.reference,
        "message": exc.message,
        "hint": exc.hint,
    }
    if isinstance(exc, ManifestError):
        document["problems"] = [
            {
                "file": p.file,
                "line": p.line,
                "column": p.column,
                "path": p.path,
                "message": p.message,
            }
            for p in exc.problems
        ]
    return document


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with terminate_like_interrupt():
        return _dispatch(args)


def _dispatch(args: argparse.Namespace) -> int:
    try:
        if args.command == "validate":
            return commands.validate(args.manifest, as_json=args.json)
        if args.command == "plan":
            return commands.plan(
                args.manifest,
                as_json=args.json,
                detailed_exitcode=args.detailed_exitcode,
                out=args.out,
                verbose=args.verbose,
                check_contents=args.check_contents,
                force=args.force,
            )
        if args.command == "apply":
            from reconcile.cli.apply_cmd import apply

            return apply(
                args.manifest,
                saved=args.plan,
                assume_yes=args.yes,
                as_json=args.json,
                jobs=args.jobs,
                check_contents=args.check_contents,
                lock_timeout=args.lock_timeout,
                force=args.force,
            )
        if args.command == "list":
            from reconcile.cli.list_cmd import run_list

            return run_list(args.manifest, as_json=args.json)
        if args.command == "drift":
            return run_drift(args, args.manifest)
        if args.command == "locks":
            return run_locks(args, args.manifest)
        if args.command == "completion":
            print(completion_script(args.shell, build_parser()), end="")
            return EXIT_OK
        if args.command == "init":
            return run_init(args, args.manifest)
        if args.command == "mirror":
            return run_mirror(args, args.manifest)
        if args.command == "cache":
            return run_cache(args, args.manifest)
        if args.command == "keys":
            return run_keys(args, args.manifest)
        if args.command == "bundle":
            return run_bundle(args, args.manifest)
        raise AssertionError(args.command)
    except ReconcileError as exc:
        return _report(exc, args)
    except PromptInterrupted:
        print("\ninterrupted at the prompt: nothing was changed", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(
            "interrupted: only what the 'installed' lines above name was committed, nothing "
            "else changed; run the command again to finish",
            file=sys.stderr,
        )
        return 130
    except Terminated:
        print(
            "terminated (SIGTERM): only what the 'installed' lines above name was committed, "
            "nothing else changed; run the command again to finish",
            file=sys.stderr,
        )
        return 128 + signal.SIGTERM
    except BrokenPipeError:
        # The reader went away (`reconcile list | head`): not an error worth a traceback.
        # Point stdout at /dev/null so that flushing it at exit cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR
    except OSError as exc:  # the environment failed (full disk, read-only root, ...)
        return _report(environment_failure(exc), args)
    except EOFError:  # Ctrl-D at a prompt
        print(file=sys.stderr)  # end the prompt's line
        return _report(input_closed(), args)


def _report(exc: ReconcileError, args: argparse.Namespace) -> int:
    print(exc.diagnostics(), file=sys.stderr)
    if getattr(args, "json", False):
        # Scripts that asked for JSON get the error as JSON too (schemas/error.schema.json).
        print(json.dumps({"error": error_document(exc)}, indent=2))
    return EXIT_ERROR
