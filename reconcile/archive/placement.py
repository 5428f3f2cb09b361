"""Where each admitted member is written in staging: in its final place when the prefix shows early.

The prefix is only *known* once ``.spack/binary_distribution`` (the last member) has been
read, but Spack's tarballs show it early: its folder's name ends with the package's DAG hash,
and it holds ``.spack``. While that guess holds, a member below the guessed prefix is written
straight below the prefix's final folder in staging, and the folders above it (a dozen levels
or more in a padded install tree) are names the rules check, never folders on disk. The
first member that does not fit the guess, or a ``binary_distribution`` that marks another
prefix, lays the tree out as in the archive (below ``staging/members``; the guessed folder
moves below its parents, created then), so the outcome never depends on the guess; only
the work does.

The rules (``MemberTable``) see every member either way; this module only maps names.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable

from reconcile.archive.names import Parts
from reconcile.archive.rules import Admission, Kind, Layout
from reconcile.archive.writer import SafeTree

MEMBERS: Parts = ("members",)  # the archive's own layout, relative to staging
ASIDE: Parts = ("guessed-prefix",)  # the guessed folder, when the real prefix lies inside it

SPACK_METADATA = ".spack"


class Layouts(enum.Enum):
    UNDECIDED = "no member has shown the prefix yet"
    GUESSED = "the guessed prefix is written in the prefix's final place"
    ARCHIVE = "every member under its archive name, below MEMBERS"


class Placement:
    """Creates admitted members in ``tree`` (rooted at staging), so that the prefix ends up
    as the folder ``prefix_name`` of staging."""

    def __init__(
        self, tree: SafeTree, *, prefix_name: str, dag_hash: str | None, guess: bool = True
    ):
        self._tree = tree
        self._prefix: Parts = (prefix_name,)
        self._dag_hash = dag_hash or None
        self.layout = Layouts.UNDECIDED
        self.guess: Parts = ()  # the guessed prefix, while the layout is GUESSED
        # Folder members seen while UNDECIDED: created once the layout is chosen.
        self._waiting: list[Admission] = []
        if not guess:
            self._lay_out_as_archive()

    def create(self, admit: Admission, data: Callable[[], Iterable[bytes | memoryview]]) -> None:
        """Create what ``admit`` says; ``data`` gives a regular file's contents, in pieces."""
        if self.layout is Layouts.UNDECIDED:
            self._decide(admit)
        elif self.layout is Layouts.GUESSED and not _fits(admit, self.guess):
            self._lay_out_as_archive()
        if self.layout is not Layouts.UNDECIDED:
            self._write(admit, data)

    def settle(self, layout: Layout) -> None:
        """Before the prefix is read or moved: keep the guess only if ``layout`` confirms
        it (the real prefix is the guessed folder or lies below it)."""
        if self.layout is Layouts.UNDECIDED or (
            self.layout is Layouts.GUESSED and not _within(layout.prefix, self.guess)
        ):
            self._lay_out_as_archive()

    def location(self, parts: Parts) -> Parts | None:
        """Where the member ``parts`` is, relative to staging; None for a parent folder of
        the guessed prefix, which exists as a name only."""
        if self.layout is Layouts.GUESSED:
            if not _within(parts, self.guess):
                return None
            return self._prefix + parts[len(self.guess) :]
        return MEMBERS + parts

    def finish(self, layout: Layout) -> None:
        """After ``settle``: give the prefix its final name and remove the folders left
        around it (``layout.skeleton``), each of which must be empty by then. Nothing to do
        when the guess was the prefix."""
        if self.layout is Layouts.GUESSED:
            rest = layout.prefix[len(self.guess) :]
            if not rest:
                return
            # The real prefix lies inside the guessed folder, which has the final name.
            self._tree.rename(self._prefix, ASIDE)
            base, depth = ASIDE, len(self.guess)
        else:
            base, depth = MEMBERS, 0
        self._tree.rename(base + layout.prefix[depth:], self._prefix)
        leftover = [base + parts[depth:] for parts in layout.skeleton if len(parts) > depth]
        self._tree.remove_empty_folders([*leftover, base])

    def _decide(self, admit: Admission) -> None:
        guess = _guess_prefix(admit, self._dag_hash)
        if guess is None and admit.kind is Kind.DIRECTORY:
            self._waiting.append(admit)
            return
        if guess is not None and all(_fits(seen, guess) for seen in (*self._waiting, admit)):
            self.layout, self.guess = Layouts.GUESSED, guess
            self._tree.make_directory(self._prefix)
            waiting, self._waiting = self._waiting, []
            for folder in waiting:
                self._write(folder, _no_data)
        else:
            self._lay_out_as_archive()

    def _lay_out_as_archive(self) -> None:
        """Give up the guess (or make none): every member goes under its archive name below
        ``MEMBERS``. The guessed folder moves below its parents, created now (they were all
        admitted as folders), exactly as if the archive's layout had been used from the start."""
        self._tree.make_directory(MEMBERS)
        if self.layout is Layouts.GUESSED:
            for depth in range(1, len(self.guess)):
                self._tree.make_directory(MEMBERS + self.guess[:depth])
            self._tree.rename(self._prefix, MEMBERS + self.guess)
        self.layout, self.guess = Layouts.ARCHIVE, ()
        waiting, self._waiting = self._waiting, []
        for folder in waiting:
            self._write(folder, _no_data)

    def _write(self, admit: Admission, data: Callable[[], Iterable[bytes | memoryview]]) -> None:
        for parent in admit.implied_parents:
            where = self._new_location(parent)
            if where is not None:
                self._tree.make_directory(where)
        if not admit.create:
            return
        where = self._new_location(admit.parts)
        if where is None:
            return
        if admit.kind is Kind.DIRECTORY:
            self._tree.make_directory(where)
        elif admit.kind is Kind.FILE:
            self._tree.write_file(where, data(), mode=admit.mode, mtime_ns=admit.mtime_ns)
        elif admit.kind is Kind.SYMLINK:
            self._tree.make_symlink(where, admit.link_target, mtime_ns=admit.mtime_ns)
        elif admit.kind is Kind.HARD_LINK:
            target = self.location(admit.hard_link_to)
            assert target is not None  # _fits() checked it for the guess
            self._tree.make_hard_link(where, target)

    def _new_location(self, parts: Parts) -> Parts | None:
        """Where to create ``parts``; None when nothing is to be created (a parent of the
        guessed prefix, or the guessed prefix itself, made when the guess was)."""
        where = self.location(parts)
        return None if where == self._prefix and self.layout is Layouts.GUESSED else where


