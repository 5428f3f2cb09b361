"""Owner-tagged names, and the sweep that clears what ended runs left (issue 14, item 9)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from reconcile.apply.leftovers import clear_state_leftovers
from reconcile.safe_fs import remove_tree_at
from reconcile.state.leftovers import (
    Owner,
    is_dead_temp,
    owner_is_gone,
    owner_of,
    run_folder_name,
    temp_name,
    this_boot,
    this_host,
)


def _ended_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout)


def _name_of(pid: int, *, host: str | None = None, boot: str | None = None) -> str:
    return f".abc.json.{host or this_host()}-{boot or this_boot()}-{pid}-0123abcd.tmp"


def test_names_carry_their_owner() -> None:
    for name in (temp_name("abc"), run_folder_name()):
        owner = owner_of(name)
        assert owner == Owner(host=this_host(), boot=this_boot(), pid=os.getpid())
        assert not owner_is_gone(owner)  # this very process
    assert owner_of(".abc.k2j4h5g6.tmp") is None  # mkstemp's names say nothing


def test_which_owners_are_gone() -> None:
    ended = _ended_pid()
    assert is_dead_temp(_name_of(ended))
    assert not is_dead_temp(_name_of(os.getppid()))  # a live process
    assert is_dead_temp(
        _name_of(os.getpid(), boot="00000000" if this_boot() != "0" * 8 else "1" * 8)
    )
    # Another host's process cannot be seen from here: never judged gone.
    assert not is_dead_temp(_name_of(ended, host="otherhost"))
    # A resumable partial download is never a leftover.
    assert not is_dead_temp(_name_of(ended) + ".partial")


def test_the_state_sweep_keeps_live_and_foreign_runs(tmp_path: Path) -> None:
    staging = tmp_path / ".reconcile/staging"
    records = tmp_path / ".reconcile/records"
    ended = _ended_pid()
    dead_run = staging / f"run-{this_host()}-{this_boot()}-{ended}-0123abcd"
    live_run = staging / f"run-{this_host()}-{this_boot()}-{os.getppid()}-0123abcd"
    foreign_run = staging / f"run-otherhost-{this_boot()}-{ended}-0123abcd"
    legacy_run = staging / "run-123-abcd1234"  # an older reconcile's, under the same lock
    for folder in (dead_run, live_run, foreign_run, legacy_run):
        (folder / "spec-0/unpack").mkdir(parents=True)
    records.mkdir(parents=True)
    (records / _name_of(ended)).write_text("{")
    (records / _name_of(os.getppid())).write_text("{")
    (records / "abc.json").write_text("{}")
    removed = clear_state_leftovers(tmp_path)
    assert sorted(removed) == sorted([dead_run, legacy_run, records / _name_of(ended)])
    assert sorted(p.name for p in staging.iterdir()) == sorted([live_run.name, foreign_run.name])
    assert sorted(p.name for p in records.iterdir()) == sorted(["abc.json", _name_of(os.getppid())])


def test_removing_a_deep_tree_with_links_out_touches_nothing_outside(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("precious")
    top = tmp_path / "staging" / "run"
    folder = top
    for level in range(2000):  # deeper than Python's recursion limit
        folder = folder / "d"
        if level % 500 == 0:
            folder.mkdir(parents=True)
            (folder / "out").symlink_to(victim)
            (folder / "file").write_text("x")
    folder.mkdir(parents=True)
    (top / "d").chmod(0o500)  # a read-only folder, as an archive may make one
    parent = os.open(top.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        remove_tree_at(parent, "run")
    finally:
        os.close(parent)
    assert not top.exists()
    assert (victim / "keep").read_text() == "precious"
