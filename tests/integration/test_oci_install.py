"""Installing from an OCI registry (Debian's docker-registry, CNCF distribution 2.8) holding
a build cache pushed the way Spack 1.1 pushes one: anonymous over plain http, with htpasswd
basic auth, and with bearer tokens from a token service; cache roots keyed by the
``oci://`` URL prefix spare a wiped runner the tarball downloads."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest
from oci_harness import Registry, oci_registry, registry_available
from oci_spack_push import FixturePackage, push_fixture_cache
from support import run, write_manifest

pytestmark = pytest.mark.skipif(
    not registry_available(), reason="docker-registry is not installed (.ci/run installs it)"
)

REPOSITORY = "team/spack-cache"


def _manifest(folder: Path, registry: Registry, *, cache: bool = False) -> Path:
    extra = ""
    if cache:
        prefix = registry.mirror_url("").rstrip("/") + "/"
        extra = f'\n[[cache]]\nroot = "{folder.parent / "runner-cache"}"\nprefixes = ["{prefix}"]\n'
    return write_manifest(
        folder,
        specs=["hello-rpath"],
        mirror=registry.mirror_url(REPOSITORY),
        signed=False,
        key_file=None,
        extra=extra,
    )


def _hello_runs(root: Path) -> None:
    (program,) = root.glob("hello-rpath-1.0-*/bin/hello")
    done = subprocess.run([program, "oci"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("hello, oci")
    assert str(program.parent.parent) in done.stdout  # relocated into the new prefix


def _tarball(packages: dict[str, FixturePackage], name: str) -> str:
    return "sha256:" + next(p for p in packages.values() if p.name == name).tarball_sha256


@pytest.fixture(scope="module")
def anonymous(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    with oci_registry(tmp=tmp_path_factory.mktemp("registry")) as registry:
        packages = push_fixture_cache(registry, REPOSITORY)
        yield registry, packages


def test_install_from_an_anonymous_registry_and_run_the_binary(
    tmp_path: Path,
    anonymous: tuple[Registry, dict[str, FixturePackage]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry, _ = anonymous
    manifest = _manifest(tmp_path / "job", registry)
    assert run(manifest, "apply", "--yes") == 0
    _hello_runs(tmp_path / "job" / "opt")
    assert run(manifest, "plan", "--detailed-exitcode") == 0
    capsys.readouterr()
    assert run(manifest, "mirror", "list", "team") == 0
    out = capsys.readouterr().out
    assert "hello-rpath@1.0/vdd2rtu" in out
    assert "specs in mirror 'team' (Spack's OCI format)." in out


def test_wiped_runner_installs_from_the_cache_root_without_a_tarball_download(
    tmp_path: Path, anonymous: tuple[Registry, dict[str, FixturePackage]]
) -> None:
    registry, packages = anonymous
    tarballs = [_tarball(packages, n) for n in ("hello-rpath", "gcc-runtime")]
    before = [registry.blob_gets(d) for d in tarballs]
    first = _manifest(tmp_path / "job-1", registry, cache=True)
    assert run(first, "apply", "--yes") == 0
    after_first = [registry.blob_gets(d) for d in tarballs]
    assert [a - b for a, b in zip(after_first, before, strict=True)] == [1, 1]
    assert list((tmp_path / "runner-cache").rglob("*"))  # the blobs were kept there

    # A new runner: nothing installed, the same cache root (restored by CI from its cache).
    second = _manifest(tmp_path / "job-2", registry, cache=True)
    assert run(second, "apply", "--yes") == 0
    _hello_runs(tmp_path / "job-2" / "opt")
    assert [registry.blob_gets(d) for d in tarballs] == after_first


def test_a_tampered_image_is_refused_before_anything_is_installed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with oci_registry(tmp=tmp_path / "registry") as registry:
        packages = push_fixture_cache(registry, REPOSITORY)
        # Re-tag hello-rpath's image with gcc-runtime's config: a substituted spec.
        from oci_spack_push import SpackPusher

        pusher = SpackPusher(registry, REPOSITORY)
        rpath = next(p for p in packages.values() if p.name == "hello-rpath")
        runtime = next(p for p in packages.values() if p.name == "gcc-runtime")
        pusher.push_package(runtime, packages)
        answer = pusher.session.get(
            f"{pusher.base}/manifests/{runtime.tag}",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        )
        pusher.manifest(rpath.tag, answer.json())
        manifest = _manifest(tmp_path / "job", registry)
        assert run(manifest, "apply", "--yes") == 1
    err = capsys.readouterr().err
    assert "error[identity-mismatch]" in err
    assert "a substituted spec" in err
    assert not (tmp_path / "job" / "opt").exists() or not list(
        (tmp_path / "job" / "opt").glob("hello-rpath-*")
    )


def test_basic_auth_with_credentials_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with oci_registry(tmp=tmp_path / "registry", auth="basic") as registry:
        push_fixture_cache(registry, REPOSITORY, names=["hello-rpath", "gcc-runtime"])
        monkeypatch.setenv("RECONCILE_CA_BUNDLE", str(registry.ca_bundle))
        monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker"))
        manifest = _manifest(tmp_path / "job", registry)

        assert run(manifest, "plan") == 1  # no credentials yet
        err = capsys.readouterr().err
        assert "access denied (HTTP 401" in err
        assert "Docker config.json" in err

        monkeypatch.setenv("RECONCILE_MIRROR_TEAM_USERNAME", registry.user)
        monkeypatch.setenv("RECONCILE_MIRROR_TEAM_PASSWORD", registry.password)
        assert run(manifest, "apply", "--yes") == 0
        _hello_runs(tmp_path / "job" / "opt")

        monkeypatch.setenv("RECONCILE_MIRROR_TEAM_PASSWORD", "wrong-" + registry.password)
        assert run(manifest, "plan", "--json") in (0, 1, 2)
    out, err = capsys.readouterr()
    assert registry.password not in out + err


def test_bearer_tokens_with_credentials_from_docker_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with oci_registry(tmp=tmp_path / "registry", auth="token") as registry:
        push_fixture_cache(registry, REPOSITORY, names=["hello-rpath", "gcc-runtime"])
        monkeypatch.setenv("RECONCILE_CA_BUNDLE", str(registry.ca_bundle))
        docker = tmp_path / "docker"
        docker.mkdir()
        pair = base64.b64encode(f"{registry.user}:{registry.password}".encode()).decode()
        (docker / "config.json").write_text(json.dumps({"auths": {registry.host: {"auth": pair}}}))
        monkeypatch.setenv("DOCKER_CONFIG", str(docker))
        manifest = _manifest(tmp_path / "job", registry)
        assert run(manifest, "apply", "--yes") == 0
        _hello_runs(tmp_path / "job" / "opt")
        assert registry.token_server is not None
        assert (f"repository:{REPOSITORY}:pull", registry.user) in registry.token_server.requests
    out, err = capsys.readouterr()
    assert registry.password not in out + err and pair not in out + err


def test_bearer_token_service_refusing_the_credentials_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with oci_registry(tmp=tmp_path / "registry", auth="token") as registry:
        push_fixture_cache(registry, REPOSITORY, names=["hello-rpath", "gcc-runtime"])
        monkeypatch.setenv("RECONCILE_CA_BUNDLE", str(registry.ca_bundle))
        monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker"))
        monkeypatch.setenv("RECONCILE_MIRROR_TEAM_USERNAME", registry.user)
        monkeypatch.setenv("RECONCILE_MIRROR_TEAM_PASSWORD", "not-the-password")
        manifest = _manifest(tmp_path / "job", registry)
        assert run(manifest, "plan") == 1
    err = capsys.readouterr().err
    assert "token service" in err and "were refused" in err
    assert "not-the-password" not in err
    assert "Traceback" not in err


def test_an_oci_mirror_must_be_declared_unsigned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(
        tmp_path, mirror="oci://ghcr.io/team/cache", signed=True, specs=["hello-rpath"]
    )
    assert run(manifest, "validate") == 1
    assert "expected signed = false on this mirror, or such a [[key]]" in capsys.readouterr().err


def test_anonymous_bearer_tokens_for_a_public_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As ghcr.io serves public packages: a 401 names the token service, which hands out
    pull tokens without credentials."""
    with oci_registry(tmp=tmp_path / "registry", auth="token", anonymous_pull=True) as registry:
        push_fixture_cache(registry, REPOSITORY, names=["hello-rpath", "gcc-runtime"])
        monkeypatch.setenv("RECONCILE_CA_BUNDLE", str(registry.ca_bundle))
        monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker"))
        monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
        manifest = _manifest(tmp_path / "job", registry)
        assert run(manifest, "apply", "--yes") == 0
        _hello_runs(tmp_path / "job" / "opt")
        assert registry.token_server is not None
        assert (f"repository:{REPOSITORY}:pull", "") in registry.token_server.requests


def test_credentials_for_a_plain_http_registry_are_refused_not_sent(
    tmp_path: Path,
    anonymous: tuple[Registry, dict[str, FixturePackage]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry, _ = anonymous
    monkeypatch.setenv("RECONCILE_MIRROR_TEAM_USERNAME", "ci")
    monkeypatch.setenv("RECONCILE_MIRROR_TEAM_PASSWORD", "s3cret-over-http")
    manifest = _manifest(tmp_path / "job", registry)
    assert run(manifest, "plan") == 1
    err = capsys.readouterr().err
    assert "clear text" in err and "s3cret-over-http" not in err
    assert "s3cret" not in registry.log.read_text(errors="replace")
