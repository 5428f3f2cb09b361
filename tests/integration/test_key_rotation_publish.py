"""Rotation on the publishing side: a key added to ``[[publish]] key`` signs what the entry
published before (new sidecar signatures; tarballs and Spack's metadata untouched), so a
consumer that trusts only the new key installs from the mirror; a spec whose metadata no
longer verifies is never signed by the new key."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from support import run
from test_ed25519_trust import (  # noqa: F401  (homes is a fixture)
    consumer,
    generate_ed25519,
    homes,
    publish,
    sidecars,
)
from test_fixture_install import check_hello_works


def mirror_files(mirror: Path) -> dict[str, str]:
    """sha256 of every file in the mirror except the sidecars."""
    return {
        str(path.relative_to(mirror)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(mirror.rglob("*"))
        if path.is_file() and not path.name.endswith(".reconcile-sig")
    }


def add_key_to_publish(manifest: Path, name: str, capsys: pytest.CaptureFixture[str]) -> str:
    """Name the new key in [[publish]] key first, then make it (the usual order of work:
    ``keys generate`` accepts a manifest that already names it), and declare it."""
    text = manifest.read_text()
    text = text.replace('key = ["publisher", "site"]', f'key = ["publisher", "site", "{name}"]')
    manifest.write_text(text)
    entry = generate_ed25519(manifest, name, capsys)
    manifest.write_text(manifest.read_text() + "\n" + entry)
    return entry


@pytest.mark.parametrize("layout", [2, 3])
def test_a_key_added_to_publish_signs_what_was_published(
    tmp_path: Path,
    homes: tuple[str, Path],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    layout: int,
) -> None:
    fingerprint, public = homes
    publish(tmp_path / "publisher", fingerprint, public, layout, capsys)
    manifest = tmp_path / "publisher" / "reconcile.toml"
    mirror = tmp_path / "publisher" / "published"
    before = mirror_files(mirror)
    new_entry = add_key_to_publish(manifest, "site-2026", capsys)

    capsys.readouterr()
    assert run(manifest, "plan", "--detailed-exitcode") == 2
    shown = capsys.readouterr().out
    assert shown.count("~ resign ") == 3, shown
    assert "(adds site-2026; tarball and metadata untouched)" in shown
    assert (
        "has no signature by site-2026, which publish[0] signs with "
        "(signed now by: publisher, site)"
    ) in shown
    assert "3 to sign again" in shown

    assert run(manifest, "apply", "--yes") == 0, capsys.readouterr().err
    assert "3 signed again" in capsys.readouterr().out
    assert mirror_files(mirror) == before  # tarballs, metadata and index untouched
    found = sidecars(mirror)
    assert len(found) == 3
    for sidecar in found:
        names = [
            s["signature"].split(":")[0] for s in json.loads(sidecar.read_text())["signatures"]
        ]
        assert sorted(names) == ["site", "site-2026"]  # the old signature is kept

    # Nothing more to do; a consumer trusting only the new key installs (binaries run).
    assert run(manifest, "plan", "--detailed-exitcode") == 0, capsys.readouterr().out
    capsys.readouterr()
    only_new = consumer(tmp_path / "consumer", mirror, new_entry)
    assert run(only_new, "apply", "--yes") == 0, capsys.readouterr().err
    check_hello_works(tmp_path / "consumer" / "opt")
    records = (tmp_path / "consumer" / "opt" / ".reconcile" / "records").glob("*.json")
    assert {json.loads(r.read_text())["signer"] for r in records} == {"ed25519:site-2026"}


def test_a_spec_that_no_longer_verifies_is_not_signed_again(
    tmp_path: Path,
    homes: tuple[str, Path],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    fingerprint, public = homes
    publish(tmp_path / "publisher", fingerprint, public, 2, capsys)
    manifest = tmp_path / "publisher" / "reconcile.toml"
    mirror = tmp_path / "publisher" / "published"
    add_key_to_publish(manifest, "site-2026", capsys)
    # Someone swaps hello-app's metadata for one naming another tarball (its GnuPG signature
    # and the old key's sidecar no longer hold): the new key must not vouch for it.
    spec = next(mirror.rglob("*hello-app-3.0-*.spec.json.sig"))
    text = spec.read_text()
    checksum = json.loads(next(mirror.rglob("*hello-app-3.0-*.reconcile-sig")).read_text())[
        "statement"
    ].split(";")[2]
    spec.write_text(text.replace(checksum.removeprefix("sha256:"), "0" * 64))
    before = {p: p.read_bytes() for p in sidecars(mirror)}

    capsys.readouterr()
    assert run(manifest, "apply", "--yes") == 1
    err = capsys.readouterr().err
    assert "cannot sign hello-app@3.0/d7r6xmz in mirror 'published' again" in err
    assert "Traceback" not in err
    assert {p: p.read_bytes() for p in sidecars(mirror)} == before  # nothing signed
