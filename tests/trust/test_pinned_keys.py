"""load_pinned_keys: key files next to the manifest, keys published on mirrors, and keys that
are not the ones the manifest pins."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FIXTURE_FPR, FIXTURE_KEY
from throwaway_gpg import Signer, make_signer

from reconcile.buildcache.pinned_keys import load_pinned_keys
from reconcile.errors import NotFoundError, VerificationError
from reconcile.manifest.model import Key, Manifest, ManifestFile, Mirror
from reconcile.transport.registry import transport_for
from reconcile.trust.gnupg import isolated_home
from reconcile.trust.verify import key_fingerprints


@pytest.fixture(scope="module")
def stranger() -> Iterator[Signer]:
    with isolated_home() as home:
        yield make_signer(home, "Stranger <stranger@example.invalid>")


def read_url(url: str) -> bytes:
    return transport_for(url).read_bytes(url)


def manifest_file(folder: Path, *keys: Key, mirrors: tuple[Mirror, ...] = ()) -> ManifestFile:
    path = folder / "reconcile.toml"
    path.write_text("# written by the test\n")
    return ManifestFile(
        path=path,
        digest=hashlib.sha256(path.read_bytes()).hexdigest(),
        manifest=Manifest(mirrors=mirrors, keys=keys),
    )


def fixture_key_entry(**where: str) -> Key:
    return Key(name="team-signing", fingerprint=FIXTURE_FPR, **where)


def test_a_key_file_relative_to_the_manifest_is_loaded(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    shutil.copy(FIXTURE_KEY, tmp_path / "keys" / "team.pub")
    loaded = load_pinned_keys(
        manifest_file(tmp_path, fixture_key_entry(file="keys/team.pub")), read_url=read_url
    )
    assert loaded == {FIXTURE_FPR: FIXTURE_KEY.read_bytes()}


def test_a_key_file_with_another_fingerprint_is_refused(tmp_path: Path, stranger: Signer) -> None:
    (tmp_path / "team.pub").write_bytes(stranger.public_key())
    with pytest.raises(VerificationError) as caught:
        load_pinned_keys(
            manifest_file(tmp_path, fixture_key_entry(file="team.pub")), read_url=read_url
        )
    message = caught.value.message
    assert "key 'team-signing'" in message
    assert str(tmp_path / "team.pub") in message
    assert FIXTURE_FPR in message and stranger.fingerprint in message
    assert caught.value.hint


def test_a_key_file_with_several_keys_must_hold_the_pinned_one(
    tmp_path: Path, stranger: Signer
) -> None:
    (tmp_path / "both.pub").write_bytes(stranger.public_key() + FIXTURE_KEY.read_bytes())
    loaded = load_pinned_keys(
        manifest_file(tmp_path, fixture_key_entry(file="both.pub")), read_url=read_url
    )
    assert list(loaded) == [FIXTURE_FPR]
    assert set(key_fingerprints(loaded[FIXTURE_FPR])) == {FIXTURE_FPR, stranger.fingerprint}

    other = make_signer(stranger.home, "Another <another@example.invalid>")
    (tmp_path / "neither.pub").write_bytes(stranger.public_key() + other.public_key())
    with pytest.raises(VerificationError) as caught:
        load_pinned_keys(
            manifest_file(tmp_path, fixture_key_entry(file="neither.pub")), read_url=read_url
        )
    assert stranger.fingerprint in caught.value.message
    assert other.fingerprint in caught.value.message


def test_a_file_that_is_not_a_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "team.pub").write_text("this is not a key\n")
    with pytest.raises(VerificationError, match="no OpenPGP public key"):
        load_pinned_keys(
            manifest_file(tmp_path, fixture_key_entry(file="team.pub")), read_url=read_url
        )


def test_a_missing_key_file_names_its_path(tmp_path: Path) -> None:
    with pytest.raises(VerificationError) as caught:
        load_pinned_keys(
            manifest_file(tmp_path, fixture_key_entry(file="keys/absent.pub")), read_url=read_url
        )
    assert str(tmp_path / "keys" / "absent.pub") in caught.value.message
    assert caught.value.reference == "key-file-missing"
    assert "gpg --armor --export" in (caught.value.hint or "")


def test_a_key_published_on_a_mirror_is_loaded(signed_cache_copy: Path) -> None:
    mirror = Mirror(name="team", url="mirror")
    loaded = load_pinned_keys(
        manifest_file(
            signed_cache_copy.parent, fixture_key_entry(source="mirror:team"), mirrors=(mirror,)
        ),
        read_url=read_url,
    )
    assert loaded == {FIXTURE_FPR: FIXTURE_KEY.read_bytes()}


def test_a_tampered_mirror_key_is_refused(signed_cache_copy: Path, stranger: Signer) -> None:
    published = signed_cache_copy / "build_cache" / "_pgp" / f"{FIXTURE_FPR}.pub"
    published.write_bytes(stranger.public_key())  # another key under the pinned name
    mirror = Mirror(name="team", url=signed_cache_copy.as_uri())
    with pytest.raises(VerificationError) as caught:
        load_pinned_keys(
            manifest_file(
                signed_cache_copy.parent,
                fixture_key_entry(source="mirror:team"),
                mirrors=(mirror,),
            ),
            read_url=read_url,
        )
    message = caught.value.message
    assert "key 'team-signing'" in message and "mirror 'team'" in message
    assert f"_pgp/{FIXTURE_FPR}.pub" in message
    assert FIXTURE_FPR in message and stranger.fingerprint in message


def test_a_mirror_that_does_not_publish_the_key(tmp_path: Path, stranger: Signer) -> None:
    mirror = Mirror(name="team", url=str(tmp_path))
    entry = Key(name="stranger", fingerprint=stranger.fingerprint, source="mirror:team")
    with pytest.raises(NotFoundError) as caught:
        load_pinned_keys(manifest_file(tmp_path, entry, mirrors=(mirror,)), read_url=read_url)
    assert stranger.fingerprint in caught.value.message
    assert "mirror 'team'" in caught.value.message


def test_a_source_naming_an_unknown_mirror(tmp_path: Path) -> None:
    with pytest.raises(VerificationError, match="mirror 'nowhere'"):
        load_pinned_keys(
            manifest_file(tmp_path, fixture_key_entry(source="mirror:nowhere")),
            read_url=read_url,
        )
