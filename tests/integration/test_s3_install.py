"""Installing from an S3 mirror (a moto server on 127.0.0.1), with a cache root."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import SIGNED_CACHE
from moto_harness import moto_s3
from support import run_subprocess, write_manifest
from test_fixture_install import check_hello_works


def test_install_from_s3_then_from_the_cache(tmp_path: Path) -> None:
    with moto_s3(tmp_path / "aws") as s3:
        s3.create_bucket("team-binaries")
        s3.upload_tree(SIGNED_CACHE, "team-binaries", "spack/v2")
        manifest = write_manifest(
            tmp_path / "work",
            mirror="s3://team-binaries/spack/v2",
            extra='\n[[cache]]\nroot = "cache"\n',
        )
        text = manifest.read_text().replace(
            "signed = true", f'signed = true\nendpoint_url = "{s3.endpoint_url}"'
        )
        manifest.write_text(text)
        cold = run_subprocess(manifest, "apply", "--yes", env=s3.env)
        assert cold.returncode == 0, cold.stderr
        assert "mirror 'team': 9.2 MiB downloaded" in cold.stdout
        check_hello_works(tmp_path / "work" / "opt")

        shutil.rmtree(tmp_path / "work" / "opt")  # a wiped CI runner
        warm = run_subprocess(manifest, "apply", "--yes", env=s3.env)
        assert warm.returncode == 0, warm.stderr
        assert "3 installed (3 from cache roots)" in warm.stdout
        check_hello_works(tmp_path / "work" / "opt")


def test_unknown_bucket_is_a_clear_plan_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with moto_s3(tmp_path / "aws") as s3:
        manifest = write_manifest(tmp_path / "work", mirror="s3://no-such-bucket/x")
        manifest.write_text(
            manifest.read_text().replace(
                "signed = true", f'signed = true\nendpoint_url = "{s3.endpoint_url}"'
            )
        )
        done = run_subprocess(manifest, "plan", env=s3.env)
        assert done.returncode == 1
        assert "no-such-bucket" in done.stderr
        assert "Traceback" not in done.stderr
