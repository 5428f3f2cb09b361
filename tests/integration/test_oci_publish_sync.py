"""Publishing installed prefixes into an OCI registry, and syncing into and out of one, against
Debian's docker-registry: images in Spack's OCI format that reconcile (and Spack) install from,
blobs uploaded once, cross-repository mounts, and the index tag moved last."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from conftest import FIXTURE_FPR, FIXTURE_KEY, SIGNED_CACHE
from oci_harness import Registry, oci_registry, registry_available
from support import run, write_manifest
from test_fixture_install import check_hello_works

pytestmark = pytest.mark.skipif(
    not registry_available(), reason="docker-registry is not installed (.ci/run installs it)"
)

KEY = (
    f'[[key]]\nname = "upstream"\nkind = "gpg"\nfingerprint = "{FIXTURE_FPR}"\n'
    f'file = "{FIXTURE_KEY}"\n'
)


def _mirror(name: str, url: str | Path, *, signed: bool, extra: str = "") -> str:
    return f'\n[[mirror]]\nname = "{name}"\nurl = "{url}"\nsigned = {str(signed).lower()}\n{extra}'


def _consume(folder: Path, url: str) -> None:
    """A fresh install root filled from ``url`` alone, and the programs run."""
    manifest = write_manifest(folder, mirror=url, signed=False, key_file=None)
    assert run(manifest, "apply", "--yes") == 0
    check_hello_works(folder / "opt")


def _tags(registry: Registry, repository: str) -> list[str]:
    answer = requests.get(f"{registry.api}{repository}/tags/list", timeout=10)
    return sorted(answer.json()["tags"])


def _blob_puts(registry: Registry, repository: str) -> list[str]:
    """The digests of the blobs uploaded (PUT) into ``repository``, one per upload."""
    prefix = f"/v2/{repository}/blobs/uploads/"
    return [
        path.split("digest=", 1)[1].replace("%3A", ":")
        for method, path, status in registry.requests()
        if method == "PUT" and path.startswith(prefix) and status == 201
    ]


def _layers(registry: Registry, repository: str) -> set[str]:
    """The tarball digests of the repository's spec images."""
    base = f"{registry.api}{repository}"
    found = set()
    for tag in _tags(registry, repository):
        if tag != "index.spack":
            manifest = requests.get(
                f"{base}/manifests/{tag}",
                headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
                timeout=10,
            ).json()
            found.update(layer["digest"] for layer in manifest["layers"])
    return found


def _index_hashes(registry: Registry, repository: str) -> dict[str, bool]:
    base = f"{registry.api}{repository}"
    manifest = requests.get(
        f"{base}/manifests/index.spack",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        timeout=10,
    ).json()
    blob = requests.get(f"{base}/blobs/{manifest['layers'][0]['digest']}", timeout=10).json()
    assert blob["database"]["version"] == "8"
    return {h: r["in_buildcache"] for h, r in blob["database"]["installs"].items()}


@pytest.fixture
def registry(tmp_path: Path):  # type: ignore[no-untyped-def]
    with oci_registry(tmp=tmp_path / "registry") as server:
        yield server


