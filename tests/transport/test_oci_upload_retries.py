"""Writes into a real registry (docker-registry) survive a network failure and "not now"
answers: each step is tried again with backoff, a file body sent again from its start."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

import pytest
import requests
from oci_harness import oci_registry, registry_available

from reconcile.errors import TransportError
from reconcile.transport.oci import OciTransport
from reconcile.transport.oci_upload import blob_exists, upload_blob

pytestmark = pytest.mark.skipif(not registry_available(), reason="docker-registry is missing")


class FlakyRegistry(OciTransport):
    """The real registry behind a link that drops the first POST and answers the first
    ``busy`` PUTs with 503 (never reaching the registry)."""

    def __init__(self, *, busy: int, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.busy, self.dropped = busy, False

    def send_api(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        *,
        stream: bool,
        data: bytes | BinaryIO | None = None,
        api_url: str | None = None,
    ) -> requests.Response:
        if method == "POST" and not self.dropped:
            self.dropped = True
            raise requests.ConnectionError("connection reset by peer")
        if method == "PUT" and self.busy:
            self.busy -= 1
            if data is not None and not isinstance(data, bytes):
                data.read()  # the body was (partly) sent before the answer came
            answer = requests.Response()
            answer.status_code, answer.reason = 503, "Service Unavailable"
            answer._content = b""
            return answer
        return super().send_api(method, url, headers, stream=stream, data=data, api_url=api_url)


def test_an_upload_is_tried_again_after_failures(tmp_path: Path) -> None:
    waits: list[float] = []
    with oci_registry(tmp=tmp_path / "registry") as registry:
        transport = FlakyRegistry(
            busy=2, mirror_url=registry.mirror_url("team/cache"), sleep=waits.append
        )
        blob = tmp_path / "tarball"
        blob.write_bytes(b"x" * 200_000)
        sha256 = hashlib.sha256(blob.read_bytes()).hexdigest()
        assert upload_blob(transport, blob, sha256) is True
        assert blob_exists(transport, sha256)
        assert len(waits) == 3  # one dropped POST, two busy PUTs
        transport.close()


def test_a_registry_that_stays_busy_is_a_clear_error(tmp_path: Path) -> None:
    with oci_registry(tmp=tmp_path / "registry") as registry:
        transport = FlakyRegistry(
            busy=100, mirror_url=registry.mirror_url("team/cache"), sleep=lambda _s: None
        )
        with pytest.raises(TransportError) as caught:
            upload_blob(transport, b"data", hashlib.sha256(b"data").hexdigest())
        assert "HTTP 503" in caught.value.message
        assert caught.value.reference == "mirror-unwritable"
        transport.close()
