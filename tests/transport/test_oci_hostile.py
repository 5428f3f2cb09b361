"""OCI mirrors' hostile and malformed inputs: URLs, challenges, Docker configs, token answers,
and a registry whose documents lie about their blobs (a real registry checks digests on
push, so a lying one is simulated by a transport that serves chosen bytes)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from pathlib import Path

import pytest

from reconcile.buildcache.layout_oci import (
    fetch_spec_oci,
    parse_image_manifest,
    read_index_oci,
    spec_tag,
)
from reconcile.errors import NotFoundError, TransportError, VerificationError
from reconcile.spack.spec import parse_node
from reconcile.transport.base import Transport
from reconcile.transport.bounds import Cap
from reconcile.transport.credentials import Credentials
from reconcile.transport.docker_config import from_docker_config
from reconcile.transport.oci_auth import (
    check_realm_for_credentials,
    parse_challenges,
    token_from_answer,
    token_request,
)
from reconcile.transport.oci_reference import parse_oci_mirror, parse_oci_object, valid_tag

MIRROR = "oci://registry.example/team/cache"


@pytest.mark.parametrize(
    "url",
    [
        "oci://registry.example",
        "oci://registry.example/",
        "oci://registry.example/Team/Cache",
        "oci://registry.example/team/cache?x=1",
        "oci://registry.example:port/team",
        "oci:///team",
        "https://registry.example/team",
        "oci://registry.example/team//cache",
        "oci://registry.example/../etc",
    ],
)
def test_malformed_oci_urls_are_refused(url: str) -> None:
    with pytest.raises(TransportError) as caught:
        parse_oci_mirror(url)
    assert caught.value.reference == "bad-oci-url"


def test_oci_urls_map_onto_the_registry_api() -> None:
    repository = parse_oci_mirror("oci+http://127.0.0.1:5000/team/cache/")
    assert repository.api_base() == "http://127.0.0.1:5000/v2/team/cache"
    digest = "sha256:" + "a" * 64
    blob = parse_oci_object(repository.blob_url(digest), repository.mirror_url())
    assert blob.api_url() == f"http://127.0.0.1:5000/v2/team/cache/blobs/{digest}"
    # a repository component named like an API folder is still found by the mirror URL
    nested = parse_oci_mirror("oci://r.example/blobs/manifests")
    tag = parse_oci_object(nested.manifest_url("index.spack"), nested.mirror_url())
    assert tag.repository.repository == "blobs/manifests" and tag.reference == "index.spack"


@pytest.mark.parametrize(
    "suffix", ["blobs/sha256:abc", "blobs/md5:" + "a" * 32, "manifests/../x", "tags/list", "x"]
)
def test_urls_inside_a_mirror_that_name_nothing_known_are_refused(suffix: str) -> None:
    with pytest.raises(TransportError):
        parse_oci_object(f"{MIRROR}/{suffix}", MIRROR)


def test_tags_are_made_valid_as_spack_makes_them() -> None:
    assert valid_tag("hello-1.0-abc.spack") == "hello-1.0-abc.spack"
    assert valid_tag("py-a+b@1/x.spack") == "py-a_b_1_x.spack"
    long = "n" * 100 + "-" + "v" * 100 + ".spack"
    assert valid_tag(long) == long[:64] + long[-64:]


def test_challenges_are_parsed_with_quoted_commas() -> None:
    header = (
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:team/cache:pull,push", Basic realm="x"'
    )
    bearer, basic = parse_challenges(header)
    assert bearer.scheme == "bearer"
    assert bearer.params["scope"] == "repository:team/cache:pull,push"
    assert basic.scheme == "basic" and basic.params == {"realm": "x"}


@pytest.mark.parametrize("realm", ["", "file:///etc/passwd", "ftp://x/token", "https://"])
def test_a_token_realm_that_is_not_http_is_refused(realm: str) -> None:
    (challenge,) = parse_challenges(f'Bearer realm="{realm}",service="s"')
    with pytest.raises(TransportError) as caught:
        token_request(challenge, "repository:a:pull", "mirror 'team'")
    assert caught.value.reference == "registry-auth-failed"


@pytest.mark.parametrize(
    "realm", ["http://auth.example/token", "http://169.254.169.254/latest/meta-data/"]
)
def test_an_https_registry_naming_a_plain_http_token_service_is_refused(realm: str) -> None:
    """A downgrade: the token would travel in clear text. A plain-http registry may."""
    (challenge,) = parse_challenges(f'Bearer realm="{realm}",service="s"')
    with pytest.raises(TransportError) as caught:
        token_request(challenge, "repository:a:pull", "mirror 'team'")
    assert "which is not an https URL" in caught.value.message
    asked = token_request(challenge, "repository:a:pull", "mirror 'team'", registry_scheme="http")
    assert asked.startswith(realm)


def test_credentials_never_go_to_a_plain_http_token_service() -> None:
    credentials = Credentials(kind="basic", username="u", secret="s3cret", source="env")
    with pytest.raises(TransportError) as caught:
        check_realm_for_credentials("http://auth.example/token", credentials, "mirror 'team'")
    assert "s3cret" not in caught.value.diagnostics()
    check_realm_for_credentials("http://auth.example/token", None, "mirror 'team'")  # anonymous


@pytest.mark.parametrize(
    "answer", [None, [], {}, {"token": 3}, {"token": ""}, {"token": "a\r\nX-Injected: 1"}]
)
def test_token_answers_without_a_usable_token_are_refused(answer: object) -> None:
    with pytest.raises(TransportError):
        token_from_answer(answer, "mirror 'team'")


def _docker_config(tmp_path: Path, document: object) -> dict[str, str]:
    (tmp_path / "config.json").write_text(json.dumps(document))
    return {"DOCKER_CONFIG": str(tmp_path)}


def test_docker_config_gives_the_host_s_credentials(tmp_path: Path) -> None:
    pair = base64.b64encode(b"ci:pa:ss").decode()
    env = _docker_config(tmp_path, {"auths": {"https://ghcr.io/v1/": {"auth": pair}}})
    found = from_docker_config("ghcr.io", env)
    assert found is not None and (found.username, found.secret) == ("ci", "pa:ss")
    assert "pa:ss" not in repr(found)
    assert from_docker_config("quay.io", env) is None


@pytest.mark.parametrize(
    "document",
    [
        "not json",
        ["a list"],
        {"auths": []},
        {"auths": {"ghcr.io": "x"}},
        {"auths": {"ghcr.io": {"auth": "%%%not-base64-s3cret"}}},
        {"auths": {"ghcr.io": {"auth": base64.b64encode(b"no-colon-s3cret").decode()}}},
        {"auths": {"ghcr.io": {}}, "credsStore": "desktop"},
    ],
)
def test_unusable_docker_configs_are_clear_errors_without_secrets(
    tmp_path: Path, document: object
) -> None:
    if document == "not json":
        (tmp_path / "config.json").write_text('{"auths": {"ghcr.io": {"auth": "s3cret"')
        env = {"DOCKER_CONFIG": str(tmp_path)}
    else:
        env = _docker_config(tmp_path, document)
    with pytest.raises(TransportError) as caught:
        from_docker_config("ghcr.io", env)
    assert caught.value.reference == "bad-docker-config"
    assert "s3cret" not in caught.value.diagnostics()


# --- a registry that lies ------------------------------------------------------------------


class LyingRegistry(Transport):
    """Serves whatever bytes the test put at each URL."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def read_bytes(self, url: str, *, cap: Cap | None = None, expect_prefix: bytes = b"") -> bytes:
        if url not in self.files:
            raise NotFoundError(url)
        data = self.files[url]
        limit = self.read_cap(cap).bytes
        if len(data) > limit:
            raise TransportError(f"{url}: sent more than {limit}")
        return data

    def download(self, url, dest, *, progress=None, cap=None):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def download_into(self, url, sink, *, offset=0, progress=None, cap=None):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def size(self, url: str) -> int:
        return len(self.files[url])

    def blob(self, data: bytes, *, claimed: bytes | None = None) -> dict[str, object]:
        """Store ``data`` under the digest of ``claimed`` (the real bytes when None)."""
        named = claimed if claimed is not None else data
        digest = "sha256:" + hashlib.sha256(named).hexdigest()
        self.files[f"{MIRROR}/blobs/{digest}"] = data
        return {"digest": digest, "size": len(named)}

    def manifest(
        self, tag: str, config: dict[str, object], layers: list[dict[str, object]]
    ) -> None:
        document = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}
                for layer in layers
            ],
        }
        self.files[f"{MIRROR}/manifests/{tag}"] = json.dumps(document).encode()


