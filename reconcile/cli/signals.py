"""SIGTERM (a CI job cancelled, a batch system's time limit) stops reconcile the way Ctrl-C
does: the exception unwinds through the executor, which undoes what it had not committed,
and the command line says what state the tree is in, instead of dying silently with -15."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Terminated(BaseException):
    """The process was asked to stop (SIGTERM)."""


class PromptInterrupted(KeyboardInterrupt):
    """Ctrl-C at the confirmation prompt: nothing had started."""


def _raise_terminated(signum: int, _frame: FrameType | None) -> None:
    raise Terminated(signum)


@contextmanager
def terminate_like_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises ``Terminated`` in the main thread."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread (an embedding program): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
