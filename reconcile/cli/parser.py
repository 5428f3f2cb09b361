"""The command line's parser: every verb, sub-verb and option, and nothing they run.

Kept apart from the verbs' implementations so that building it (for ``--version``, usage
errors, ``completion``) imports argparse and little else; main.py imports a verb's code only
once the parser has chosen that verb.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, NoReturn, TypeAlias

from reconcile import __version__
from reconcile.cli.completion import add_completion_parser
from reconcile.cli.verb_parsers import (
    add_bundle_parser,
    add_cache_parser,
    add_drift_parser,
    add_init_parser,
    add_keys_parser,
    add_lock_parser,
    add_locks_parser,
    add_mirror_parser,
    add_views_parsers,
)

Subparsers: TypeAlias = "argparse._SubParsersAction[Any]"

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error exits 1 (2 means "changes pending" here)."""

    # the last usage error, for ``main`` to repeat as JSON when ``--json`` was asked for
    usage_error: ClassVar[tuple[str, str] | None] = None

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        _Parser.usage_error = (f"{self.prog}: error: {message}", f"see '{self.prog} --help'")
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def usage_error_json(argv: Sequence[str]) -> str | None:
    """The usage error just reported, as the JSON error ``--json`` promises (or None)."""
    if "--json" not in argv or _Parser.usage_error is None:
        return None
    message, hint = _Parser.usage_error
    error = {"reference": "usage", "message": message, "hint": hint}
    return json.dumps({"error": error}, indent=2)


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


_LOCKED_HELP = (
    "resolve every selector to the hash the lock file pins and fail, naming each selector, "
    "where it does not (for CI); without it a selector the lock no longer satisfies is "
    "resolved anew, with a note"
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


def _add_validate(sub: Subparsers) -> None:
    validate = sub.add_parser(
        "validate",
        help="check the manifest and report every problem",
        description="Check the manifest without reading any mirror or the install tree: "
        "every problem is reported at once, with its file, line and column. Exits 0 when the "
        "manifest is valid, 1 otherwise.",
    )
    validate.add_argument("--json", action="store_true", help="print the result as JSON")


def _add_plan(sub: Subparsers) -> None:
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
    plan.add_argument("--locked", action="store_true", help=_LOCKED_HELP)
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


def _add_apply(sub: Subparsers) -> None:
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
    apply.add_argument("--locked", action="store_true", help=_LOCKED_HELP)
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


def _add_list(sub: Subparsers) -> None:
    listing = sub.add_parser(
        "list",
        help="show what is installed under the install root",
        description="List the specs reconcile installed under the manifest's root, from its "
        "install records: whether the manifest declares each (or needs it as a dependency), "
        "its size, when it was installed, the mirror and key it came from. Reads only.",
    )
    listing.add_argument("--json", action="store_true", help="print the list as JSON")


def _add_drift(sub: Subparsers) -> None:
    add_drift_parser(sub, _positive_int, _default_jobs())


def _add_views(sub: Subparsers) -> None:
    add_views_parsers(sub, _positive_int)


# Each top-level verb (or group of verbs) with what adds its parser, in the order of --help.
VERBS: tuple[tuple[tuple[str, ...], Callable[[Subparsers], None]], ...] = (
    (("validate",), _add_validate),
    (("plan",), _add_plan),
    (("apply",), _add_apply),
    (("list",), _add_list),
    (("lock",), add_lock_parser),
    (("drift",), _add_drift),
    (("locks",), add_locks_parser),
    (("init",), add_init_parser),
    (("completion",), add_completion_parser),
    (("mirror",), add_mirror_parser),
    (("cache",), add_cache_parser),
    (("keys",), add_keys_parser),
    (("bundle",), add_bundle_parser),
    (("generations", "rollback", "env"), _add_views),
)


def named_verb(argv: Sequence[str]) -> str | None:
    """The verb ``argv`` names (its first word that is neither an option nor the manifest
    after ``-m``), if it is one; else None."""
    words = iter(argv)
    for word in words:
        if word in ("-m", "--manifest"):
            next(words, None)
        elif not word.startswith("-"):
            return word if any(word in names for names, _ in VERBS) else None
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command line's parser. Given the ``argv`` it will parse, and when that names a
    verb, with that verb's parser only: it parses those words exactly as the whole parser
    does (tests hold the two to it), and building every verb's parser was a tenth of a
    no-op plan's start-up. Without (``--help``, a word that is no verb): every verb."""
    verb = named_verb(argv) if argv is not None else None
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
    for names, add in VERBS:
        if verb is None or verb in names:
            add(sub)
    _accept_manifest_anywhere(parser)
    return parser
