"""Mirror sync carries reconcile's sidecar signatures into and out of an OCI registry
(Debian's docker-registry): a spec synced from a signed folder mirror into a registry, and
from there into a folder of either layout, installs with only an ed25519 key trusted; a
sidecar tampered with before the sync is refused at the destination, and a signed registry
whose sidecar does not verify is never copied out of."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from oci_harness import Registry, oci_registry, registry_available
from support import run
from test_ed25519_trust import (  # noqa: F401  (published_v2 is a fixture)
    HELLO_SIDECAR,
    copy_mirror,
    published_v2,
    sidecars,
)
from test_fixture_install import check_hello_works

pytestmark = pytest.mark.skipif(
    not registry_available(), reason="docker-registry is not installed (.ci/run installs it)"
)


@pytest.fixture
def registry(tmp_path: Path):  # type: ignore[no-untyped-def]
    with oci_registry(tmp=tmp_path / "registry") as server:
        yield server


def mirror(name: str, url: str | Path, *, signed: bool = True, extra: str = "") -> str:
    return f'\n[[mirror]]\nname = "{name}"\nurl = "{url}"\nsigned = {str(signed).lower()}\n{extra}'


def manifest(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True)
    path = folder / "reconcile.toml"
    path.write_text("version = 1\n" + text)
    return path


def installer(folder: Path, url: str | Path, keys: str) -> Path:
    """A consumer of ``url`` alone that declares only ``keys``."""
    return manifest(
        folder, '\n[install]\nroot = "opt"\nspecs = ["hello-app"]\n' + mirror("m", url) + keys
    )


def sidecar_tags(registry: Registry, repository: str) -> list[str]:
    answer = requests.get(f"{registry.api}{repository}/tags/list", timeout=10)
    return sorted(t for t in answer.json()["tags"] if t.endswith(".reconcile-sig"))


def signers(root: Path) -> set[str]:
    records = (root / ".reconcile" / "records").glob("*.json")
    return {json.loads(r.read_text())["signer"] for r in records}


def tamper(sidecar: Path) -> None:
    """Flip one character of the ed25519 signature in ``sidecar``."""
    document = json.loads(sidecar.read_text())
    name, encoded = document["signatures"][0]["signature"].split(":", 1)
    flipped = ("B" if encoded[0] == "A" else "A") + encoded[1:]
    document["signatures"][0]["signature"] = f"{name}:{flipped}"
    sidecar.write_text(json.dumps(document))


@pytest.mark.parametrize("layout", [2, 3])
def test_sidecars_travel_into_a_registry_and_out_of_it(
    tmp_path: Path,
    registry: Registry,
    published_v2: tuple[Path, str, str],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    layout: int,
) -> None:
    source, ed25519_entry, gpg_entry = published_v2
    url = registry.mirror_url("site/signed")

    # file:// -> oci://: the source verifies with both keys; each image gets its sidecar tag
    into = manifest(
        tmp_path / "into",
        mirror("published", source)
        + mirror("registry", url, extra='specs = ["hello-app"]\n')
        + gpg_entry
        + ed25519_entry,
    )
    assert run(into, "plan") == 0
    shown = capsys.readouterr().out
    assert shown.count("as an OCI image without GnuPG signature, sidecar copied") == 3, shown
    assert run(into, "apply", "--yes") == 0, capsys.readouterr().err
    assert "3 synced" in capsys.readouterr().out
    assert len(sidecar_tags(registry, "site/signed")) == 3
    assert run(into, "plan", "--detailed-exitcode") == 0, capsys.readouterr().out
    capsys.readouterr()

    only_ed25519 = installer(tmp_path / "from-registry", url, ed25519_entry)
    assert run(only_ed25519, "apply", "--yes") == 0, capsys.readouterr().err
    check_hello_works(tmp_path / "from-registry" / "opt")
    assert signers(tmp_path / "from-registry" / "opt") == {"ed25519:site"}

    # oci:// -> file://: the registry is read trusting only the ed25519 key
    out = manifest(
        tmp_path / "out",
        mirror("registry", url)
        + mirror("local", "local", extra=f'layout = {layout}\nspecs = ["hello-app"]\n')
        + ed25519_entry,
    )
    assert run(out, "plan") == 0
    assert capsys.readouterr().out.count("(from registry, metadata unsigned, sidecar copied)") == 3
    assert run(out, "apply", "--yes") == 0, capsys.readouterr().err
    local = tmp_path / "out" / "local"
    assert len(sidecars(local)) == 3
    assert run(out, "plan", "--detailed-exitcode") == 0, capsys.readouterr().out
    capsys.readouterr()

    from_folder = installer(tmp_path / "from-folder", local, ed25519_entry)
    assert run(from_folder, "apply", "--yes") == 0, capsys.readouterr().err
    check_hello_works(tmp_path / "from-folder" / "opt")
    assert signers(tmp_path / "from-folder" / "opt") == {"ed25519:site"}


def test_a_tampered_sidecar_is_refused_after_the_sync_and_never_copied_out(
    tmp_path: Path,
    registry: Registry,
    published_v2: tuple[Path, str, str],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    source, ed25519_entry, gpg_entry = published_v2
    # The source's hello-app sidecar is tampered with; its GnuPG signature still holds, so
    # the sync (trusting both keys) copies the spec, and the sidecar as it is.
    damaged = copy_mirror(source, tmp_path / "damaged")
    tamper(next(damaged.rglob(HELLO_SIDECAR)))
    url = registry.mirror_url("site/tampered")
    into = manifest(
        tmp_path / "into",
        mirror("published", damaged)
        + mirror("registry", url, extra='specs = ["hello-app"]\n')
        + gpg_entry
        + ed25519_entry,
    )
    assert run(into, "apply", "--yes") == 0, capsys.readouterr().err
    assert len(sidecar_tags(registry, "site/tampered")) == 3
    capsys.readouterr()

    # At the destination, a consumer trusting only the ed25519 key refuses hello-app.
    only_ed25519 = installer(tmp_path / "consumer", url, ed25519_entry)
    assert run(only_ed25519, "apply", "--yes") == 1
    err = capsys.readouterr().err
    assert "error[verification-failed]" in err and "hello-app@3.0" in err
    assert "key ed25519:site: the signature does not match the signed data" in err
    assert "Traceback" not in err
    assert not list((tmp_path / "consumer").glob("opt/hello-app-*"))

    # Out of the registry, trusting only the ed25519 key: the sync refuses before writing.
    out = manifest(
        tmp_path / "out",
        mirror("registry", url)
        + mirror("local", "local", extra='layout = 3\nspecs = ["hello-app"]\n')
        + ed25519_entry,
    )
    assert run(out, "apply", "--yes") == 1
    err = capsys.readouterr().err
    assert "error[verification-failed]" in err and "hello-app@3.0" in err
    assert "Traceback" not in err
    local = tmp_path / "out" / "local"
    assert not local.exists() or not [p for p in local.rglob("*") if p.is_file()]


def test_sign_with_signs_the_sidecars_synced_into_a_registry(
    tmp_path: Path,
    registry: Registry,
    published_v2: tuple[Path, str, str],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An ed25519 key in ``sign_with`` adds its signature to each sidecar tag (the source's
    signature kept beside it); a gpg key there is refused, OCI images carry no GnuPG
    signature."""
    from test_sync_sign_with import new_ed25519_key

    source, ed25519_entry, gpg_entry = published_v2
    home = source.parent.parent / "signing"
    monkeypatch.setenv("RECONCILE_SIGNING_HOME", str(home))
    monkeypatch.delenv("RECONCILE_ED25519_SECRET_KEY", raising=False)
    new_entry = new_ed25519_key(home, "registry-2026")
    url = registry.mirror_url("site/resigned")
    keys = gpg_entry + ed25519_entry + new_entry

    refused = manifest(
        tmp_path / "gpg",
        mirror("published", source)
        + mirror("registry", url, extra='specs = ["hello-app"]\nsign_with = "publisher"\n')
        + keys,
    )
    assert run(refused, "plan") == 1
    err = capsys.readouterr().err
    assert "remove the gpg key 'publisher' from sign_with" in err and "Traceback" not in err

    into = manifest(
        tmp_path / "into",
        mirror("published", source)
        + mirror("registry", url, extra='specs = ["hello-app"]\nsign_with = "registry-2026"\n')
        + keys,
    )
    assert run(into, "apply", "--yes") == 0, capsys.readouterr().err
    assert len(sidecar_tags(registry, "site/resigned")) == 3
    capsys.readouterr()
    for entry, signer in ((new_entry, "registry-2026"), (ed25519_entry, "site")):
        folder = tmp_path / f"consumer-{signer}"
        assert run(installer(folder, url, entry), "apply", "--yes") == 0, capsys.readouterr().err
        check_hello_works(folder / "opt")
        assert signers(folder / "opt") == {f"ed25519:{signer}"}


