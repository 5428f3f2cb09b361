"""Loading ``[[key]] kind = "sigstore"`` entries: the embedded roots, a trusted_root file, and
clear refusals for a root that is missing or is not one; revocation by log time."""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path

import pytest

from reconcile.buildcache.pinned_keys import load_trusted_keys, trust_policy
from reconcile.errors import VerificationError
from reconcile.manifest.load import loads_manifest
from reconcile.manifest.model import Key, Manifest, ManifestFile
from reconcile.manifest.sigstore_fields import glob_matches
from reconcile.trust.sigstore_key import SigstoreKey, embedded_root
from tests.conftest import SHARED

ISSUER = "https://github.com/login/oauth"


def manifest_file(folder: Path, *keys: Key) -> ManifestFile:
    path = folder / "reconcile.toml"
    path.write_text("# written by the test\n")
    return ManifestFile(
        path=path,
        digest=hashlib.sha256(path.read_bytes()).hexdigest(),
        manifest=Manifest(keys=keys),
    )


def sigstore(name: str = "ci", **fields: object) -> Key:
    return Key(name=name, kind="sigstore", san="me@example.com", issuer=ISSUER, **fields)  # type: ignore[arg-type]


def read_url(url: str) -> bytes:
    raise AssertionError(f"no URL is read for a sigstore key: {url}")


def test_default_root_is_the_embedded_production_root(tmp_path: Path) -> None:
    [loaded] = load_trusted_keys(manifest_file(tmp_path, sigstore()), read_url=read_url)
    assert (loaded.scheme, loaded.identity) == ("sigstore", "sigstore:ci")
    key = SigstoreKey.from_material(loaded.material)
    assert key.trusted_root == embedded_root("production")
    assert key.san == "me@example.com" and key.issuer == ISSUER
    [staging] = load_trusted_keys(
        manifest_file(tmp_path, sigstore(instance="staging")), read_url=read_url
    )
    assert SigstoreKey.from_material(staging.material).trusted_root == embedded_root("staging")
    assert embedded_root("staging") != embedded_root("production")


def test_trusted_root_file_relative_to_the_manifest(tmp_path: Path) -> None:
    root = SHARED / "vectors" / "sigstore-conformance" / "rekor2-happy-path" / "trusted_root.json"
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "root.json").write_bytes(root.read_bytes())
    [loaded] = load_trusted_keys(
        manifest_file(tmp_path, sigstore(trusted_root="keys/root.json")), read_url=read_url
    )
    assert SigstoreKey.from_material(loaded.material).trusted_root == root.read_text()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "does not exist"),
        (b"", "is not a Sigstore trusted root"),
        (b"{}", "is not a Sigstore trusted root"),
        (b'{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=9"}', "not a"),
        (b"\xff\xfe", "trusted root not read"),
        (json.dumps({"mediaType": "x", "tlogs": 3}).encode(), "is not a Sigstore trusted root"),
    ],
)
def test_a_bad_trusted_root_is_refused_naming_the_key(
    tmp_path: Path, content: bytes | None, expected: str
) -> None:
    if content is not None:
        (tmp_path / "root.json").write_bytes(content)
    with pytest.raises(VerificationError) as refused:
        load_trusted_keys(
            manifest_file(tmp_path, sigstore(trusted_root="root.json")), read_url=read_url
        )
    assert refused.value.message.startswith("key 'ci': ")
    assert expected in refused.value.message


def test_a_root_without_transparency_log_keys_is_refused(tmp_path: Path) -> None:
    document = json.loads(embedded_root("production"))
    document["tlogs"] = []
    (tmp_path / "root.json").write_text(json.dumps(document))
    with pytest.raises(VerificationError, match="Rekor keys"):
        load_trusted_keys(
            manifest_file(tmp_path, sigstore(trusted_root="root.json")), read_url=read_url
        )


def test_revoked_after_keeps_a_sigstore_key_loaded_for_log_time_checks(tmp_path: Path) -> None:
    """GnuPG and ed25519 keys past their revoked_after verify nothing new; a sigstore key stays
    and refuses only signatures logged from then on (its verifier compares log times)."""
    moment = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    loaded = manifest_file(
        tmp_path, sigstore("old", revoked_after=moment), sigstore("gone", revoked=True)
    )
    with trust_policy(loaded, read_url=read_url) as policy:
        [kept] = policy.load()
        assert kept.name == "old"
        assert SigstoreKey.from_material(kept.material).revoked_after == moment


def test_manifest_fields_reach_the_key() -> None:
    text = """version = 1
[[key]]
name = "release"
kind = "sigstore"
identity_glob = "https://github.com/org/repo/.github/workflows/release.yml@refs/tags/*"
issuer = "https://token.actions.githubusercontent.com"
instance = "staging"
"""
    [key] = loads_manifest(text, path=Path("reconcile.toml")).manifest.keys
    assert key.identity_glob is not None and key.san is None
    assert key.instance == "staging" and key.identity == "sigstore:release"


@pytest.mark.parametrize(
    ("pattern", "identity", "matches"),
    [
        ("https://github.com/o/r/.github/workflows/release.yml@refs/tags/*",
         "https://github.com/o/r/.github/workflows/release.yml@refs/tags/v1.2", True),
        ("https://github.com/o/r/.github/workflows/release.yml@refs/tags/*",
         "https://github.com/o/r/.github/workflows/release.yml@refs/tags/a/b", False),
        ("https://github.com/o/r/.github/workflows/release.yml@refs/tags/**",
         "https://github.com/o/r/.github/workflows/release.yml@refs/tags/a/b", True),
        ("https://github.com/o/*/.github/workflows/release.yml@refs/heads/main",
         "https://github.com/o/evil/x/.github/workflows/release.yml@refs/heads/main", False),
        ("ci-*@example.com", "ci-1@example.com", True),
        ("ci-*@example.com", "ci-1@example.com.evil", False),
        ("a.b*", "aXbc", False),  # '.' is literal
        ("https://x/[ab]*", "https://x/a", False),  # brackets are literal
    ],
)  # fmt: skip
def test_identity_glob(pattern: str, identity: str, matches: bool) -> None:
    assert glob_matches(pattern, identity) is matches


def test_a_new_sigstore_signature_replaces_only_its_own_keys() -> None:
    """Bundles carry no key name: the sidecar entry's ``key`` says which one to replace."""
    from reconcile.trust.sidecar import SidecarSignature, merged, parse_sidecar, render_sidecar

    statement = b"reconcile-sig-1;" + b"a" * 32 + b";sha256:" + b"0" * 64 + b";1;"
    first = merged(
        None,
        statement,
        [
            SidecarSignature(scheme="sigstore", signature='{"a": 1}', key="ci-old"),
            SidecarSignature(scheme="sigstore", signature='{"b": 1}', key="ci-new"),
            SidecarSignature(scheme="ed25519", signature="site:AAAA"),
        ],
    )
    again = merged(
        parse_sidecar(render_sidecar(first)),
        statement,
        [SidecarSignature(scheme="sigstore", signature='{"b": 2}', key="ci-new")],
    )
    assert [(s.key, s.signature) for s in again.signatures] == [
        ("ci-old", '{"a": 1}'),
        ("", "site:AAAA"),
        ("ci-new", '{"b": 2}'),
    ]
    assert b'"key"' not in render_sidecar(merged(None, statement, [first.signatures[2]]))
