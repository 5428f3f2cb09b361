"""S3Transport against a real S3 API (moto's server on 127.0.0.1), holding a copy of the
Spack-made signed cache: byte-exact reads, error mapping, credentials, resumed downloads."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from conftest import GCC_RUNTIME_HASH, SIGNED_CACHE
from moto_harness import (
    PROFILE,
    SECRET_ACCESS_KEY,
    MotoS3,
    breaking_proxy,
    free_port,
    moto_s3,
    silent_endpoint,
)

from reconcile.errors import MirrorUnreachableError, NotFoundError, ReconcileError, TransportError
from reconcile.transport.registry import MirrorEndpoint, TransportPool
from reconcile.transport.s3 import S3Transport
from reconcile.transport.validators import meta_path

BUCKET = "reconcile-s3-transport-tests"
PREFIX = "mirrors/signed"
GCC_RUNTIME_TARBALL = (
    "build_cache/linux-debian12-x86_64_v4/gcc-12.2.0/gcc-runtime-12.2.0/"
    f"linux-debian12-x86_64_v4-gcc-12.2.0-gcc-runtime-12.2.0-{GCC_RUNTIME_HASH}.spack"
)
GCC_RUNTIME_SHA256 = "0448526af2bad1701bc3b7e009f0890e47285e5c4c34da04ad21b7e45eb35fdf"
GCC_RUNTIME_SIZE = 9_566_481
INDEX = "build_cache/index.json"
# every AWS setting that could point boto3 elsewhere than the harness
FOREIGN_AWS_ENV = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_SESSION_TOKEN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "RECONCILE_S3_CONNECT_TIMEOUT",
    "RECONCILE_S3_READ_TIMEOUT",
)


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    with moto_s3(tmp_path_factory.mktemp("aws")) as server:
        server.upload_tree(SIGNED_CACHE, BUCKET, PREFIX)
        yield server


@pytest.fixture(autouse=True)
def aws_env(s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in FOREIGN_AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in s3.env.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def transport(s3: MotoS3) -> Iterator[S3Transport]:
    client = S3Transport(endpoint_url=s3.endpoint_url)
    yield client
    client.close()


def url(relative: str) -> str:
    return f"s3://{BUCKET}/{PREFIX}/{relative}"


def fixture_files() -> list[str]:
    return sorted(
        p.relative_to(SIGNED_CACHE).as_posix() for p in SIGNED_CACHE.rglob("*") if p.is_file()
    )


# -- reading ---------------------------------------------------------------------------------


def test_every_fixture_file_reads_back_byte_exact(transport: S3Transport) -> None:
    expected_total = 0
    for relative in fixture_files():
        local = (SIGNED_CACHE / relative).read_bytes()
        assert transport.read_bytes(url(relative)) == local, relative
        assert transport.size(url(relative)) == len(local), relative
        expected_total += len(local)
    assert transport.bytes_received == expected_total  # size() moves no body bytes


def test_download_streams_the_tarball_in_chunks(transport: S3Transport, tmp_path: Path) -> None:
    dest = tmp_path / "gcc-runtime.spack"
    reported: list[int] = []
    written = transport.download(url(GCC_RUNTIME_TARBALL), dest, progress=reported.append)
    assert written == GCC_RUNTIME_SIZE == dest.stat().st_size
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == GCC_RUNTIME_SHA256
    assert sum(reported) == GCC_RUNTIME_SIZE
    assert max(reported) <= 1 << 20 and len(reported) >= 9
    assert transport.bytes_received == GCC_RUNTIME_SIZE


def test_the_pool_serves_an_s3_mirror_through_its_endpoint(s3: MotoS3) -> None:
    mirror = MirrorEndpoint(
        name="cloud", url=f"s3://{BUCKET}/{PREFIX}", endpoint_url=s3.endpoint_url
    )
    with TransportPool([mirror]) as pool:
        data = pool.read_bytes(url(INDEX))
        assert data == (SIGNED_CACHE / INDEX).read_bytes()
        assert isinstance(pool.for_url(url(INDEX)), S3Transport)
        assert pool.bytes_by_mirror() == {"cloud": len(data)}


# -- not found -------------------------------------------------------------------------------


def test_a_missing_key_is_not_found(transport: S3Transport, s3: MotoS3, tmp_path: Path) -> None:
    missing = url("build_cache/no-such.spec.json.sig")
    for attempt in (
        lambda: transport.read_bytes(missing),
        lambda: transport.size(missing),
        lambda: transport.download(missing, tmp_path / "x"),
    ):
        with pytest.raises(NotFoundError) as caught:
            attempt()
        assert missing in caught.value.message
        assert s3.endpoint_url in caught.value.message


def test_a_missing_bucket_is_not_found_with_a_hint(transport: S3Transport) -> None:
    missing = "s3://reconcile-no-such-bucket/build_cache/index.json"
    for attempt in (lambda: transport.read_bytes(missing), lambda: transport.size(missing)):
        with pytest.raises(NotFoundError) as caught:
            attempt()
        assert "bucket does not exist" in caught.value.message
        assert missing in caught.value.message
        assert caught.value.hint is not None and "bucket name" in caught.value.hint


def test_a_url_without_a_key_is_refused(transport: S3Transport) -> None:
    for bad in (f"s3://{BUCKET}", f"s3://{BUCKET}/", "s3:///key", "https://example.org/x"):
        with pytest.raises(TransportError, match="not an S3 object URL") as caught:
            transport.read_bytes(bad)
        assert caught.value.hint == "expected s3://bucket/path/to/object"


def test_an_invalid_bucket_name_is_a_transport_error(transport: S3Transport) -> None:
    with pytest.raises(TransportError, match="not a valid S3 location"):
        transport.read_bytes("s3://Not_A*Bucket/key")


# -- unreachable -----------------------------------------------------------------------------


def test_a_refused_endpoint_is_unreachable_and_fails_fast() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    dead = S3Transport(endpoint_url=endpoint, connect_timeout=0.5, read_timeout=0.5, max_attempts=2)
    started = time.monotonic()
    with pytest.raises(MirrorUnreachableError) as caught:
        dead.read_bytes(url(INDEX))
    assert time.monotonic() - started < 10
    assert url(INDEX) in caught.value.message and endpoint in caught.value.message
    assert caught.value.hint is not None and "RECONCILE_S3_CONNECT_TIMEOUT" in caught.value.hint
    with pytest.raises(MirrorUnreachableError):
        dead.size(url(INDEX))


def test_a_silent_endpoint_times_out_as_unreachable() -> None:
    with silent_endpoint() as endpoint:
        hung = S3Transport(endpoint_url=endpoint, read_timeout=0.3, max_attempts=1)
        started = time.monotonic()
        with pytest.raises(MirrorUnreachableError, match="did not answer"):
            hung.read_bytes(url(INDEX))
        assert time.monotonic() - started < 5
        hung.close()


def test_the_read_timeout_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILE_S3_READ_TIMEOUT", "0.3")
    with silent_endpoint() as endpoint:
        hung = S3Transport(endpoint_url=endpoint, max_attempts=1)
        started = time.monotonic()
        with pytest.raises(MirrorUnreachableError):
            hung.read_bytes(url(INDEX))
        assert time.monotonic() - started < 5  # not the 60 s default
        hung.close()


@pytest.mark.parametrize("value", ["soon", "0", "-3"])
def test_a_bad_timeout_setting_is_reported(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("RECONCILE_S3_CONNECT_TIMEOUT", value)
    with pytest.raises(ReconcileError, match="RECONCILE_S3_CONNECT_TIMEOUT") as caught:
        S3Transport()
    assert caught.value.hint is not None and "unset it" in caught.value.hint


# -- credentials -----------------------------------------------------------------------------


def test_a_named_profile_supplies_the_credentials(
    s3: MotoS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with closing(S3Transport(endpoint_url=s3.endpoint_url, profile=PROFILE)) as transport:
        assert transport.read_bytes(url(INDEX)) == (SIGNED_CACHE / INDEX).read_bytes()


def test_an_unknown_profile_is_a_clear_error(s3: MotoS3) -> None:
    unknown = S3Transport(endpoint_url=s3.endpoint_url, profile="no-such-profile")
    with closing(unknown), pytest.raises(TransportError) as caught:
        unknown.read_bytes(url(INDEX))
    error = caught.value
    assert not isinstance(error, NotFoundError | MirrorUnreachableError)
    assert "'no-such-profile' is not configured" in error.message
    assert url(INDEX) in error.message
    assert error.hint is not None and "~/.aws/config" in error.hint


def test_no_credentials_at_all_is_a_clear_error(
    s3: MotoS3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    (tmp_path / "empty").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "empty"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "empty"))
    anonymous = S3Transport(endpoint_url=s3.endpoint_url)
    with closing(anonymous), pytest.raises(TransportError, match="no usable AWS") as caught:
        anonymous.read_bytes(url(INDEX))
    assert caught.value.hint is not None and "AWS_ACCESS_KEY_ID" in caught.value.hint


def test_refused_credentials_are_reported_without_the_secret(
    s3: MotoS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader_id, reader_secret = s3.create_reader("s3-test-reader", BUCKET)
    idle_id, idle_secret = s3.create_reader("s3-test-idle", None)
    cases = [
        (reader_id, "not-the-secret-of-this-key", "SignatureDoesNotMatch"),
        ("AKIAUNKNOWNKEY000000", reader_secret, "InvalidAccessKeyId"),
        (idle_id, idle_secret, "AccessDenied"),
    ]
    with s3.authentication_required():
        for key_id, secret, code in cases:
            monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
            monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
            with closing(S3Transport(endpoint_url=s3.endpoint_url, max_attempts=1)) as transport:
                with pytest.raises(TransportError) as caught:
                    transport.read_bytes(url(INDEX))
                with pytest.raises(TransportError, match="access refused"):
                    transport.size(url(INDEX))
            error = caught.value
            assert type(error) is TransportError, code
            assert code in error.message and url(INDEX) in error.message
            assert error.hint is not None and "AWS_ACCESS_KEY_ID" in error.hint
            shown = error.diagnostics()
            for secret_value in (secret, reader_secret, idle_secret, SECRET_ACCESS_KEY):
                assert secret_value not in shown
        # the same server, with the reader's real key: access works
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", reader_id)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", reader_secret)
        with closing(S3Transport(endpoint_url=s3.endpoint_url)) as transport:
            assert transport.read_bytes(url(INDEX)) == (SIGNED_CACHE / INDEX).read_bytes()


def test_a_missing_boto3_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # what `import boto3` meets when absent
    with pytest.raises(ReconcileError, match="need boto3") as caught:
        S3Transport()
    assert caught.value.hint == "pip install 'reconcile[s3]'"


# -- revalidation ----------------------------------------------------------------------------


def test_read_revalidated_skips_the_body_when_unchanged(
    transport: S3Transport, s3: MotoS3, tmp_path: Path
) -> None:
    key = f"{PREFIX}/revalidate/index.json"
    s3.put(BUCKET, key, b'{"version": 1}')
    local = tmp_path / "index.json"

    assert transport.read_revalidated(f"s3://{BUCKET}/{key}", local) == b'{"version": 1}'
    assert local.read_bytes() == b'{"version": 1}'
    record = json.loads(meta_path(local).read_text())
    assert record["url"] == f"s3://{BUCKET}/{key}" and record["etag"].startswith('"')
    after_first = transport.bytes_received

    assert transport.read_revalidated(f"s3://{BUCKET}/{key}", local) == b'{"version": 1}'
    assert transport.bytes_received == after_first  # 304: no body crossed the wire

    s3.put(BUCKET, key, b'{"version": 2, "more": true}')
    assert (
        transport.read_revalidated(f"s3://{BUCKET}/{key}", local) == b'{"version": 2, "more": true}'
    )
    assert local.read_bytes() == b'{"version": 2, "more": true}'
    assert transport.bytes_received == after_first + len(b'{"version": 2, "more": true}')


def test_read_revalidated_without_a_usable_validator_reads_again(
    transport: S3Transport, tmp_path: Path
) -> None:
    local = tmp_path / "index.json"
    expected = (SIGNED_CACHE / INDEX).read_bytes()
    transport.read_revalidated(url(INDEX), local)
    local.unlink()  # record left behind, copy gone: the record must not be trusted
    assert transport.read_revalidated(url(INDEX), local) == expected
    # changed on disk, same size: a 304 would vouch for bytes the mirror never sent
    local.write_bytes(b"X" * len(expected))
    assert transport.read_revalidated(url(INDEX), local) == expected
    assert local.read_bytes() == expected
    meta_path(local).write_text("not json")
    assert transport.read_revalidated(url(INDEX), local) == expected
    assert transport.bytes_received == 4 * len(expected)


def test_read_revalidated_of_a_missing_key_is_not_found(
    transport: S3Transport, tmp_path: Path
) -> None:
    with pytest.raises(NotFoundError):
        transport.read_revalidated(url("build_cache/gone.json"), tmp_path / "gone.json")
    assert not (tmp_path / "gone.json").exists()


# -- broken streams --------------------------------------------------------------------------


def test_a_broken_stream_is_resumed_byte_exact(s3: MotoS3, tmp_path: Path) -> None:
    dest = tmp_path / "gcc-runtime.spack"
    with breaking_proxy(s3.endpoint_url) as proxy:
        proxy.arm(cut_after=3_000_000, cuts=2)
        with closing(S3Transport(endpoint_url=proxy.endpoint_url)) as transport:
            written = transport.download(url(GCC_RUNTIME_TARBALL), dest)
            assert proxy.cuts_done == 2
            assert written == GCC_RUNTIME_SIZE
            assert hashlib.sha256(dest.read_bytes()).hexdigest() == GCC_RUNTIME_SHA256
            # only whole chunks count, and the resumed ranges continue right after them
            assert transport.bytes_received == GCC_RUNTIME_SIZE


def test_a_stream_that_keeps_breaking_gives_up(s3: MotoS3, tmp_path: Path) -> None:
    with breaking_proxy(s3.endpoint_url) as proxy:
        proxy.arm(cut_after=1_500_000, cuts=100)
        transport = S3Transport(endpoint_url=proxy.endpoint_url, resume_attempts=2)
        with closing(transport), pytest.raises(TransportError, match="broke 3 time") as caught:
            transport.read_bytes(url(GCC_RUNTIME_TARBALL))
        assert not isinstance(caught.value, NotFoundError)
        assert url(GCC_RUNTIME_TARBALL) in caught.value.message
        assert proxy.cuts_done == 3


def test_an_object_replaced_mid_download_is_not_spliced(s3: MotoS3, tmp_path: Path) -> None:
    key = f"{PREFIX}/replaced/blob.bin"
    s3.put(BUCKET, key, bytes(range(256)) * 16384)  # 4 MiB
    with breaking_proxy(s3.endpoint_url) as proxy:
        proxy.arm(cut_after=2_500_000, on_cut=lambda: s3.put(BUCKET, key, b"x" * (4 << 20)))
        transport = S3Transport(endpoint_url=proxy.endpoint_url)
        with closing(transport), pytest.raises(TransportError, match="changed while") as caught:
            transport.download(f"s3://{BUCKET}/{key}", tmp_path / "blob.bin")
    assert caught.value.hint is not None and "run again" in caught.value.hint


def test_a_download_into_a_missing_folder_names_the_path(
    transport: S3Transport, tmp_path: Path
) -> None:
    dest = tmp_path / "no-such-folder" / "index.json"
    with pytest.raises(ReconcileError, match="cannot write the download") as caught:
        transport.download(url(INDEX), dest)
    assert str(dest) in caught.value.message


def test_signed_requests_never_cross_the_network_over_plain_http() -> None:
    from reconcile.errors import TransportError
    from reconcile.transport.s3 import S3Transport

    with pytest.raises(TransportError, match="plain http") as info:
        S3Transport(endpoint_url="http://minio.example.org:9000")
    assert "https" in (info.value.hint or "")
    S3Transport(endpoint_url="http://127.0.0.1:9000")  # loopback: a local test server
    S3Transport(endpoint_url="https://minio.example.org")
