"""Command line: parsing, and the one place that catches errors and sets exit codes.

Exit codes: 0 success and nothing to do; 1 error; 2 success with changes pending
(``plan --detailed-exitcode``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING

# Only the parser is imported up front: `--version`, `--help` and usage errors stay fast, and
# each verb imports its own code below, once chosen (tests/structure/test_startup_imports.py).
from reconcile.cli.parser import EXIT_ERROR, EXIT_OK, build_parser, usage_error_json

if TYPE_CHECKING:
    from reconcile.errors import ReconcileError

__all__ = ["build_parser", "main"]


def error_document(exc: ReconcileError) -> dict[str, object]:
    """An error as data: its reference, message and hint, and located problems if any."""
    from reconcile.errors import ManifestError

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
    # Run as a program (no argv given: ``python -m reconcile``, the ``reconcile`` script), the
    # process is reconcile's. Its start-up creates some 30,000 objects that live as long as
    # it does (modules, classes, functions) and no garbage: the collector would re-examine
    # them over and over while they are imported, and afterwards at every full collection.
    # So it waits until the verb's code is imported, then sets all that aside (gc.freeze).
    # Called with argv (tests, other programs), the caller's collector is left alone.
    own_process = argv is None
    if own_process:
        gc.disable()
    try:
        return _main(sys.argv[1:] if argv is None else argv, own_process=own_process)
    finally:
        if own_process:
            gc.enable()


def _main(argv: Sequence[str], *, own_process: bool) -> int:
    words = list(argv)
    try:
        args = build_parser(words).parse_args(words)
    except SystemExit as exc:
        document = usage_error_json(words) if exc.code == EXIT_ERROR else None
        if document is not None:  # a script asked for JSON: it gets the usage error as JSON
            print(document)
        raise
    # Loaded before SIGTERM is turned into an exception: one arriving while they import
    # would otherwise end in a traceback instead of being caught by _dispatch.
    import reconcile.cli.failures
    import reconcile.errors  # noqa: F401
    from reconcile.cli.signals import terminate_like_interrupt

    with terminate_like_interrupt():
        return _dispatch(args, own_process=own_process)


def _dispatch(args: argparse.Namespace, *, own_process: bool) -> int:
    from reconcile.cli.failures import environment_failure, input_closed, locale_failure
    from reconcile.cli.signals import PromptInterrupted, Terminated
    from reconcile.errors import ReconcileError

    try:
        run = _command(args)
        if own_process:
            # The verb's code is imported: what start-up made lives as long as the process.
            gc.freeze()
            gc.enable()
        return run()
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
    except UnicodeEncodeError as exc:  # a strict ASCII locale and a non-ASCII path or text
        return _report(locale_failure(exc), args)
    except EOFError:  # Ctrl-D at a prompt
        print(file=sys.stderr)  # end the prompt's line
        return _report(input_closed(), args)


def _command(args: argparse.Namespace) -> Callable[[], int]:
    """The chosen verb, its code imported, ready to run."""
    if args.command == "validate":
        from reconcile.cli import commands

        return partial(commands.validate, args.manifest, as_json=args.json)
    if args.command == "plan":
        from reconcile.cli import commands

        return partial(
            commands.plan,
            args.manifest,
            as_json=args.json,
            detailed_exitcode=args.detailed_exitcode,
            out=args.out,
            verbose=args.verbose,
            check_contents=args.check_contents,
            force=args.force,
            locked=args.locked,
        )
    if args.command == "lock":
        from reconcile.cli.lockfile_cmd import run_lock

        return partial(run_lock, args, args.manifest)
    if args.command == "apply":
        from reconcile.cli.apply_cmd import apply

        return partial(
            apply,
            args.manifest,
            saved=args.plan,
            assume_yes=args.yes,
            as_json=args.json,
            jobs=args.jobs,
            check_contents=args.check_contents,
            lock_timeout=args.lock_timeout,
            force=args.force,
            locked=args.locked,
        )
    if args.command == "list":
        from reconcile.cli.list_cmd import run_list

        return partial(run_list, args.manifest, as_json=args.json)
    if args.command == "drift":
        from reconcile.cli.drift_cmd import run_drift

        return partial(run_drift, args, args.manifest)
    if args.command == "locks":
        from reconcile.cli.locks_cmd import run_locks

        return partial(run_locks, args, args.manifest)
    if args.command == "completion":
        from reconcile.cli.completion import completion_script

        def completion() -> int:
            print(completion_script(args.shell, build_parser()), end="")
            return EXIT_OK

        return completion
    if args.command == "init":
        from reconcile.cli.init_cmd import run_init

        return partial(run_init, args, args.manifest)
    if args.command == "mirror":
        from reconcile.cli.mirror_cmd import run_mirror

        return partial(run_mirror, args, args.manifest)
    if args.command == "cache":
        from reconcile.cli.cache_cmd import run_cache

        return partial(run_cache, args, args.manifest)
    if args.command == "keys":
        from reconcile.cli.keys_cmd import run_keys

        return partial(run_keys, args, args.manifest)
    if args.command == "bundle":
        from reconcile.cli.bundle_cmd import run_bundle

        return partial(run_bundle, args, args.manifest)
    if args.command in ("generations", "rollback", "env"):
        from reconcile.cli import views_cmd

        verbs = {
            "generations": views_cmd.run_generations,
            "rollback": views_cmd.run_rollback,
            "env": views_cmd.run_env,
        }
        return partial(verbs[args.command], args, args.manifest)
    raise AssertionError(args.command)


def _report(exc: ReconcileError, args: argparse.Namespace) -> int:
    print(exc.diagnostics(), file=sys.stderr)
    if getattr(args, "json", False):
        # Scripts that asked for JSON get the error as JSON too (schemas/error.schema.json).
        print(json.dumps({"error": error_document(exc)}, indent=2))
    return EXIT_ERROR
