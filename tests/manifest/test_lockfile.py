"""The lock file's model: its bytes round-trip and are canonical, every value is located, and
signers keep their scheme."""

from __future__ import annotations

import base64
import json
import string
from typing import Any

import jsonschema
import pytest
from conftest import REPO
from hypothesis import given
from hypothesis import strategies as st

from reconcile.errors import LockFileError
from reconcile.manifest.json_positions import JsonPath, format_path, value_offsets
from reconcile.manifest.lockfile import (
    LockedNode,
    LockedSigner,
    LockedSource,
    LockedSpec,
    LockFile,
    dump_lock,
    lock_path,
    make_lock,
    parse_lock,
)

SCHEMA = json.loads((REPO / "schemas" / "lock.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

# cheap to draw: a few random bytes, encoded (drawing 64 characters one by one is slow)
_hashes = st.binary(min_size=20, max_size=20).map(lambda b: base64.b32encode(b).decode().lower())
_sha256 = st.binary(min_size=32, max_size=32).map(bytes.hex)
_words = st.text(string.ascii_letters + string.digits + "-_.", min_size=1, max_size=12)
_signers = st.one_of(
    st.none(),
    st.builds(
        LockedSigner,
        scheme=st.just("gpg"),
        id=st.binary(min_size=20, max_size=20).map(lambda b: b.hex().upper()),
    ),
    st.builds(LockedSigner, scheme=st.sampled_from(["ed25519", "sigstore"]), id=_words),
)


@st.composite
def locks(draw: st.DrawFn) -> LockFile:
    hashes = draw(st.lists(_hashes, min_size=1, max_size=6, unique=True))
    nodes = {
        h: LockedNode(
            name=draw(_words),
            version=draw(_words),
            hash=h,
            mirror=draw(_words),
            tarball_sha256=draw(_sha256),
            tarball_size=draw(st.integers(0, 2**40)),
            signer=draw(_signers),
        )
        for h in hashes
    }
    selectors = draw(st.lists(st.text(min_size=1, max_size=20), max_size=4, unique=True))
    specs = {}
    for selector in selectors:
        closure = draw(st.lists(st.sampled_from(hashes), min_size=1, unique=True))
        specs[selector] = LockedSpec(
            selector=selector, hash=draw(st.sampled_from(closure)), closure=tuple(sorted(closure))
        )
    sources = draw(
        st.lists(
            st.builds(
                LockedSource,
                name=_words,
                version=_words,
                mirror=_words,
                url=st.text(min_size=1, max_size=30),
                sha256=_sha256,
            ),
            max_size=3,
        )
    )
    return make_lock(specs=specs, nodes=nodes, sources=sources)


@given(locks())
def test_a_lock_round_trips_and_its_bytes_are_canonical(lock: LockFile) -> None:
    data = dump_lock(lock)
    VALIDATOR.validate(json.loads(data))
    again = parse_lock(data.decode(), source="reconcile.lock")
    assert again == lock
    assert dump_lock(again) == data
    assert data.endswith(b"\n") and not data.endswith(b"\n\n")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


def _at(document: Any, path: JsonPath) -> Any:
    for part in path:
        document = document[part]
    return document


@given(_json, st.sampled_from([None, 0, 2]), st.booleans())
def test_every_value_is_found_where_it_starts(
    document: Any, indent: int | None, ascii_only: bool
) -> None:
    text = json.dumps(document, indent=indent, ensure_ascii=ascii_only)
    offsets = value_offsets(text)
    decoder = json.JSONDecoder()
    for path, offset in offsets.items():
        value, _ = decoder.raw_decode(text, offset)
        assert value == _at(document, path), format_path(path)
    # every value has an entry: one per leaf and container
    count = 0
    pending = [document]
    while pending:
        value = pending.pop()
        count += 1
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    assert len(offsets) == count


@pytest.mark.parametrize(
    ("identity", "scheme", "key"),
    [
        (
            "E4A1C447981D70AB30BD8B09643A47B4E5E41176",
            "gpg",
            "E4A1C447981D70AB30BD8B09643A47B4E5E41176",
        ),
        ("ed25519:team-ed", "ed25519", "team-ed"),
        ("sigstore:ci", "sigstore", "ci"),
    ],
)
def test_signers_keep_their_scheme(identity: str, scheme: str, key: str) -> None:
    signer = LockedSigner.from_identity(identity)
    assert signer == LockedSigner(scheme=scheme, id=key)  # type: ignore[arg-type]
    assert signer.identity == identity
    assert LockedSigner.from_identity(None) is None


def test_the_lock_sits_beside_the_manifest(tmp_path: Any) -> None:
    assert lock_path(tmp_path / "reconcile.toml") == tmp_path / "reconcile.lock"
    assert lock_path(tmp_path / "prod.toml") == tmp_path / "prod.lock"


def test_every_problem_is_listed_in_file_order() -> None:
    text = json.dumps(
        {
            "lock_version": 1,
            "specs": {"a": {"hash": "x", "closure": ["y"]}},
            "nodes": [
                {
                    "name": "",
                    "version": "1",
                    "hash": "x",
                    "mirror": "m",
                    "tarball": {"sha256": "00", "size": -1},
                    "signer": {"scheme": "pgp", "id": "k"},
                },
                {"name": "n", "version": "1", "hash": "x", "mirror": "m", "tarball": {}},
            ],
            "sources": [{"name": "s"}],
        },
        indent=2,
    )
    with pytest.raises(LockFileError) as caught:
        parse_lock(text, source="reconcile.lock")
    found = [(p.path, p.message) for p in caught.value.problems]
    assert ("nodes[0].tarball.sha256", "expected 64 lower-case hex digits, got '00'") in found
    assert ("nodes[0].tarball.size", "expected bytes (0 or more), got -1") in found
    assert ("nodes[0].name", "expected a non-empty string") in found
    assert ("nodes[0].signer.scheme", "expected 'gpg', 'ed25519' or 'sigstore', got 'pgp'") in found
    assert ("nodes[1]", "missing key 'signer'") in found
    assert ("specs.a.closure[0]", "y is not one of the lock's nodes") in found
    assert ("specs.a.closure", "does not hold the selector's own hash x") in found
    assert ("sources[0]", "missing key 'url'") in found
    assert all(p.line > 0 and p.column > 0 for p in caught.value.problems)
    assert caught.value.reference == "invalid-lock"
