"""The prefixes a package was built in, kept in its blob's cache record: apply writes them
when it stores or unpacks a tarball, so plan need not read every cached tarball again. A
record in a shared root can be forged, so it only spares the read: a forged one never gets
a spec installed that ``[install] strict_relocation`` refuses (apply checks the unpacked
``binary_distribution``), an old record without the field and a hostile one are read from
the tarball as before."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import GCC_RUNTIME_HASH, GREETLIB_HASH, HELLO_HASH
from support import run, write_manifest

import reconcile.observe.built_prefix
from reconcile.cache.layout import BLOBS, record_path
from reconcile.limits import DEFAULT_LIMITS
from reconcile.observe.built_prefix import built_prefixes

CACHE = '\n[[cache]]\nroot = "{cache}"\n'
SPECS = {HELLO_HASH: "hello-app", GREETLIB_HASH: "greetlib", GCC_RUNTIME_HASH: "gcc-runtime"}
FORGED = "/" + "f" * 300  # longer than any root below: plan then sees no growth


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache root filled by a cold apply into a short root (downloads kept, recorded)."""
    base = tmp_path_factory.mktemp("filled")
    folder = base / "cache"
    assert run(write_manifest(base, extra=CACHE.format(cache=folder)), "apply", "--yes") == 0
    return folder


