"""Publishing to an s3:// mirror (a moto server on 127.0.0.1) through the write seam, then
installing from that bucket in another root: the round trip publishing to a folder makes."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto_harness import moto_s3
from support import run_subprocess, write_manifest
from test_fixture_install import check_hello_works

from reconcile.trust.sign import GpgSigner, generate_key


@pytest.fixture
def signing_key(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """A publisher's key in its own GnuPG home; no agent of that home outlives the test."""
    home = tmp_path / "signing"
    home.mkdir(mode=0o700)
    try:
        fingerprint = generate_key(home, "Publisher", "publisher@example.invalid")
        public = tmp_path / "publisher.pub"
        public.write_bytes(GpgSigner(gnupghome=home, fingerprint=fingerprint).public_key())
        yield fingerprint, public, home
    finally:
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
            check=False,
            capture_output=True,
        )


@pytest.mark.parametrize("layout", [2, 3])
def test_publish_to_s3_then_install_from_it(
    tmp_path: Path, layout: int, signing_key: tuple[str, Path, Path]
) -> None:
    fingerprint, public, home = signing_key
    bucket = f"published-layout-{layout}"
    with moto_s3(tmp_path / "aws") as s3:
        s3.create_bucket(bucket)
        mirror_url = s3.url(bucket, "spack/team")
        extra = f"""
[[mirror]]
name = "published"
url = "{mirror_url}"
endpoint_url = "{s3.endpoint_url}"
layout = {layout}

[[key]]
name = "publisher"
kind = "gpg"
fingerprint = "{fingerprint}"
file = "{public}"

[[publish]]
specs = ["hello-app"]
mirror = "published"
key = "publisher"
"""
        publisher = write_manifest(tmp_path / "publisher", padded_length=128, extra=extra)
        env = {**s3.env, "RECONCILE_SIGNING_HOME": str(home)}
        done = run_subprocess(publisher, "apply", "--yes", env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "3 published" in done.stdout
        again = run_subprocess(publisher, "plan", "--detailed-exitcode", env=env)
        assert again.returncode == 0, again.stdout + again.stderr  # the bucket has them now

        client = s3.client()
        try:
            listing = client.list_objects_v2(Bucket=bucket, Prefix="spack/team/")
        finally:
            client.close()
        keys = [item["Key"] for item in listing.get("Contents", [])]
        index = (
            "build_cache/index.json" if layout == 2 else "v3/manifests/index/index.manifest.json"
        )
        assert f"spack/team/{index}" in keys
        assert not any("/." in key for key in keys)  # no temporary names left in the bucket

        consumer = write_manifest(
            tmp_path / "consumer", mirror=mirror_url, key_file=public, fingerprint=fingerprint
        )
        consumer.write_text(
            consumer.read_text().replace(
                "signed = true", f'signed = true\nendpoint_url = "{s3.endpoint_url}"'
            )
        )
        installed = run_subprocess(consumer, "apply", "--yes", env=s3.env)
        assert installed.returncode == 0, installed.stdout + installed.stderr
        assert "mirror 'team'" in installed.stdout
        check_hello_works(tmp_path / "consumer" / "opt")


def test_sync_into_s3_then_install_from_it(tmp_path: Path) -> None:
    """Mirror ``specs`` with an s3:// target: the signed specs copied verbatim into the
    bucket, indexed, and installable from there."""
    with moto_s3(tmp_path / "aws") as s3:
        s3.create_bucket("synced-site")
        site = s3.url("synced-site", "spack")
        extra = f"""
[[mirror]]
name = "site"
url = "{site}"
endpoint_url = "{s3.endpoint_url}"
layout = 2
specs = ["hello-app"]
"""
        syncer = write_manifest(tmp_path / "syncer", extra=extra)
        done = run_subprocess(syncer, "apply", "--yes", env=s3.env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "3 synced" in done.stdout
        again = run_subprocess(syncer, "plan", "--detailed-exitcode", env=s3.env)
        assert again.returncode == 0, again.stdout + again.stderr

        consumer = write_manifest(tmp_path / "consumer", mirror=site)
        consumer.write_text(
            consumer.read_text().replace(
                "signed = true", f'signed = true\nendpoint_url = "{s3.endpoint_url}"'
            )
        )
        installed = run_subprocess(consumer, "apply", "--yes", env=s3.env)
        assert installed.returncode == 0, installed.stdout + installed.stderr
        check_hello_works(tmp_path / "consumer" / "opt")


def test_publishing_to_an_http_mirror_is_a_manifest_error(
    tmp_path: Path, signing_key: tuple[str, Path, Path]
) -> None:
    fingerprint, public, home = signing_key
    extra = f"""
[[mirror]]
name = "published"
url = "http://127.0.0.1:9/spack"

[[key]]
name = "publisher"
kind = "gpg"
fingerprint = "{fingerprint}"
file = "{public}"

[[publish]]
specs = ["hello-app"]
mirror = "published"
key = "publisher"
"""
    publisher = write_manifest(tmp_path / "publisher", padded_length=128, extra=extra)
    done = run_subprocess(publisher, "apply", "--yes", env={"RECONCILE_SIGNING_HOME": str(home)})
    assert done.returncode == 1
    assert "publishes binaries only to file, s3 and oci mirrors" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "publisher" / "opt").exists()