def _guess_prefix(admit: Admission, dag_hash: str | None) -> Parts | None:
    """The prefix this member suggests: the outermost folder on its path named after the
    DAG hash, else the folder that holds a ``.spack`` folder."""
    parts = admit.parts
    # The folders the member names: its parents, and itself when it is one.
    folders = len(parts) if admit.kind is Kind.DIRECTORY else len(parts) - 1
    if dag_hash is not None:
        for depth in range(1, folders + 1):
            if parts[depth - 1].endswith(dag_hash):
                return parts[:depth]
    for depth in range(1, folders):
        if parts[depth] == SPACK_METADATA:
            return parts[:depth]
    return None


def _fits(admit: Admission, guess: Parts) -> bool:
    """Whether ``admit`` can be written with ``guess`` as the prefix: it lies below it (a
    hard link's target too), or it is a folder on the way to it (checked as a name only)."""
    parts = admit.parts
    if _within(parts, guess):
        if len(parts) == len(guess):
            return admit.kind is Kind.DIRECTORY
        if admit.kind is Kind.HARD_LINK:
            target = admit.hard_link_to
            return len(target) > len(guess) and _within(target, guess)
        return True
    return admit.kind is Kind.DIRECTORY and _within(guess, parts)


def _within(parts: Parts, folder: Parts) -> bool:
    return parts[: len(folder)] == folder


def _no_data() -> Iterable[bytes | memoryview]:
    raise AssertionError("only folder members wait for the layout")