@pytest.fixture
def cache(filled: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "cache"
    shutil.copytree(filled, copy)
    return copy


def _blobs(cache: Path) -> dict[str, Path]:
    """The cached tarballs by the DAG hash of the spec whose record names them."""
    found = {}
    for blob in (cache / BLOBS).glob("*/*"):
        if blob.name.endswith(".json") or blob.name.startswith("."):
            continue
        record = json.loads(record_path(blob).read_text())
        found[record["built"]["hash"]] = blob
    return found


def _genuine(blob: Path, dag_hash: str) -> dict[str, str]:
    sha256 = hashlib.sha256(blob.read_bytes()).hexdigest()
    found = built_prefixes(blob, sha256=sha256, dag_hash=dag_hash, limits=DEFAULT_LIMITS)
    assert found is not None
    return found


def _set_built(blob: Path, built: Any) -> None:
    path = record_path(blob)
    record = json.loads(path.read_text())
    if built is None:
        record.pop("built", None)
    else:
        record["built"] = built
    path.write_text(json.dumps(record))


def _root_of_length(base: Path, length: int) -> Path:
    return base / ("r" * (length - len(str(base)) - 1))


def _manifest(
    folder: Path, root: Path, cache: Path, *, specs: tuple[str, ...], strict: bool
) -> Path:
    manifest = write_manifest(folder, root=str(root), specs=specs, extra=CACHE.format(cache=cache))
    if strict:
        text = manifest.read_text().replace("specs = ", "strict_relocation = true\nspecs = ", 1)
        manifest.write_text(text)
    return manifest


def _planned_built(manifest: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    assert run(manifest, "plan", "--json") == 0
    plan = json.loads(capsys.readouterr().out)
    return {a["details"]["name"]: a["details"].get("built_prefix") for a in plan["actions"]}


@pytest.fixture
def tarball_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The DAG hashes whose cached tarball plan reads for the built prefix."""
    reads: list[str] = []
    real = reconcile.observe.built_prefix.built_prefixes

    def counting(tarball: Path, **kwargs: Any) -> dict[str, str] | None:
        reads.append(kwargs["dag_hash"])
        return real(tarball, **kwargs)

    monkeypatch.setattr(reconcile.observe.built_prefix, "built_prefixes", counting)
    return reads


def test_apply_records_where_each_cached_tarball_was_built(cache: Path) -> None:
    blobs = _blobs(cache)
    assert set(blobs) == set(SPECS)
    for dag_hash, blob in blobs.items():
        record = json.loads(record_path(blob).read_text())
        assert record["built"]["prefixes"] == _genuine(blob, dag_hash)


def test_plan_takes_the_recorded_prefixes_without_reading_the_tarballs(
    cache: Path, tmp_path: Path, tarball_reads: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _manifest(
        tmp_path / "m", tmp_path / "opt", cache, specs=("hello-app",), strict=False
    )
    built = _planned_built(manifest, capsys)
    assert tarball_reads == []
    blobs = _blobs(cache)
    assert built == {name: _genuine(blobs[h], h)[h] for h, name in SPECS.items()}


def test_a_record_without_the_field_is_read_from_the_tarball_then_completed(
    cache: Path, tmp_path: Path, tarball_reads: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    blobs = _blobs(cache)
    for blob in blobs.values():
        _set_built(blob, None)  # a record written before reconcile kept the field
    manifest = _manifest(
        tmp_path / "m", tmp_path / "opt", cache, specs=("hello-app",), strict=False
    )
    built = _planned_built(manifest, capsys)
    assert sorted(tarball_reads) == sorted(SPECS)
    assert built == {name: _genuine(blobs[h], h)[h] for h, name in SPECS.items()}
    assert run(manifest, "apply", "--yes") == 0  # a warm apply: every tarball from the cache
    capsys.readouterr()
    for dag_hash, blob in blobs.items():
        record = json.loads(record_path(blob).read_text())
        assert record["built"] == {"hash": dag_hash, "prefixes": _genuine(blob, dag_hash)}


HOSTILE: dict[str, Any] = {
    "huge-prefix": {"hash": GCC_RUNTIME_HASH, "prefixes": {GCC_RUNTIME_HASH: "/" + "x" * 70000}},
    "prefix-not-a-string": {"hash": GCC_RUNTIME_HASH, "prefixes": {GCC_RUNTIME_HASH: 12}},
    "prefixes-a-list": {"hash": GCC_RUNTIME_HASH, "prefixes": [FORGED]},
    "hash-a-number": {"hash": 7, "prefixes": {GCC_RUNTIME_HASH: FORGED}},
    "terminal-escape": {"hash": GCC_RUNTIME_HASH, "prefixes": {GCC_RUNTIME_HASH: "/a\x1b[2J"}},
    "field-a-string": "/" + "y" * 5000,
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_record_field_is_ignored_and_the_tarball_read(
    name: str,
    cache: Path,
    tmp_path: Path,
    tarball_reads: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    blob = _blobs(cache)[GCC_RUNTIME_HASH]
    _set_built(blob, HOSTILE[name])
    manifest = _manifest(
        tmp_path / "m", tmp_path / "opt", cache, specs=("gcc-runtime",), strict=False
    )
    built = _planned_built(manifest, capsys)
    assert tarball_reads == [GCC_RUNTIME_HASH]
    assert built == {"gcc-runtime": _genuine(blob, GCC_RUNTIME_HASH)[GCC_RUNTIME_HASH]}


def _forge(cache: Path) -> Path:
    """gcc-runtime's record claims it was built in a prefix longer than the new one: plan
    then sees nothing to warn about. gcc-runtime's binaries hold no string naming its
    prefix, so apply's string check (cannot-grow-string) would let it in: only the staging
    check against the tarball's binary_distribution stands between it and the install."""
    blob = _blobs(cache)[GCC_RUNTIME_HASH]
    _set_built(blob, {"hash": GCC_RUNTIME_HASH, "prefixes": {GCC_RUNTIME_HASH: FORGED}})
    return blob


def test_a_forged_record_never_installs_what_strict_relocation_refuses(
    cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blob = _forge(cache)
    root = _root_of_length(tmp_path, 200)
    manifest = _manifest(tmp_path / "m", root, cache, specs=("gcc-runtime",), strict=True)
    assert _planned_built(manifest, capsys) == {"gcc-runtime": FORGED}  # the plan was misled
    assert run(manifest, "apply", "--yes") == 1
    err = capsys.readouterr().err
    assert "error[prefix-longer-than-built]" in err
    assert f"to be {len(FORGED)} characters long" in err
    assert "verified tarball's .spack/binary_distribution says" in err
    assert "which [install] strict_relocation refuses" in err
    assert "Traceback" not in err
    assert not any(root.glob("gcc-runtime-*")), "a prefix was installed"
    genuine = _genuine(blob, GCC_RUNTIME_HASH)
    # the record tells the truth again, so the next plan refuses before any unpack
    assert json.loads(record_path(blob).read_text())["built"]["prefixes"] == genuine
    assert run(manifest, "plan") == 1
    assert "error[prefix-longer-than-built]" in capsys.readouterr().err


def test_a_forged_record_without_strict_relocation_is_warned_at_apply(
    cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _forge(cache)
    root = _root_of_length(tmp_path, 200)
    manifest = _manifest(tmp_path / "m", root, cache, specs=("gcc-runtime",), strict=False)
    assert run(manifest, "plan") == 0
    assert "warning" not in capsys.readouterr().out
    assert run(manifest, "apply", "--yes") == 0
    out = capsys.readouterr().out
    assert "warning: the plan took the prefix gcc-runtime@12.2.0/75b4t5r was built in" in out
    assert "is longer than the prefix it was built in" in out
    assert any(root.glob("gcc-runtime-*"))
