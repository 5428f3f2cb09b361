"""Run reconcile under cProfile, worker threads included.

``python -m cProfile`` sees only the main thread, but apply stages every spec in a thread
pool (even with ``--jobs 1``). This script profiles every thread and merges the results:

    python bench/_bench_cprofile.py OUT.prof -m MANIFEST apply --yes --json

(the arguments after OUT.prof are reconcile's).
"""

from __future__ import annotations

import cProfile
import pstats
import runpy
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _profile_reconcile(out: Path, arguments: list[str]) -> int:
    profiles: list[cProfile.Profile] = []
    original_run: Callable[[threading.Thread], None] = threading.Thread.run

    def profiled_run(thread: threading.Thread) -> None:
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.enable()
        try:
            original_run(thread)
        finally:
            profile.disable()

    threading.Thread.run = profiled_run  # type: ignore[method-assign,assignment]
    main = cProfile.Profile()
    sys.argv = ["reconcile", *arguments]
    code: Any = 0
    main.enable()
    try:
        runpy.run_module("reconcile", run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        code = exit_.code
    finally:
        main.disable()
    stats = pstats.Stats(main)
    for profile in profiles:
        stats.add(profile)
    stats.dump_stats(str(out))
    return code if isinstance(code, int) else 1


if __name__ == "__main__":
    raise SystemExit(_profile_reconcile(Path(sys.argv[1]), sys.argv[2:]))
