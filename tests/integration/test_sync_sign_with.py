"""Mirror sync with ``sign_with`` naming several keys: at most one gpg key re-signs Spack's
metadata, and each ed25519 key adds its signature to the copied spec's sidecar (over the
statement of the verified spec and the tarball written), so a consumer trusting only that
key installs from the synced mirror."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import run
from test_ed25519_trust import consumer, published_v2, sidecars  # noqa: F401  (a fixture)
from test_fixture_install import check_hello_works

from reconcile.trust.ed25519 import Ed25519SecretKey


def new_ed25519_key(home: Path, name: str) -> str:
    """An ed25519 secret key in the signing home; its [[key]] entry."""
    key = Ed25519SecretKey.generate(name)
    secret = home / "ed25519" / f"{name}.secret"
    secret.write_text(key.text() + "\n")
    secret.chmod(0o600)
    return f'[[key]]\nname = "{name}"\nkind = "ed25519"\npublic_key = "{key.public_key().text()}"\n'


@pytest.mark.parametrize(
    ("layout", "sign_with"),
    [(2, '"{new}"'), (3, '["publisher", "{new}"]')],
    ids=["layout-2-one-name", "layout-3-gpg-and-ed25519"],
)
def test_sign_with_ed25519_keys_sign_the_synced_sidecars(
    tmp_path: Path,
    published_v2: tuple[Path, str, str],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    layout: int,
    sign_with: str,
) -> None:
    source, ed25519_entry, gpg_entry = published_v2
    home = source.parent.parent / "signing"
    monkeypatch.setenv("RECONCILE_SIGNING_HOME", str(home))
    monkeypatch.delenv("RECONCILE_ED25519_SECRET_KEY", raising=False)
    name = f"sync-{layout}"
    new_entry = new_ed25519_key(home, name)
    syncer = tmp_path / "syncer" / "reconcile.toml"
    syncer.parent.mkdir()
    syncer.write_text(
        f'version = 1\n\n[[mirror]]\nname = "published"\nurl = "{source}"\n\n'
        f'[[mirror]]\nname = "copy"\nurl = "copy"\nlayout = {layout}\nspecs = ["hello-app"]\n'
        f"sign_with = {sign_with.format(new=name)}\n\n"
        f"{gpg_entry}\n{ed25519_entry}\n{new_entry}"
    )
    assert run(syncer, "plan") == 0, capsys.readouterr().err
    shown = capsys.readouterr().out
    assert shown.count(f"sidecar signed by {name}") == 3, shown
    assert run(syncer, "apply", "--yes") == 0, capsys.readouterr().err
    copy = tmp_path / "syncer" / "copy"
    found = sidecars(copy)
    assert len(found) == 3
    for sidecar in found:
        signatures = json.loads(sidecar.read_text())["signatures"]
        names = sorted(s["signature"].split(":")[0] for s in signatures)
        assert names == sorted(["site", name])  # the source's signature is kept beside it

    # A consumer that trusts only the new key installs from the copy (binaries run).
    capsys.readouterr()
    only_new = consumer(tmp_path / "consumer", copy, new_entry)
    assert run(only_new, "apply", "--yes") == 0, capsys.readouterr().err
    check_hello_works(tmp_path / "consumer" / "opt")
    records = (tmp_path / "consumer" / "opt" / ".reconcile" / "records").glob("*.json")
    assert {json.loads(r.read_text())["signer"] for r in records} == {f"ed25519:{name}"}
    # ... and so does one that trusts only the gpg key: Spack's metadata is signed as before.
    only_gpg = consumer(tmp_path / "gpg-consumer", copy, gpg_entry)
    assert run(only_gpg, "apply", "--yes") == 0, capsys.readouterr().err


def test_sign_with_two_gpg_keys_is_refused(
    tmp_path: Path,
    published_v2: tuple[Path, str, str],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    source, _, gpg_entry = published_v2
    other = gpg_entry.replace('name = "publisher"', 'name = "other"')
    syncer = tmp_path / "reconcile.toml"
    syncer.write_text(
        f'version = 1\n\n[[mirror]]\nname = "published"\nurl = "{source}"\n\n'
        f'[[mirror]]\nname = "copy"\nurl = "copy"\nlayout = 2\nspecs = ["hello-app"]\n'
        f'sign_with = ["publisher", "other"]\n\n{gpg_entry}\n{other}'
    )
    capsys.readouterr()
    assert run(syncer, "plan") == 1
    err = capsys.readouterr().err
    assert "sign_with names the gpg keys publisher, other" in err
    assert "Traceback" not in err