NODE_RAW = {
    "name": "hello",
    "version": "1.0",
    "arch": {"platform": "linux", "platform_os": "debian12", "target": "x86_64"},
    "hash": "abcdefghijklmnopqrstuvwxyzabcdef",
}


def _registry_with_spec(
    *, tarball: bytes = b"tarball", served_tarball: bytes | None = None, config: bytes | None = None
) -> tuple[LyingRegistry, object]:
    registry = LyingRegistry()
    node = parse_node(NODE_RAW)
    layer = registry.blob(
        served_tarball if served_tarball is not None else tarball, claimed=tarball
    )
    spec = {
        "spec": {"_meta": {"version": 5}, "nodes": [NODE_RAW]},
        "buildcache_layout_version": 3,
        "binary_cache_checksum": {
            "hash_algorithm": "sha256",
            "hash": hashlib.sha256(tarball).hexdigest(),
        },
    }
    real_config = json.dumps(spec).encode()
    config_record = registry.blob(
        config if config is not None else real_config, claimed=real_config
    )
    registry.manifest(spec_tag(node), config_record, [layer])
    return registry, node


def test_an_honest_image_gives_the_spec_and_its_tarball_digest() -> None:
    registry, node = _registry_with_spec()
    fetched = fetch_spec_oci(registry, MIRROR, node)  # type: ignore[arg-type]
    assert fetched.tarball_sha256 == hashlib.sha256(b"tarball").hexdigest()
    assert fetched.tarball_size == len(b"tarball")
    assert fetched.signer is None


