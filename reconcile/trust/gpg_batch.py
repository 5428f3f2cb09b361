"""One gpg process for many clear-signed documents, where one per document used to run.

Starting gpg costs far more than checking one signature, and a plan opens a document per
spec from several threads at once. ``GroupRunner`` lets those threads share a process: the
first caller runs a batch of one as usual while the others queue; when it is done, one of
them runs everything queued meanwhile as a single batch (``gpg --decrypt --multifile``).

A batch only ever *accepts*: each document's share of the status stream (between its
``FILE_START`` and ``FILE_DONE``) is judged exactly as a single run's would be, and only
when gpg exited 0 and the stream splits cleanly by file. Any other outcome (a bad
signature, an unpinned key, a stream that does not split as expected) sends the document
back to the single-document path, whose judgement and message are the ones the user sees.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from reconcile.trust.gpg_status import STATUS_PREFIX

_In = TypeVar("_In")
_Out = TypeVar("_Out")

_FILE_START, _FILE_DONE = "FILE_START", "FILE_DONE"


class _Ticket(Generic[_In, _Out]):
    def __init__(self, item: _In) -> None:
        self.item = item
        self.result: _Out | None = None
        self.done = False


class GroupRunner(Generic[_In, _Out]):
    """``submit`` gives an item's result: from ``run_batch`` over the items submitted while
    the previous gpg process ran (group commit: no timer, and no waiting when nobody else
    is), or from ``run_alone`` when the item came alone or the batch left it undecided
    (None). ``run_alone`` raises what it raises; a ``run_batch`` that raises leaves every
    item of its batch to ``run_alone``."""

    def __init__(
        self,
        run_batch: Callable[[Sequence[_In]], Sequence[_Out | None]],
        run_alone: Callable[[_In], _Out],
    ) -> None:
        self._run_batch = run_batch
        self._run_alone = run_alone
        self._changed = threading.Condition()
        self._queue: list[_Ticket[_In, _Out]] = []
        self._running = False

    def submit(self, item: _In) -> _Out:
        ticket: _Ticket[_In, _Out] = _Ticket(item)
        with self._changed:
            self._queue.append(ticket)
            while not ticket.done and self._running:
                self._changed.wait()
            leader = not ticket.done
            if leader:  # nothing is running: run what is queued, this item included
                self._running = True
                batch, self._queue = self._queue, []
        if leader:
            results: Sequence[_Out | None] = [None] * len(batch)
            try:
                if len(batch) == 1:
                    return self._run_alone(item)
                results = self._batch(batch)
            finally:
                self._finish(batch, results)
        if ticket.result is not None:
            return ticket.result
        return self._run_alone(item)

    def _batch(self, batch: Sequence[_Ticket[_In, _Out]]) -> Sequence[_Out | None]:
        try:
            results = self._run_batch([t.item for t in batch])
        except Exception:  # each item is then decided alone, as before batching
            return [None] * len(batch)
        return results if len(results) == len(batch) else [None] * len(batch)

    def _finish(self, batch: Sequence[_Ticket[_In, _Out]], results: Sequence[_Out | None]) -> None:
        with self._changed:
            for waiting, result in zip(batch, results, strict=True):
                waiting.result, waiting.done = result, True
            self._running = False
            self._changed.notify_all()


def split_by_file(status_text: str, names: Sequence[str]) -> list[str] | None:
    """Each file's status lines, in the order of ``names`` (as given to gpg); None unless
    the stream is exactly one ``FILE_START name`` ... ``FILE_DONE`` section per file, in
    order, with no status line outside them."""
    sections: list[str] = []
    current: list[str] | None = None
    for line in status_text.splitlines():
        if not line.startswith(STATUS_PREFIX):
            continue
        keyword, _, rest = line[len(STATUS_PREFIX) :].partition(" ")
        if keyword == _FILE_START:
            fields = rest.split(" ", 1)
            number = len(sections)
            if current is not None or number >= len(names) or fields[-1] != names[number]:
                return None
            current = []
        elif keyword == _FILE_DONE:
            if current is None:
                return None
            sections.append("\n".join(current))
            current = None
        elif current is None:
            return None
        else:
            current.append(line)
    if current is not None or len(sections) != len(names):
        return None
    return sections
