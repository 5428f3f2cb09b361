"""Install records: scanning real trees, atomic writes, strict reads, Hypothesis round trips."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import socket
import stat
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import attrs
import pytest
from conftest import GREETLIB_HASH, UNSIGNED_CACHE
from hypothesis import given, settings
from hypothesis import strategies as st

from reconcile.errors import ReconcileError
from reconcile.observe import install_tree
from reconcile.safe_fs import Folder
from reconcile.state import records
from reconcile.state.records import (
    InstallRecord,
    RecordEntry,
    read_record,
    read_records,
    record_fingerprint,
    record_path,
    records_dir,
    scan_prefix,
    write_record,
)

SHA_ZERO = "0" * 64


def make_record(dag_hash: str = "abcdefgh", **changes: Any) -> InstallRecord:
    fields: dict[str, Any] = {
        "hash": dag_hash,
        "name": "greetlib",
        "version": "2.1",
        "prefix": f"/opt/tree/greetlib-2.1-{dag_hash}",
        "spec": {"name": "greetlib", "version": "2.1", "hash": dag_hash},
        "mirror": "team",
        "mirror_url": "https://cache.example.org/spack",
        "tarball_sha256": SHA_ZERO,
        "signer": "E4A1C447981D70AB30BD8B09643A47B4E5E41176",
        "installed_at": "2025-01-31T12:00:00Z",
        "entries": (
            RecordEntry(path=".", type="dir", mode=0o755),
            RecordEntry(path="lib", type="dir", mode=0o755),
            RecordEntry(
                path="lib/libgreet2.so", type="symlink", mode=0o777, target="libgreet2.so.2"
            ),
            RecordEntry(
                path="lib/libgreet2.so.2", type="file", mode=0o755, size=3, sha256="a" * 64
            ),
        ),
    }
    fields.update(changes)
    return InstallRecord(**fields)


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in records_dir(root).iterdir() if p.name.endswith(".tmp"))


# --- scan_prefix ---------------------------------------------------------------------------------


def test_scan_records_every_file_link_and_folder_without_following_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "secret").mkdir(parents=True)
    (outside / "secret" / "key.txt").write_text("not part of the prefix\n")
    prefix = tmp_path / "prefix"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "share" / "doc").mkdir(parents=True)
    (prefix / "empty").touch()
    big = os.urandom(2 * (1 << 20) + 12345)  # spans three 1 MiB chunks
    (prefix / "share" / "big.dat").write_bytes(big)
    (prefix / "bin" / "tool").write_bytes(b"#!/bin/sh\necho tool\n")
    (prefix / "bin" / "tool").chmod(0o750)
    (prefix / "share" / "doc").chmod(0o2755)
    (prefix / "bin" / "t").symlink_to("tool")
    (prefix / "share" / "to-outside").symlink_to(outside)  # a folder: must not be descended into
    (prefix / "share" / "dangling").symlink_to("../nowhere//x/")

    entries = scan_prefix(prefix)
    by_path = {entry.path: entry for entry in entries}

    assert [e.path for e in entries] == sorted(by_path)
    assert set(by_path) == {
        ".",
        "bin",
        "bin/t",
        "bin/tool",
        "empty",
        "share",
        "share/big.dat",
        "share/dangling",
        "share/doc",
        "share/to-outside",
    }
    assert by_path["."] == RecordEntry(path=".", type="dir", mode=0o755)
    assert by_path["share/doc"].mode == 0o2755
    assert by_path["share/big.dat"].size == len(big)
    assert by_path["share/big.dat"].sha256 == hashlib.sha256(big).hexdigest()
    assert by_path["empty"].size == 0
    assert by_path["empty"].sha256 == hashlib.sha256(b"").hexdigest()
    assert by_path["bin/tool"].mode == 0o750
    assert by_path["bin/t"].type == "symlink"
    assert by_path["bin/t"].target == "tool"
    assert by_path["share/to-outside"].target == str(outside)
    assert by_path["share/dangling"].target == "../nowhere//x/"  # exactly as readlink says


def test_scan_matches_the_members_of_a_real_spack_tarball(tmp_path: Path) -> None:
    tarball = next(UNSIGNED_CACHE.rglob(f"*greetlib-2.1-{GREETLIB_HASH}.spack"))
    with tarfile.open(tarball) as archive:
        archive.extractall(tmp_path / "unpacked", filter="tar")
        members = archive.getmembers()
        contents = {
            m.name: archive.extractfile(m).read()  # type: ignore[union-attr]
            for m in members
            if m.isfile()
        }
    [prefix_member] = [m for m in members if m.name.endswith(f"greetlib-2.1-{GREETLIB_HASH}")]
    base = prefix_member.name + "/"

    entries = scan_prefix(tmp_path / "unpacked" / prefix_member.name)

    prefix_mode = prefix_member.mode
    expected: dict[str, tuple[str, int, int | None, str | None, str | None]] = {
        ".": ("dir", prefix_mode, None, None, None)
    }
    for m in members:
        if not m.name.startswith(base):
            continue
        relative = m.name[len(base) :]
        if m.isdir():
            expected[relative] = ("dir", m.mode, None, None, None)
        elif m.issym():
            expected[relative] = ("symlink", 0o777, None, None, m.linkname)
        else:
            data = contents[m.name]
            digest = hashlib.sha256(data).hexdigest()
            expected[relative] = ("file", m.mode, len(data), digest, None)
    scanned = {e.path: (e.type, e.mode, e.size, e.sha256, e.target) for e in entries}
    assert scanned == expected
    assert expected["lib/libgreet2.so"] == ("symlink", 0o777, None, None, "libgreet2.so.2")
    assert expected["lib/libgreet2.so.2"][:2] == ("file", 0o755)


def test_scan_keeps_file_names_that_are_not_utf8(tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    prefix.mkdir()
    raw_name = os.fsencode(prefix) + b"/caf\xe9"
    fd = os.open(raw_name, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"latin-1 name\n")
    os.close(fd)

    entries = scan_prefix(prefix)
    assert [e.path for e in entries] == [".", "caf\udce9"]

    root = tmp_path / "root"
    record = make_record(entries=entries)
    write_record(root, record)
    assert read_record(root, record.hash) == record


def test_scan_refuses_a_fifo_and_names_it(tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    (prefix / "run").mkdir(parents=True)
    os.mkfifo(prefix / "run" / "pipe")
    with pytest.raises(ReconcileError) as caught:
        scan_prefix(prefix)
    assert caught.value.reference == "unsupported-file-type"
    assert str(prefix / "run" / "pipe") in caught.value.message
    assert "FIFO" in caught.value.message
    assert caught.value.hint


def test_scan_refuses_a_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = tmp_path / "prefix"
    prefix.mkdir()
    monkeypatch.chdir(prefix)  # socket paths are limited to 108 bytes: bind a relative one
    with socket.socket(socket.AF_UNIX) as server:
        server.bind("daemon.sock")
        with pytest.raises(ReconcileError, match=r"daemon\.sock is a socket"):
            scan_prefix(prefix)


def test_scan_of_something_that_is_not_a_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path)
    for path in (tmp_path / "file", tmp_path / "link"):
        with pytest.raises(ReconcileError, match="is not a folder"):
            scan_prefix(path)
    with pytest.raises(ReconcileError, match=r"cannot scan .*missing"):
        scan_prefix(tmp_path / "missing")


def test_scan_of_a_few_thousand_files_is_quick(tmp_path: Path) -> None:
    import time

    prefix = tmp_path / "prefix"
    for folder in range(20):
        (prefix / f"d{folder}").mkdir(parents=True)
        for index in range(150):
            (prefix / f"d{folder}" / f"f{index}").write_bytes(b"x" * index)
    started = time.perf_counter()
    entries = scan_prefix(prefix)
    elapsed = time.perf_counter() - started
    assert len(entries) == 1 + 20 + 20 * 150
    assert elapsed < 5, f"scanning 3000 small files took {elapsed:.1f} s"


# --- writing and reading -------------------------------------------------------------------------


def test_write_then_read_round_trips_and_is_readable_json(tmp_path: Path) -> None:
    root = tmp_path / "root"
    record = make_record()
    path = write_record(root, record)

    assert path == root / ".reconcile" / "records" / "abcdefgh.json"
    assert path == record_path(root, "abcdefgh")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert leftovers(root) == []
    text = path.read_text()
    assert text.startswith('{\n "entries": [\n  {\n')  # indent 1, sorted keys
    data = json.loads(text)
    assert list(data) == sorted(data)
    assert data["record_version"] == 1
    # Entries leave out the fields their type does not have.
    assert data["entries"][0] == {"mode": 0o755, "path": ".", "type": "dir"}
    assert data["entries"][2] == {
        "mode": 0o777,
        "path": "lib/libgreet2.so",
        "target": "libgreet2.so.2",
        "type": "symlink",
    }
    assert read_records(root) == {"abcdefgh": record}
    assert read_record(root, "abcdefgh") == record
    assert read_record(root, "zzzz") is None


def test_a_second_write_replaces_the_record(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write_record(root, make_record())
    newer = make_record(installed_at="2025-02-01T00:00:00Z")
    write_record(root, newer)
    assert read_records(root) == {"abcdefgh": newer}
    assert leftovers(root) == []


def test_credentials_never_reach_the_record(tmp_path: Path) -> None:
    record = make_record(mirror_url="https://alice:s3cret@cache.example.org:8443/spack")
    assert record.mirror_url == "https://alice:***@cache.example.org:8443/spack"
    path = write_record(tmp_path, record)
    assert "s3cret" not in path.read_text()


def test_entries_are_sorted_and_unique() -> None:
    shuffled = tuple(reversed(make_record().entries))
    assert [e.path for e in make_record(entries=shuffled).entries] == [
        ".",
        "lib",
        "lib/libgreet2.so",
        "lib/libgreet2.so.2",
    ]
    twice = (*shuffled, RecordEntry(path="lib", type="dir", mode=0o700))
    with pytest.raises(ValueError, match="'lib' twice"):
        make_record(entries=twice)


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"path": "a", "type": "file", "mode": 0o644}, "files need both"),
        (
            {"path": "a", "type": "dir", "mode": 0o755, "size": 1, "sha256": SHA_ZERO},
            "belong to files",
        ),
        ({"path": "a", "type": "symlink", "mode": 0o777}, "symlinks need one"),
        ({"path": "a", "type": "file", "mode": 0o644, "size": 1, "sha256": "XYZ"}, "hex digits"),
        ({"path": "../a", "type": "dir", "mode": 0o755}, "relative POSIX path"),
        ({"path": "/a", "type": "dir", "mode": 0o755}, "relative POSIX path"),
        ({"path": "a//b", "type": "dir", "mode": 0o755}, "relative POSIX path"),
        ({"path": "", "type": "dir", "mode": 0o755}, "relative POSIX path"),
        ({"path": "a", "type": "dir", "mode": 0o17777}, "permission bits"),
        ({"path": "a", "type": "fifo", "mode": 0o644}, "must be in"),
    ],
)
def test_an_entry_refuses_inconsistent_fields(fields: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        RecordEntry(**fields)


def test_a_hash_cannot_leave_the_records_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a DAG hash"):
        record_path(tmp_path, "../../etc/passwd")
    with pytest.raises(ValueError, match="DAG hash"):
        make_record(dag_hash="../x")


def test_a_crash_before_the_rename_keeps_the_old_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    old = make_record()
    path = write_record(root, old)
    before = path.read_bytes()

    def power_cut(self: Folder, source: str, target: str) -> None:
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(Folder, "replace", power_cut)
    with pytest.raises(OSError, match="simulated crash"):
        write_record(root, make_record(installed_at="2030-01-01T00:00:00Z"))
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert leftovers(root) == []
    assert read_records(root) == {old.hash: old}


def test_a_record_that_cannot_be_serialised_touches_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    path = write_record(root, make_record())
    before = path.read_bytes()
    with pytest.raises(TypeError):
        write_record(root, make_record(spec={"not json": {1, 2}}))
    assert path.read_bytes() == before
    assert leftovers(root) == []


def test_temporary_files_of_an_interrupted_write_are_ignored(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write_record(root, make_record())
    (records_dir(root) / ".abcdefgh.x1y2.tmp").write_text('{"half": ')
    (records_dir(root) / "README").write_text("not a record")
    assert list(read_records(root)) == ["abcdefgh"]


def test_no_records_folder_means_no_records(tmp_path: Path) -> None:
    assert read_records(tmp_path / "nothing-here") == {}
    assert read_record(tmp_path / "nothing-here", "abcdefgh") is None


def write_raw(root: Path, name: str, data: Any) -> Path:
    folder = records_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def good_data() -> dict[str, Any]:
    return records.record_to_dict(make_record())


@pytest.mark.parametrize(
    ("mutate", "complaint"),
    [
        (lambda d: d.update(record_version=2), "record_version is 2, expected 1"),
        (lambda d: d.pop("tarball_sha256"), "tarball_sha256"),
        (lambda d: d.update(extra_field=1), "extra_field"),
        (lambda d: d["entries"][0].update(mode="755"), "expected int"),
        (lambda d: d["entries"][0].update(mode=True), "expected int"),
        (lambda d: d.update(name=12), "expected str"),
        (lambda d: d.update(installed_at="yesterday"), "ISO-8601"),
        (lambda d: d.update(installed_at="2025-01-31T12:00:00+02:00"), "UTC"),
        (lambda d: d.update(prefix="relative/prefix"), "absolute"),
        (lambda d: d.update(entries={"a": 1}), "entries"),
        (lambda d: d.update(spec=[1, 2]), "spec"),
        (lambda d: d.update(externals={"abcdefgh": 1}), "expected str"),
        (lambda d: d.update(signer=5), "expected str"),
        (lambda d: d.update(permissions="world"), "permissions"),
    ],
)
def test_a_record_with_bad_fields_is_reported_with_its_file(
    tmp_path: Path, mutate: Any, complaint: str
) -> None:
    data = good_data()
    mutate(data)
    path = write_raw(tmp_path, "abcdefgh.json", data)
    for read in (lambda: read_records(tmp_path), lambda: read_record(tmp_path, "abcdefgh")):
        with pytest.raises(ReconcileError) as caught:
            read()
        assert caught.value.reference == "corrupt-record"
        assert str(path) in caught.value.message
        assert complaint in caught.value.message
        assert caught.value.hint is not None and "move it aside" in caught.value.hint


def test_a_truncated_record_is_reported_with_a_hint(tmp_path: Path) -> None:
    root = tmp_path / "root"
    path = write_record(root, make_record())
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ReconcileError) as caught:
        read_records(root)
    diagnostics = caught.value.diagnostics()
    assert f"install record {path} cannot be read: not valid JSON" in diagnostics
    assert f"hint: move it aside (mv {path} {path}.corrupt)" in diagnostics


def test_a_record_filed_under_another_hash_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write_record(root, make_record())
    records_dir(root).joinpath("abcdefgh.json").rename(records_dir(root) / "zzzzzzzz.json")
    with pytest.raises(ReconcileError, match="holds the record of abcdefgh, expected zzzzzzzz"):
        read_records(root)


def test_every_corrupt_record_is_reported_at_once(tmp_path: Path) -> None:
    write_record(tmp_path, make_record())
    first = write_raw(tmp_path, "aaaa.json", "[")
    second = write_raw(tmp_path, "bbbb.json", {"record_version": 1})
    with pytest.raises(ReconcileError, match="2 install records cannot be read") as caught:
        read_records(tmp_path)
    assert str(first) in caught.value.message
    assert str(second) in caught.value.message


# --- fingerprints ---


def test_fingerprint_is_stable_and_follows_every_change(tmp_path: Path) -> None:
    record = make_record()
    assert record_fingerprint(None) == "absent"
    fingerprint = record_fingerprint(record)
    assert len(fingerprint) == 64 and int(fingerprint, 16) >= 0
    write_record(tmp_path, record)
    assert record_fingerprint(read_record(tmp_path, record.hash)) == fingerprint
    assert record_fingerprint(make_record(spec=dict(reversed(record.spec.items())))) == fingerprint
    changed_entry = (
        *record.entries[:-1],
        RecordEntry(path="lib/libgreet2.so.2", type="file", mode=0o700, size=3, sha256="a" * 64),
    )
    assert record_fingerprint(make_record(entries=changed_entry)) != fingerprint
    assert record_fingerprint(make_record(signer=None)) != fingerprint


def test_a_read_record_is_fingerprinted_from_its_bytes(tmp_path: Path) -> None:
    record = make_record()
    path = write_record(tmp_path, record)
    text = path.read_text()
    assert (
        record_fingerprint(read_record(tmp_path, record.hash))
        == hashlib.sha256(text.encode()).hexdigest()
    )
    # the same record in another layout is another file: a plan made before is stale
    path.write_text(json.dumps(json.loads(text)))
    again = read_record(tmp_path, record.hash)
    assert again == record
    assert record_fingerprint(again) != record_fingerprint(record)


def test_a_record_cannot_name_its_own_fingerprint(tmp_path: Path) -> None:
    """The digest is the reader's; a file claiming one (to look unchanged after an edit) is
    corrupt, not trusted."""
    claimed = good_data() | {"read_sha256": "b" * 64}
    write_raw(tmp_path, "abcdefgh.json", claimed)
    with pytest.raises(ReconcileError, match="read_sha256") as caught:
        read_record(tmp_path, "abcdefgh")
    assert caught.value.reference == "corrupt-record"


# --- Hypothesis: any valid record survives JSON and disk ---

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)
segments = st.text(st.characters(exclude_characters="/\x00"), min_size=1, max_size=12).filter(
    lambda s: s not in (".", "..")
)
relative_paths = st.just(".") | st.lists(segments, min_size=1, max_size=4).map("/".join)
sha256s = st.binary(max_size=16).map(lambda b: hashlib.sha256(b).hexdigest())
modes = st.integers(0, 0o7777)


@st.composite
def record_entries(draw: st.DrawFn) -> RecordEntry:
    path = draw(relative_paths)
    kind = draw(st.sampled_from(["file", "dir", "symlink"]))
    if kind == "file":
        return RecordEntry(
            path=path,
            type="file",
            mode=draw(modes),
            size=draw(st.integers(0, 2**40)),
            sha256=draw(sha256s),
        )
    if kind == "symlink":
        return RecordEntry(path=path, type="symlink", mode=0o777, target=draw(st.text(min_size=1)))
    return RecordEntry(path=path, type="dir", mode=draw(modes))


urls = st.builds(
    "{}://{}{}/{}".format,
    st.sampled_from(["https", "http", "s3", "file"]),
    st.sampled_from(["", "bob@", "bob:pw@"]),
    st.sampled_from(["cache.example.org", "localhost:8080", ""]),
    st.text(st.characters(categories=["Ll", "Nd"]), max_size=10),
)
install_records = st.builds(
    InstallRecord,
    hash=st.from_regex(r"[a-z0-9]{1,64}", fullmatch=True),
    name=st.text(),
    version=st.text(),
    prefix=st.lists(segments, max_size=4).map(lambda parts: "/" + "/".join(parts)),
    spec=st.dictionaries(st.text(), json_values, max_size=5),
    mirror=st.text(),
    mirror_url=urls,
    tarball_sha256=sha256s,
    signer=st.none() | st.from_regex(r"[0-9A-F]{40}", fullmatch=True),
    installed_at=st.datetimes(timezones=st.just(datetime.UTC)).map(records.utc_timestamp),
    reconcile_version=st.text(),
    permissions=st.none()
    | st.fixed_dictionaries(
        {
            "read": st.sampled_from(["user", "group", "world"]),
            "write": st.sampled_from(["user", "group", "world"]),
            "group": st.none() | st.text(),
            "gid": st.none() | st.integers(0, 2**32 - 1),
        }
    ),
    entries=st.lists(record_entries(), unique_by=lambda entry: entry.path, max_size=8),
)


@settings(max_examples=150, deadline=None)
@given(install_records)
def test_any_record_round_trips_through_json(record: InstallRecord) -> None:
    text = json.dumps(records.record_to_dict(record))
    again = records.record_from_dict(json.loads(text))
    assert again == record
    assert record_fingerprint(again) == record_fingerprint(record)


@settings(max_examples=40, deadline=None)
@given(install_records)
def test_any_record_round_trips_through_disk(record: InstallRecord) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write_record(root, record)
        assert read_records(root) == {record.hash: record}
        assert leftovers(root) == []


@pytest.mark.parametrize("name", ["\n", "a\n", "bin/\n", "line\nbreak"])
def test_a_name_ending_in_a_newline_is_a_valid_entry_path(tmp_path: Path, name: str) -> None:
    """A file may be named "\\n": scanned into a record, the record must load again."""
    prefix = tmp_path / "prefix"
    (prefix / "bin").mkdir(parents=True)
    (prefix / name).write_text("x")
    root = tmp_path / "root"
    record = make_record(entries=scan_prefix(prefix))
    write_record(root, record)
    assert read_records(root) == {record.hash: record}


@pytest.mark.parametrize(
    ("mutate", "complaint"),
    [
        (lambda e: e.update(mode=True), "expected int"),
        (lambda e: e.update(mode="755"), "expected int"),
        (lambda e: e.update(path=7), "expected str"),
        (lambda e: e.update(size=1.0, sha256=SHA_ZERO), "expected int"),
        (lambda e: e.update(mtime_ns=None), "expected int"),
        (lambda e: e.update(type="fifo"), "must be in"),
    ],
)
def test_entries_in_the_key_order_records_are_written_in_are_checked_as_strictly(
    tmp_path: Path, mutate: Any, complaint: str
) -> None:
    """Records on disk have sorted keys, the shape the reader checks in one comparison: a
    value of the wrong JSON type in that shape is refused all the same."""
    data = good_data()
    mutate(data["entries"][0])
    path = write_raw(tmp_path, "abcdefgh.json", json.dumps(data, sort_keys=True))
    with pytest.raises(ReconcileError, match=complaint) as caught:
        read_records(tmp_path)
    assert str(path) in caught.value.message


@settings(max_examples=100, deadline=None)
@given(st.lists(record_entries(), max_size=8))
def test_entries_unstructure_as_cattrs_unstructures_each(entries: list[RecordEntry]) -> None:
    each = [records.converter().unstructure(entry, RecordEntry) for entry in entries]
    assert records._entry_dicts(records.RecordEntries(tuple(map(records._row_of, entries)))) == each


odd_values = st.one_of(
    json_values,
    st.integers(-2, 0o10000),
    st.sampled_from([".", "..", "/a", "a//b", "a/", "a/.", "a\n", "file", "dir", "symlink"]),
    st.sampled_from(["f" * 64, "F" * 64, "f" * 63, "g" * 64]),
)


@st.composite
def entry_items(draw: st.DrawFn) -> dict[str, Any]:
    """An entry as a record holds it (keys sorted), often with one key dropped, added or
    given an odd value."""
    entry = draw(record_entries())
    item: dict[str, Any] = records.converter().unstructure(entry, RecordEntry)
    if entry.type == "file" and draw(st.booleans()):
        item["mtime_ns"] = draw(st.integers(-1, 2**62))
    if draw(st.booleans()):
        key = draw(st.sampled_from([*records._ENTRY_FIELDS, "extra"]))
        if draw(st.booleans()):
            item.pop(key, None)
        else:
            item[key] = draw(odd_values)
    return dict(sorted(item.items()))


def assert_short_way_within_long_way(items: list[dict[str, Any]]) -> bool:
    """Entries in the form reconcile writes are checked without building a RecordEntry:
    whatever that accepts, RecordEntry's own checks accept too, as the same rows. True when
    the long way accepts ``items``."""
    short = records._written_rows(items)
    try:
        long = [records._checked_row(index, item) for index, item in enumerate(items)]
    except (TypeError, ValueError):
        assert short is None, items
        return False
    assert short in (None, long), items
    return True


@settings(max_examples=400, deadline=None)
@given(entry_items())
def test_the_short_way_accepts_only_what_the_long_way_does(item: dict[str, Any]) -> None:
    assert_short_way_within_long_way([item])


@settings(max_examples=200, deadline=None)
@given(st.lists(entry_items(), max_size=6))
def test_the_short_way_accepts_only_what_the_long_way_does_for_many(
    items: list[dict[str, Any]],
) -> None:
    assert_short_way_within_long_way(items)


path_lists = st.lists(
    st.lists(
        st.sampled_from(["", ".", "..", "...", "a", "b.c", ".a", "a.", "\n"]),
        min_size=1,
        max_size=4,
    ).map("/".join),
    max_size=5,
)


@settings(max_examples=500, deadline=None)
@given(path_lists)
def test_paths_checked_all_at_once_as_one_by_one(paths: list[str]) -> None:
    """Joined by NUL, a list of paths fails the check exactly when one of them would alone
    (an empty list too: the long way then looks at each)."""
    paths = [path for path in paths if path != "."]  # the prefix itself is set aside first
    one_by_one = any(records._NOT_NORMALISED.search(path) for path in paths)
    assert records._any_not_normalised("\0".join(paths)) == (one_by_one or not paths)


BAD_VALUES: dict[str, list[Any]] = {
    "path": ["", "..", "/a", "a//b", "a/", "a/./b", "../x", "a/..", "a\x00b", "\x00/x", 1, None],
    "type": ["other", "File", 1, None, "dir", "file", "symlink"],
    "mode": [-1, 0o10000, True, "420", 1.0, None],
    "size": [-1, True, "1", 1.5, None],
    "sha256": ["F" * 64, "f" * 63, "f" * 65, "g" * 64, "f" * 64 + "\n", 1, None],
    "target": [1, None, ["a"]],
    "mtime_ns": [True, "1", 1.5, None],
    "extra": [1],
}


def test_every_bad_value_of_a_written_entry_goes_the_long_way() -> None:
    written = [
        {"mode": 0o755, "path": "lib", "type": "dir"},
        {"mode": 0o777, "path": "lib/a", "target": "b", "type": "symlink"},
        {
            "mode": 0o644,
            "mtime_ns": 1,
            "path": "lib/b",
            "sha256": "f" * 64,
            "size": 3,
            "type": "file",
        },
    ]
    refused = 0
    assert records._written_rows(written) is not None
    for number, good in enumerate(written):
        for key, values in BAD_VALUES.items():
            variants = [{k: v for k, v in good.items() if k != key}]
            variants += [dict(sorted({**good, key: value}.items())) for value in values]
            for variant in variants:  # alone, and among good entries before and after it
                accepted = assert_short_way_within_long_way([variant])
                among = [*written[:number], variant, *written[number + 1 :]]
                assert assert_short_way_within_long_way(among) == accepted
                refused += not accepted
    assert refused >= 100


@settings(max_examples=150, deadline=None)
@given(install_records)
def test_records_unstructure_as_cattrs_unstructures_them(record: InstallRecord) -> None:
    """record_to_dict writes what cattrs' converter made (and fingerprinted) before it,
    key for key and in the same order, without building that converter."""
    expected = records.converter().unstructure(record)
    assert records.record_to_dict(record) == expected
    assert list(records.record_to_dict(record)) == list(expected)
    assert json.dumps(records.record_to_dict(record)) == json.dumps(expected)


@settings(max_examples=150, deadline=None)
@given(install_records)
def test_good_records_structure_as_cattrs_structures_them(record: InstallRecord) -> None:
    """A good record is built without cattrs, into what cattrs builds from the same data."""
    data = json.loads(json.dumps(records.converter().unstructure(record)))
    plain = records._plain_record(data)
    assert plain is not None
    assert plain == records.converter().structure(data, InstallRecord)
    assert records.record_fingerprint(plain) == records.record_fingerprint(record)


def test_the_plain_record_fields_are_the_models() -> None:
    """Every field a record file holds (read_sha256 is the reader's, not the file's)."""
    names = [field.name for field in attrs.fields(InstallRecord) if field.init]
    assert [*records._RECORD_FIELDS, "entries"] == names


@pytest.mark.parametrize("count", [1, 3, 6])
def test_prefixes_compared_in_this_thread_or_in_a_pool_drift_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    """A few prefixes are stat'ed in the caller's thread, more in a pool: the same
    findings either way, the drifted prefixes and only them."""
    root = tmp_path / "root"
    hashes = [f"{'abcdefgh'[index]}bcdefgh" for index in range(count)]
    for dag_hash in hashes:
        prefix = tmp_path / "opt" / dag_hash
        (prefix / "bin").mkdir(parents=True)
        (prefix / "bin" / "tool").write_text("tool")
        (prefix / "bin" / "data").write_text("data")
        write_record(root, make_record(dag_hash, prefix=str(prefix), entries=scan_prefix(prefix)))
    (tmp_path / "opt" / hashes[0] / "bin" / "tool").write_text("changed")
    (tmp_path / "opt" / hashes[-1] / "bin" / "data").unlink()
    found, present = install_tree.observe_install_tree(root)
    assert present == set(hashes)
    by_way = []
    for in_thread in (0, 100):
        monkeypatch.setattr(install_tree, "FAST_CHECKS_IN_THREAD", in_thread)
        by_way.append(install_tree.observe_prefix_drift(found, present, mode="fast"))
    assert by_way[0] == by_way[1]
    assert {h for h, findings in by_way[0].items() if findings} == {hashes[0], hashes[-1]}
