"""``reconcile drift`` on an oci:// mirror the manifest syncs into, against Debian's
docker-registry: the index tag's specs against the registry's tag list, each image's blobs
against a HEAD, with a deleted image, a deleted blob, an extra image and a blob of the wrong
size; the registry's access log shows that no tarball (nor config) was downloaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
from conftest import FIXTURE_FPR, FIXTURE_KEY, REPO, SIGNED_CACHE
from oci_harness import Registry, oci_registry, registry_available
from support import run

pytestmark = pytest.mark.skipif(
    not registry_available(), reason="docker-registry is not installed (.ci/run installs it)"
)

SCHEMA = json.loads((REPO / "schemas" / "drift.schema.json").read_text())
REPOSITORY = "site/drift"
ACCEPT = {"Accept": "application/vnd.oci.image.manifest.v1+json"}


@pytest.fixture
def registry(tmp_path: Path):  # type: ignore[no-untyped-def]
    with oci_registry(tmp=tmp_path / "registry") as server:
        yield server


def _synced(tmp_path: Path, registry: Registry) -> Path:
    url = registry.mirror_url(REPOSITORY)
    text = (
        f'version = 1\n\n[[mirror]]\nname = "upstream"\nurl = "{SIGNED_CACHE}"\nsigned = true\n'
        f'\n[[mirror]]\nname = "site"\nurl = "{url}"\nsigned = false\nspecs = ["hello-app"]\n'
        f'\n[[key]]\nname = "upstream"\nkind = "gpg"\nfingerprint = "{FIXTURE_FPR}"\n'
        f'file = "{FIXTURE_KEY}"\n'
    )
    folder = tmp_path / "syncer"
    folder.mkdir()
    (folder / "reconcile.toml").write_text(text)
    assert run(folder / "reconcile.toml", "apply", "--yes") == 0
    return folder / "reconcile.toml"


def _drift(
    manifest: Path, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = run(manifest, "drift", "--json", *args)
    document = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    assert code == (0 if document["clean"] else 2)
    mirror = next(r for r in document["resources"] if r["resource"] == "mirror:site")
    assert mirror["skipped"] is None
    return code, mirror


def _images(registry: Registry) -> dict[str, dict[str, Any]]:
    """Each spec tag's image manifest (with its digest under "_digest")."""
    base = f"{registry.api}{REPOSITORY}"
    tags = requests.get(f"{base}/tags/list", timeout=10).json()["tags"]
    images = {}
    for tag in tags:
        if tag != "index.spack":
            answer = requests.get(f"{base}/manifests/{tag}", headers=ACCEPT, timeout=10)
            images[tag] = {**answer.json(), "_digest": answer.headers["Docker-Content-Digest"]}
    return images


def _content_gets(registry: Registry, digests: set[str], since: int) -> list[str]:
    """GETs of any of ``digests`` (tarballs, configs) after request number ``since``."""
    return [
        path
        for method, path, _ in registry.requests()[since:]
        if method == "GET" and path.rsplit("/", 1)[-1] in digests
    ]


def test_oci_mirror_drift_from_tags_and_heads(
    tmp_path: Path, registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _synced(tmp_path, registry)
    url = registry.mirror_url(REPOSITORY)
    images = _images(registry)
    assert len(images) == 3
    content = {
        d["digest"] for image in images.values() for d in [image["config"], *image["layers"]]
    }

    before = len(registry.requests())
    code, mirror = _drift(manifest, capsys, "--check-contents")
    assert code == 0 and mirror["findings"] == []
    assert mirror["checked"] == 3 + len(content)
    assert "tarballs are not downloaded" in mirror["note"]
    assert _content_gets(registry, content, before) == []
    heads = [m for m, p, _ in registry.requests()[before:] if "/blobs/" in p and m == "HEAD"]
    assert len(heads) == len(content)

    (gone_tag, gone), (_, blob_image), (short_tag, short_image) = sorted(images.items())
    base = f"{registry.api}{REPOSITORY}"
    # an image deleted (its tag with it), a blob deleted, a blob truncated in the storage
    assert requests.delete(f"{base}/manifests/{gone['_digest']}", timeout=10).status_code == 202
    deleted_blob = blob_image["layers"][-1]["digest"]
    assert requests.delete(f"{base}/blobs/{deleted_blob}", timeout=10).status_code == 202
    truncated = short_image["layers"][-1]["digest"]
    hexdigest = truncated.split(":", 1)[1]
    data = registry.tmp / "storage/docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest
    (data / "data").write_bytes((data / "data").read_bytes()[:100])
    # an image the index does not list: an existing manifest under another spec's tag
    stray_tag = "stray-1.0-" + "a" * 32 + ".spack"
    body = requests.get(f"{base}/manifests/{short_tag}", headers=ACCEPT, timeout=10).content
    put = requests.put(
        f"{base}/manifests/{stray_tag}",
        data=body,
        headers={"Content-Type": ACCEPT["Accept"]},
        timeout=10,
    )
    assert put.status_code == 201
    stray_sidecar = "stray-1.0-" + "a" * 32 + ".reconcile-sig"
    put = requests.put(
        f"{base}/manifests/{stray_sidecar}",
        data=body,
        headers={"Content-Type": ACCEPT["Accept"]},
        timeout=10,
    )
    assert put.status_code == 201

    before = len(registry.requests())
    code, mirror = _drift(manifest, capsys)
    assert code == 2
    found = {(f["kind"], f["path"]) for f in mirror["findings"]}
    assert found == {
        ("mirror-file-missing", f"{url}/manifests/{gone_tag}"),
        ("mirror-file-missing", f"{url}/blobs/{deleted_blob}"),
        ("mirror-file-corrupt", f"{url}/blobs/{truncated}"),
        ("mirror-file-unlisted", f"{url}/manifests/{stray_tag}"),
        ("mirror-file-unlisted", f"{url}/manifests/{stray_sidecar}"),
    }
    corrupt = next(f for f in mirror["findings"] if f["kind"] == "mirror-file-corrupt")
    assert "100 bytes, its manifest says" in corrupt["detail"]
    assert _content_gets(registry, content, before) == []


def test_an_oci_mirror_without_an_index_is_reported(
    tmp_path: Path, registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "reconcile.toml").write_text(
        f'version = 1\n\n[[mirror]]\nname = "upstream"\nurl = "{SIGNED_CACHE}"\nsigned = true\n'
        f'\n[[mirror]]\nname = "site"\nurl = "{registry.mirror_url("site/none")}"\n'
        'signed = false\nspecs = ["hello-app"]\n'
    )
    code, mirror = _drift(folder / "reconcile.toml", capsys)
    assert code == 2
    assert [f["kind"] for f in mirror["findings"]] == ["mirror-index-missing"]
