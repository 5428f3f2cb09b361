"""Pushes a build cache into a test registry the way ``spack buildcache push oci://...``
(Spack 1.1, ``binary_distribution._oci_push``) does, with plain HTTP requests and nothing
from reconcile, so that reading tests check reconcile against Spack's format, not its own.

The packages are the ones Spack 1.1 pushed into ``../shared/fixtures/spack1-v3-signed``:
their tarballs become layers (the spec's link/run closure, dependencies first, its own
last), their spec becomes the image config (Spack's default config plus the spec dict,
``buildcache_layout_version``, ``binary_cache_checksum``, ``archive_size`` ...), the tag is
``<name>-<version>-<hash>.spack``, and ``index.spack`` names the index blob Spack wrote.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import requests
from conftest import FIXTURES
from oci_harness import Registry

SPACK1 = FIXTURES / "spack1-v3-signed"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


def _json_between(text: bytes) -> dict[str, Any]:
    """The JSON of a (possibly clear-signed) v3 manifest of the fixture."""
    raw = text.decode()
    start, end = raw.index("{"), raw.rindex("}") + 1
    document: dict[str, Any] = json.loads(raw[start:end])
    return document


def _blob_path(sha256: str) -> Path:
    return SPACK1 / "blobs" / "sha256" / sha256[:2] / sha256


class FixturePackage:
    def __init__(self, manifest: Path) -> None:
        records = _json_between(manifest.read_bytes())["data"]
        kinds = {r["mediaType"].split(".")[2]: r for r in records}  # vnd.spack.<kind>...
        tarball, spec = kinds["install"], kinds["spec"]
        self.tarball_sha256: str = tarball["checksum"]
        self.tarball_size: int = tarball["contentLength"]
        blob = _blob_path(spec["checksum"]).read_bytes()
        self.spec: dict[str, Any] = json.loads(gzip.decompress(blob))
        root = self.spec["spec"]["nodes"][0]
        self.name, self.version, self.hash = root["name"], root["version"], root["hash"]
        self.nodes = {node["hash"]: node for node in self.spec["spec"]["nodes"]}

    @property
    def tag(self) -> str:
        return f"{self.name}-{self.version}-{self.hash}.spack"

    @property
    def tarball(self) -> Path:
        return _blob_path(self.tarball_sha256)

    def closure(self) -> list[str]:
        """Non-external link/run closure, dependencies first, the package itself last."""
        order: list[str] = []

        def visit(dag_hash: str) -> None:
            if dag_hash in order:
                return
            node = self.nodes[dag_hash]
            for dep in node.get("dependencies", []):
                types = dep.get("parameters", {}).get("deptypes", [])
                if {"link", "run"} & set(types) and not self.nodes[dep["hash"]].get("external"):
                    visit(dep["hash"])
            order.append(dag_hash)

        visit(self.hash)
        return order


def fixture_packages() -> dict[str, FixturePackage]:
    packages = [FixturePackage(p) for p in sorted((SPACK1 / "v3/manifests/spec").rglob("*.json"))]
    return {p.hash: p for p in packages}


def fixture_index_blob() -> bytes:
    index = _json_between((SPACK1 / "v3/manifests/index/index.manifest.json").read_bytes())
    return _blob_path(index["data"][0]["checksum"]).read_bytes()


class SpackPusher:
    """Raw registry API calls, authorized the simplest way each harness registry allows."""

    def __init__(self, registry: Registry, repository: str) -> None:
        self.registry, self.repository = registry, repository
        self.session = requests.Session()
        self.session.trust_env = False
        self.verify: bool | str = str(registry.ca_bundle) if registry.tls else True
        if registry.auth == "basic":
            self.session.auth = (registry.user, registry.password)
        elif registry.auth == "token":
            assert registry.token_server is not None
            scope = f"repository:{repository}:pull,push"
            token = registry.token_server.token(scope, registry.user)
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.base = f"{registry.api}{repository}"

    def blob(self, data: bytes) -> dict[str, Any]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        started = self.session.post(f"{self.base}/blobs/uploads/", verify=self.verify)
        assert started.status_code == 202, started.text
        location = requests.compat.urljoin(self.registry.api, started.headers["Location"])
        joiner = "&" if "?" in location else "?"
        done = self.session.put(
            f"{location}{joiner}digest={digest}",
            data=data,
            headers={"Content-Type": "application/octet-stream"},
            verify=self.verify,
        )
        assert done.status_code == 201, done.text
        return {"digest": digest, "size": len(data)}

    def manifest(self, tag: str, document: dict[str, Any]) -> str:
        data = json.dumps(document, separators=(",", ":")).encode()
        put = self.session.put(
            f"{self.base}/manifests/{tag}",
            data=data,
            headers={"Content-Type": document["mediaType"]},
            verify=self.verify,
        )
        assert put.status_code == 201, put.text
        return "sha256:" + hashlib.sha256(data).hexdigest()

    def push_package(self, package: FixturePackage, packages: dict[str, FixturePackage]) -> None:
        layers = []
        for dag_hash in package.closure():
            layer = self.blob(packages[dag_hash].tarball.read_bytes())
            layers.append({"mediaType": OCI_LAYER, **layer})
        config = {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
            "config": {"Env": ["PATH=/bin:/usr/bin"]},
            **package.spec,
            "buildcache_layout_version": 3,
            "binary_cache_checksum": {"hash_algorithm": "sha256", "hash": package.tarball_sha256},
            "archive_size": package.tarball_size,
            "archive_timestamp": "2025-11-20T10:00:00+00:00",
            "archive_compression": "gzip",
        }
        config_record = self.blob(json.dumps(config, separators=(",", ":")).encode())
        self.manifest(
            package.tag,
            {
                "mediaType": OCI_MANIFEST,
                "schemaVersion": 2,
                "config": {"mediaType": OCI_CONFIG, **config_record},
                "layers": layers,
                "annotations": {
                    "org.opencontainers.image.description": f"{package.name}@{package.version}"
                },
            },
        )

    def push_index(self, index: bytes) -> None:
        empty = self.blob(b"{}")
        layer = self.blob(index)
        self.manifest(
            "index.spack",
            {
                "mediaType": OCI_MANIFEST,
                "schemaVersion": 2,
                "config": {"mediaType": OCI_CONFIG, **empty},
                "layers": [{"mediaType": OCI_LAYER, **layer}],
            },
        )


def push_fixture_cache(
    registry: Registry, repository: str, names: Iterable[str] | None = None
) -> dict[str, FixturePackage]:
    """Push the Spack 1.1 fixture's packages (all, or those named) and its index."""
    packages = fixture_packages()
    pusher = SpackPusher(registry, repository)
    for package in packages.values():
        if names is None or package.name in names:
            pusher.push_package(package, packages)
    pusher.push_index(fixture_index_blob())
    return packages