def test_a_config_blob_that_differs_from_its_digest_is_refused() -> None:
    swapped = json.dumps({"spec": {"_meta": {"version": 5}, "nodes": [NODE_RAW]}}).encode()
    registry, node = _registry_with_spec(config=swapped)
    with pytest.raises(VerificationError) as caught:
        fetch_spec_oci(registry, MIRROR, node)  # type: ignore[arg-type]
    assert "but the manifest names" in caught.value.message


def test_a_config_naming_another_tarball_than_the_last_layer_is_refused() -> None:
    registry, node = _registry_with_spec()
    spec = json.loads(next(v for k, v in registry.files.items() if b'"spec"' in v))
    spec["binary_cache_checksum"]["hash"] = "0" * 64
    config = json.dumps(spec).encode()
    tag = spec_tag(node)  # type: ignore[arg-type]
    manifest = json.loads(registry.files[f"{MIRROR}/manifests/{tag}"])
    registry.manifest(tag, registry.blob(config), manifest["layers"])
    with pytest.raises(VerificationError) as caught:
        fetch_spec_oci(registry, MIRROR, node)  # type: ignore[arg-type]
    assert caught.value.reference == "identity-mismatch"


def test_an_index_blob_that_differs_from_its_digest_is_refused() -> None:
    registry = LyingRegistry()
    real = json.dumps({"database": {"version": "8", "installs": {}}}).encode()
    evil = real.replace(b'"8"', b'"9"')  # same length, other bytes
    layer = registry.blob(evil, claimed=real)
    registry.manifest("index.spack", registry.blob(b"{}"), [layer])
    with pytest.raises(VerificationError):
        read_index_oci(registry, MIRROR)
    # a longer lie is stopped by the byte cap (the size the manifest names) before parsing
    registry.files[next(k for k in registry.files if k.endswith(layer["digest"]))] = real + b" "
    with pytest.raises(TransportError):
        read_index_oci(registry, MIRROR)


def test_a_gzip_config_or_oversized_one_is_refused_not_inflated() -> None:
    bomb = gzip.compress(b"{" * 10)
    registry, node = _registry_with_spec(config=bomb)
    with pytest.raises(VerificationError):
        fetch_spec_oci(registry, MIRROR, node)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "document",
    [
        b"[]",
        b'{"schemaVersion": 2, "layers": []}',
        b'{"schemaVersion": 1, "layers": [{"digest": "sha256:' + b"a" * 64 + b'", "size": 1}]}',
        b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",'
        b' "manifests": []}',
        b'{"schemaVersion": 2, "config": {"digest": "md5:x", "size": 1},'
        b' "layers": [{"digest": "sha256:' + b"a" * 64 + b'", "size": 1}]}',
        b'{"schemaVersion": 2, "config": {"digest": "sha256:' + b"a" * 64 + b'", "size": -1},'
        b' "layers": [{"digest": "sha256:' + b"a" * 64 + b'", "size": 1}]}',
        b"[" * 100_000,
    ],
)
def test_malformed_image_manifests_are_refused(document: bytes) -> None:
    with pytest.raises(VerificationError) as caught:
        parse_image_manifest(document, source="oci://r/x/manifests/t")
    assert caught.value.reference == "malformed-metadata"
