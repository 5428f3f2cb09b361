"""``reconcile drift`` on an s3:// mirror the manifest syncs into (moto on 127.0.0.1): the
index against one listing of the bucket prefix and the sizes the manifests record, with a
deleted object, an extra object and an object of the wrong size, and no tarball downloaded."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import FIXTURES, REPO
from moto_harness import MotoS3, moto_s3
from support import run, write_manifest

from reconcile.transport.s3 import S3Transport

SCHEMA = json.loads((REPO / "schemas" / "drift.schema.json").read_text())
PREFIX = "spack/site"
SPACK1 = FIXTURES / "spack1-v3-signed"
SPACK1_FPR = "E19558C059B19311A4EB227B03683E7D4E8545AB"
SPACK1_KEY = FIXTURES / "keys" / f"{SPACK1_FPR}.pub"


@pytest.fixture
def s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoS3]:
    with moto_s3(tmp_path / "aws") as server:
        for name, value in server.env.items():
            monkeypatch.setenv(name, value)
        yield server


@pytest.fixture
def gets(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | None]]:
    """(key, Range) of every GetObject reconcile's S3 clients send."""
    seen: list[tuple[str, str | None]] = []
    original = S3Transport._client_for

    def record(params: dict[str, Any], **_: object) -> None:
        seen.append((str(params["Key"]), params.get("Range")))

    def client_for(self: S3Transport, where: Any) -> Any:
        fresh = self._client is None
        client = original(self, where)
        if fresh:
            client.meta.events.register("before-parameter-build.s3.GetObject", record)
        return client

    monkeypatch.setattr(S3Transport, "_client_for", client_for)
    return seen


def _synced(tmp_path: Path, s3: MotoS3, bucket: str, layout: int) -> Path:
    s3.create_bucket(bucket)
    extra = f"""
[[mirror]]
name = "site"
url = "{s3.url(bucket, PREFIX)}"
endpoint_url = "{s3.endpoint_url}"
layout = {layout}
specs = ["hello-app"]
"""
    # copied verbatim from a mirror of the same layout: Spack 0.23's cache, or Spack 1.1's
    source: dict[str, object] = {}
    if layout == 3:
        source = {"mirror": SPACK1, "key_file": SPACK1_KEY, "fingerprint": SPACK1_FPR}
    manifest = write_manifest(tmp_path / "syncer", extra=extra, **source)
    assert run(manifest, "apply", "--yes") == 0
    return manifest


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


def _objects(s3: MotoS3, bucket: str) -> dict[str, int]:
    client = s3.client()
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX)
        return {
            item["Key"].removeprefix(PREFIX + "/"): item["Size"]
            for page in pages
            for item in page.get("Contents", [])
        }
    finally:
        client.close()


def _index_blob(s3: MotoS3, bucket: str) -> str:
    client = s3.client()
    try:
        body = client.get_object(
            Bucket=bucket, Key=f"{PREFIX}/v3/manifests/index/index.manifest.json"
        )["Body"].read()
    finally:
        client.close()
    checksum = json.loads(body)["data"][0]["checksum"]
    return f"blobs/sha256/{checksum[:2]}/{checksum}"