def test_publish_into_a_registry_then_install_from_it(
    tmp_path: Path, registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    url = registry.mirror_url("team/published")
    extra = _mirror("registry", url, signed=False)
    extra += '\n[[publish]]\nspecs = ["hello-app"]\nmirror = "registry"\n'
    manifest = write_manifest(tmp_path / "publisher", extra=extra)
    assert run(manifest, "plan") == 0
    out = capsys.readouterr().out
    assert out.count("(Spack's OCI format, unsigned)") == 3
    assert "mirror:registry: empty: apply creates it in Spack's OCI format" in out
    assert run(manifest, "apply", "--yes") == 0
    tags = _tags(registry, "team/published")
    assert "index.spack" in tags
    assert sum(t.startswith(("hello-app-3.0-", "greetlib-2.1-", "gcc-runtime-")) for t in tags) == 3
    index = _index_hashes(registry, "team/published")
    assert sum(index.values()) == 3  # the three packages; externals listed, not in the cache
    uploads = _blob_puts(registry, "team/published")
    assert len(uploads) == len(set(uploads))  # every blob uploaded once

    # Idempotent: the next plan has nothing to publish, and nothing more is uploaded.
    assert run(manifest, "plan", "--detailed-exitcode") == 0
    assert run(manifest, "apply", "--yes") == 0
    assert _blob_puts(registry, "team/published") == uploads

    _consume(tmp_path / "consumer", url)

    # The index is lost (deleted tag) while the images stay: publishing again re-tags and
    # re-indexes, and sends no tarball again (each blob is asked for with HEAD first).
    base = f"{registry.api}team/published"
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    head = requests.head(f"{base}/manifests/index.spack", headers=accept, timeout=10)
    digest = head.headers["Docker-Content-Digest"]
    assert requests.delete(f"{base}/manifests/{digest}", timeout=10).status_code == 202
    assert run(manifest, "plan", "--detailed-exitcode") == 2
    assert run(manifest, "apply", "--yes") == 0
    again = _blob_puts(registry, "team/published")
    tarballs = _layers(registry, "team/published")
    assert [d for d in again if d in tarballs] == [d for d in uploads if d in tarballs]
    assert run(manifest, "plan", "--detailed-exitcode") == 0


def test_publishing_with_a_gpg_key_into_a_registry_is_refused(
    tmp_path: Path, registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = _mirror("registry", registry.mirror_url("team/x"), signed=False)
    extra += '\n[[publish]]\nspecs = ["hello-app"]\nmirror = "registry"\nkey = "team-gpg"\n'
    manifest = write_manifest(tmp_path, extra=extra)
    assert run(manifest, "plan") == 1
    assert "carry no GnuPG signature" in capsys.readouterr().err
    assert _tags_or_none(registry, "team/x") is None


def _tags_or_none(registry: Registry, repository: str) -> list[str] | None:
    answer = requests.get(f"{registry.api}{repository}/tags/list", timeout=10)
    return None if answer.status_code == 404 else sorted(answer.json()["tags"])


def test_sync_into_a_registry_then_between_repositories_with_mounts_then_out(
    tmp_path: Path, registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    # 1. into the registry, from the signed layout-2 fixture (signatures are not carried)
    first = registry.mirror_url("site/first")
    text = "version = 1\n" + _mirror("upstream", SIGNED_CACHE, signed=True)
    text += _mirror("first", first, signed=False, extra='specs = ["hello-app"]\n') + KEY
    (tmp_path / "into").mkdir()
    (tmp_path / "into" / "reconcile.toml").write_text(text)
    assert run(tmp_path / "into" / "reconcile.toml", "apply", "--yes") == 0
    assert "3 synced" in capsys.readouterr().out
    assert run(tmp_path / "into" / "reconcile.toml", "plan", "--detailed-exitcode") == 0
    tarballs = _layers(registry, "site/first")
    assert len(tarballs) == 3

    # 2. from that repository to another of the same registry: tarballs are mounted
    second = registry.mirror_url("site/second")
    text = "version = 1\n" + _mirror("first", first, signed=False)
    text += _mirror("second", second, signed=False, extra='specs = ["hello-app"]\n')
    (tmp_path / "between").mkdir()
    (tmp_path / "between" / "reconcile.toml").write_text(text)
    assert run(tmp_path / "between" / "reconcile.toml", "apply", "--yes") == 0
    mounts = [
        path
        for method, path, status in registry.requests()
        if method == "POST" and "/v2/site/second/blobs/uploads/?" in path and "mount=" in path
    ]
    assert len(mounts) == 3
    statuses = {
        status
        for method, path, status in registry.requests()
        if method == "POST" and "mount=" in path
    }
    assert statuses == {201}
    moved = set(_blob_puts(registry, "site/second"))
    assert not moved & tarballs  # no tarball was sent again: only configs and the index
    _consume(tmp_path / "from-second", second)

    # 3. out of the registry, into a layout-3 folder (unsigned: the source is)
    text = "version = 1\n" + _mirror("second", second, signed=False)
    text += _mirror("local", "local", signed=False, extra='specs = ["hello-app"]\n')
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "reconcile.toml").write_text(text)
    assert run(tmp_path / "out" / "reconcile.toml", "apply", "--yes") == 0
    assert (tmp_path / "out" / "local" / "v3" / "layout.json").exists()
    _consume(tmp_path / "from-folder", str(tmp_path / "out" / "local"))
    layout = json.loads((tmp_path / "out" / "local" / "v3" / "layout.json").read_text())
    assert isinstance(layout, dict)


def test_publish_and_read_back_through_bearer_token_auth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with oci_registry(tmp=tmp_path / "registry", auth="token") as registry:
        monkeypatch.setenv("RECONCILE_CA_BUNDLE", str(registry.ca_bundle))
        monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker"))
        monkeypatch.setenv("RECONCILE_MIRROR_REGISTRY_USERNAME", registry.user)
        monkeypatch.setenv("RECONCILE_MIRROR_REGISTRY_PASSWORD", registry.password)
        url = registry.mirror_url("team/private")
        extra = _mirror("registry", url, signed=False)
        extra += '\n[[publish]]\nspecs = ["hello-app"]\nmirror = "registry"\n'
        manifest = write_manifest(tmp_path / "publisher", extra=extra)
        assert run(manifest, "apply", "--yes") == 0
        assert registry.token_server is not None
        # The registry names the actions of a scope in no fixed order (Go map iteration).
        scopes = {
            (scope.rpartition(":")[0], frozenset(scope.rpartition(":")[2].split(",")))
            for scope, user in registry.token_server.requests
            if user
        }
        assert ("repository:team/private", frozenset({"pull", "push"})) in scopes

        # the consumer's mirror is named "team": its own variables
        monkeypatch.setenv("RECONCILE_MIRROR_TEAM_USERNAME", registry.user)
        monkeypatch.setenv("RECONCILE_MIRROR_TEAM_PASSWORD", registry.password)
        _consume(tmp_path / "consumer", url)
    out, err = capsys.readouterr()
    assert registry.password not in out + err


def test_bundle_export_from_a_registry_says_how_instead(
    tmp_path: Path, registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = _mirror("registry", registry.mirror_url("team/published"), signed=False)
    extra += '\n[[publish]]\nspecs = ["hello-app"]\nmirror = "registry"\n'
    assert run(write_manifest(tmp_path / "publisher", extra=extra), "apply", "--yes") == 0
    manifest = write_manifest(
        tmp_path / "exporter",
        mirror=registry.mirror_url("team/published"),
        signed=False,
        key_file=None,
    )
    capsys.readouterr()
    assert run(manifest, "bundle", "export", str(tmp_path / "b.tar")) == 1
    err = capsys.readouterr().err
    assert "is an OCI registry" in err and "then export from that mirror" in err
    assert "Traceback" not in err and not (tmp_path / "b.tar").exists()


def test_a_signed_oci_mirror_with_ed25519_sidecar_tags(
    tmp_path: Path,
    registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from test_ed25519_trust import generate_ed25519

    home = tmp_path / "signing"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("RECONCILE_SIGNING_HOME", str(home))
    monkeypatch.delenv("RECONCILE_ED25519_SECRET_KEY", raising=False)
    url = registry.mirror_url("team/signed")
    (tmp_path / "publisher").mkdir()
    entry = generate_ed25519(tmp_path / "publisher" / "reconcile.toml", "site", capsys)
    other = generate_ed25519(tmp_path / "publisher" / "reconcile.toml", "other", capsys)
    extra = _mirror("registry", url, signed=True) + "\n" + entry
    extra += '\n[[publish]]\nspecs = ["hello-app"]\nmirror = "registry"\nkey = "site"\n'
    manifest = write_manifest(tmp_path / "publisher", extra=extra)
    assert run(manifest, "apply", "--yes") == 0, capsys.readouterr().err
    sidecar_tags = [t for t in _tags(registry, "team/signed") if t.endswith(".reconcile-sig")]
    assert len(sidecar_tags) == 3
    # Published and signed by every key named: nothing more to do.
    capsys.readouterr()
    assert run(manifest, "plan", "--detailed-exitcode") == 0, capsys.readouterr().out

    def consumer(folder: Path, key_entry: str) -> Path:
        text = 'version = 1\n\n[install]\nroot = "opt"\nspecs = ["hello-app"]\n'
        text += _mirror("registry", url, signed=True) + "\n" + key_entry
        folder.mkdir(parents=True)
        (folder / "reconcile.toml").write_text(text)
        return folder / "reconcile.toml"

    good = consumer(tmp_path / "consumer", entry)
    assert run(good, "apply", "--yes") == 0, capsys.readouterr().err
    check_hello_works(tmp_path / "consumer" / "opt")
    records = (tmp_path / "consumer" / "opt" / ".reconcile" / "records").glob("*.json")
    assert {json.loads(r.read_text())["signer"] for r in records} == {"ed25519:site"}

    capsys.readouterr()
    wrong = consumer(tmp_path / "wrong-key", other)
    assert run(wrong, "apply", "--yes") == 1
    assert "error[verification-failed]" in capsys.readouterr().err
    assert not (tmp_path / "wrong-key" / "opt").exists() or not list(
        (tmp_path / "wrong-key" / "opt").glob("hello-app-*")
    )

    # A sidecar tag removed: that package is refused, nothing is installed.
    base = f"{registry.api}team/signed"
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    tag = next(t for t in sidecar_tags if t.startswith("greetlib-"))
    digest = requests.head(f"{base}/manifests/{tag}", headers=accept, timeout=10).headers[
        "Docker-Content-Digest"
    ]
    assert requests.delete(f"{base}/manifests/{digest}", timeout=10).status_code == 202
    missing = consumer(tmp_path / "missing", entry)
    assert run(missing, "apply", "--yes") == 1
    err = capsys.readouterr().err
    assert "no sidecar signatures" in err and "greetlib" in err