def test_a_key_added_later_signs_the_sidecar_tags_of_a_registry(
    tmp_path: Path,
    registry: Registry,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rotation in a registry: an ed25519 key added to ``[[publish]] key`` signs what the
    entry pushed before, merged into each sidecar tag (the old signature kept), so a consumer
    trusting only the new key installs; a second plan is clean."""
    from support import write_manifest
    from test_ed25519_trust import generate_ed25519

    home = tmp_path / "signing"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("RECONCILE_SIGNING_HOME", str(home))
    monkeypatch.delenv("RECONCILE_ED25519_SECRET_KEY", raising=False)
    url = registry.mirror_url("team/rotated")
    (tmp_path / "publisher").mkdir()
    old_entry = generate_ed25519(tmp_path / "publisher" / "reconcile.toml", "site", capsys)
    extra = mirror("registry", url) + "\n" + old_entry
    extra += '\n[[publish]]\nspecs = ["hello-app"]\nmirror = "registry"\nkey = ["site"]\n'
    publisher = write_manifest(tmp_path / "publisher", padded_length=128, extra=extra)
    assert run(publisher, "apply", "--yes") == 0, capsys.readouterr().err
    tags = {
        tag: tag_digest(registry, "team/rotated", tag)
        for tag in sidecar_tags(registry, "team/rotated")
    }
    assert len(tags) == 3

    publisher.write_text(
        publisher.read_text().replace('key = ["site"]', 'key = ["site", "site-2026"]')
    )
    new_entry = generate_ed25519(publisher, "site-2026", capsys)
    publisher.write_text(publisher.read_text() + "\n" + new_entry)
    assert run(publisher, "plan", "--detailed-exitcode") == 2
    shown = capsys.readouterr().out
    assert shown.count("(adds site-2026; tarball and metadata untouched)") == 3, shown
    assert "(signed now by: site)" in shown
    assert run(publisher, "apply", "--yes") == 0, capsys.readouterr().err
    assert "3 signed again" in capsys.readouterr().out
    moved = {tag: tag_digest(registry, "team/rotated", tag) for tag in tags}
    assert all(moved[tag] != digest for tag, digest in tags.items())  # each tag moved
    assert run(publisher, "plan", "--detailed-exitcode") == 0, capsys.readouterr().out
    capsys.readouterr()

    for entry, signer in ((new_entry, "site-2026"), (old_entry, "site")):
        folder = tmp_path / f"consumer-{signer}"
        assert run(installer(folder, url, entry), "apply", "--yes") == 0, capsys.readouterr().err
        check_hello_works(folder / "opt")
        assert signers(folder / "opt") == {f"ed25519:{signer}"}


def tag_digest(registry: Registry, repository: str, tag: str) -> str:
    answer = requests.head(
        f"{registry.api}{repository}/manifests/{tag}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        timeout=10,
    )
    return str(answer.headers["Docker-Content-Digest"])


def test_a_bundle_imported_into_a_registry_carries_its_sidecars(
    tmp_path: Path,
    registry: Registry,
    published_v2: tuple[Path, str, str],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``bundle import BUNDLE.tar oci://...``: each verified sidecar is tagged after its
    image, so the registry installs trusting only the ed25519 key."""
    source, ed25519_entry, _ = published_v2
    exporter = installer(tmp_path / "site", source, ed25519_entry)
    bundle = tmp_path / "closure.tar"
    assert run(exporter, "bundle", "export", "--out", str(bundle)) == 0, capsys.readouterr().err
    url = registry.mirror_url("site/bundled")
    assert run(exporter, "bundle", "import", str(bundle), url) == 0, capsys.readouterr().err
    assert len(sidecar_tags(registry, "site/bundled")) == 3
    capsys.readouterr()
    consumer = installer(tmp_path / "consumer", url, ed25519_entry)
    assert run(consumer, "apply", "--yes") == 0, capsys.readouterr().err
    check_hello_works(tmp_path / "consumer" / "opt")
    assert signers(tmp_path / "consumer" / "opt") == {"ed25519:site"}