@pytest.mark.parametrize("layout", [2, 3])
def test_s3_mirror_drift_from_a_listing(
    tmp_path: Path,
    s3: MotoS3,
    gets: list[tuple[str, str | None]],
    capsys: pytest.CaptureFixture[str],
    layout: int,
) -> None:
    bucket = f"drift-layout-{layout}"
    manifest = _synced(tmp_path, s3, bucket, layout)
    url = s3.url(bucket, PREFIX)

    gets.clear()
    code, mirror = _drift(manifest, capsys, "--check-contents")
    assert code == 0 and mirror["findings"] == []
    assert mirror["checked"] >= 3
    assert "tarballs are not downloaded" in mirror["note"]
    capsys.readouterr()
    assert run(manifest, "drift") == 0
    text = capsys.readouterr().out
    assert f"mirror:site  {url}\n  checked: listing" in text  # how, not "matches"

    objects = _objects(s3, bucket)
    if layout == 2:
        tarballs = sorted(k for k in objects if k.endswith(".spack"))
        stray = "build_cache/stray-1.0.spack"
        wrong_size = b""  # layout 2 records no size: only an empty tarball is seen
        detail = "is empty"
    else:
        index_blob = _index_blob(s3, bucket)
        tarballs = sorted(
            k for k, size in objects.items() if k.startswith("blobs/") and size > 4096
        )
        tarballs.remove(index_blob)
        stray = "blobs/sha256/00/" + "00" * 32
        wrong_size = b"a tarball of another size"
        detail = "its manifest says"
    assert len(tarballs) >= 2
    # nothing reconcile read was a tarball: the listing and metadata only
    assert not {key.removeprefix(PREFIX + "/") for key, _ in gets} & set(tarballs)
    gone, resized = tarballs[0], tarballs[1]
    client = s3.client()
    try:
        client.delete_object(Bucket=bucket, Key=f"{PREFIX}/{gone}")
        client.put_object(Bucket=bucket, Key=f"{PREFIX}/{resized}", Body=wrong_size)
        client.put_object(Bucket=bucket, Key=f"{PREFIX}/{stray}", Body=b"not an index, a stray")
    finally:
        client.close()

    gets.clear()
    junit = tmp_path / "drift.xml"
    code, mirror = _drift(manifest, capsys, "--junit", str(junit))
    assert code == 2
    found = {(f["kind"], f["path"]) for f in mirror["findings"]}
    assert found == {
        ("mirror-file-missing", f"{url}/{gone}"),
        ("mirror-file-corrupt", f"{url}/{resized}"),
        ("mirror-file-unlisted", f"{url}/{stray}"),
    }
    corrupt = next(f for f in mirror["findings"] if f["kind"] == "mirror-file-corrupt")
    assert detail in corrupt["detail"]
    # requests counted: no tarball fetched; a stray blob is told apart by 12 bytes at most
    read = {key.removeprefix(PREFIX + "/"): rng for key, rng in gets}
    assert not set(read) & {gone, resized, *tarballs}
    assert all(rng in (None, "bytes=0-11") for rng in read.values())
    if layout == 3:
        assert read[stray] == "bytes=0-11"
    case = next(
        c for c in ET.parse(junit).getroot().iter("testcase") if c.get("name") == "mirror:site"
    )
    failure = case.find("failure")
    assert failure is not None and failure.get("type") == "mirror-file-corrupt"


def test_an_s3_mirror_without_an_index_is_reported(
    tmp_path: Path, s3: MotoS3, capsys: pytest.CaptureFixture[str]
) -> None:
    s3.create_bucket("drift-empty")
    extra = f"""
[[mirror]]
name = "site"
url = "{s3.url("drift-empty", PREFIX)}"
endpoint_url = "{s3.endpoint_url}"
specs = ["hello-app"]
"""
    manifest = write_manifest(tmp_path / "syncer", extra=extra)
    code, mirror = _drift(manifest, capsys)
    assert code == 2
    assert [f["kind"] for f in mirror["findings"]] == ["mirror-index-missing"]


def test_an_s3_mirror_that_cannot_be_listed_is_never_clean(
    tmp_path: Path, s3: MotoS3, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = f"""
[[mirror]]
name = "site"
url = "{s3.url("drift-no-such-bucket", PREFIX)}"
endpoint_url = "{s3.endpoint_url}"
specs = ["hello-app"]
"""
    manifest = write_manifest(tmp_path / "syncer", extra=extra)
    code, mirror = _drift(manifest, capsys)
    assert code == 2
    assert [f["kind"] for f in mirror["findings"]] == ["unreadable"]
    assert "drift-no-such-bucket" in mirror["findings"][0]["detail"]
    assert "nothing was compared" in mirror["note"]
