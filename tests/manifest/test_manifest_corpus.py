"""Golden files: malformed manifests with their exact problems, valid ones with their model,
and the JSON Schema agreeing with the loader on all of them."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tomllib
import urllib.parse
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import tomlkit
from conftest import FIXTURE_FPR, FIXTURE_KEY, REPO, SIGNED_CACHE

from reconcile.errors import ManifestError
from reconcile.manifest.load import load_manifest, loads_manifest
from reconcile.manifest.locate import format_key_path
from reconcile.manifest.model import (
    CacheRoot,
    InstallSettings,
    Key,
    Manifest,
    Mirror,
    Permissions,
    Publish,
    Source,
)

HERE = Path(__file__).parent
INVALID = sorted((HERE / "invalid").glob("*.toml"))
VALID = sorted((HERE / "valid").glob("*.toml"))
EXAMPLES = sorted((REPO / "examples").glob("**/reconcile.toml"))
SCHEMA = json.loads((REPO / "schemas" / "manifest.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def _expected(case: Path) -> tuple[str, list[str]]:
    """The ``# schema: ...`` verdict and the expected problem lines of a corpus case."""
    header, *lines = case.with_suffix(".expected").read_text().splitlines()
    assert header.startswith("# schema: "), f"{case.name}: the .expected file lacks its header"
    verdict = header.removeprefix("# schema: ")
    assert verdict in ("invalid", "valid", "not-toml"), verdict
    return verdict, lines


def _schema_errors(text: str) -> list[str]:
    """Where the schema finds fault, as loader-style key paths (``mirror[1].url``)."""
    data: Any = tomlkit.parse(text).unwrap()
    return [format_key_path(tuple(error.absolute_path)) for error in VALIDATOR.iter_errors(data)]


@pytest.mark.parametrize("case", INVALID + VALID + EXAMPLES, ids=lambda case: case.name)
def test_tomllib_and_tomlkit_read_the_same(case: Path) -> None:
    """The loader reads with tomllib and places problems with tomlkit's reading: on every
    case both refuse the text or both read the same data."""
    text = case.read_bytes().decode("utf-8", errors="replace")
    try:
        fast: Any = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        fast = None
    try:
        located: Any = tomlkit.parse(text).unwrap()
    except tomlkit.exceptions.TOMLKitError:
        located = None
    assert fast == located


def test_the_corpus_is_large_enough() -> None:
    assert len(INVALID) >= 30
    for case in INVALID:
        assert case.with_suffix(".expected").is_file(), case.name


@pytest.mark.parametrize("case", INVALID, ids=[case.stem for case in INVALID])
def test_invalid_manifest_reports_every_problem_in_file_order(case: Path) -> None:
    _, expected = _expected(case)
    assert expected, f"{case.name}: no problems expected?"
    with pytest.raises(ManifestError) as caught:
        loads_manifest(case.read_text(), path=Path("reconcile.toml"))
    assert [str(problem) for problem in caught.value.problems] == expected
    positions = [(problem.line, problem.column) for problem in caught.value.problems]
    assert positions == sorted(positions)
    assert all(line >= 1 and column >= 1 for line, column in positions)
    # What a person sees: a count, every problem, and a hint.
    shown = caught.value.diagnostics()
    assert shown.startswith("error[invalid-manifest]: ")
    assert all(line in shown for line in expected)
    assert "hint: " in shown


@pytest.mark.parametrize("case", INVALID, ids=[case.stem for case in INVALID])
def test_schema_rejects_structural_problems_and_accepts_semantic_ones(case: Path) -> None:
    verdict, _ = _expected(case)
    text = case.read_text()
    if verdict == "not-toml":
        with pytest.raises(tomlkit.exceptions.TOMLKitError):
            tomlkit.parse(text)
    elif verdict == "invalid":
        faults = _schema_errors(text)
        assert faults, f"{case.name}: the schema accepts what the loader refuses"
        # Each fault the schema finds is one the loader reports, at that path or below it.
        with pytest.raises(ManifestError) as caught:
            loads_manifest(text, path=Path("reconcile.toml"))
        reported = [problem.path for problem in caught.value.problems]
        for fault in faults:
            below = (f"{fault}.", f"{fault}[")
            assert any(path == fault or path.startswith(below) for path in reported), (
                fault,
                reported,
            )
    else:
        assert _schema_errors(text) == [], "a semantic problem is also rejected by the schema"


@pytest.mark.parametrize("path", [*VALID, *EXAMPLES], ids=lambda p: str(p.relative_to(REPO)))
def test_valid_manifests_load_and_satisfy_the_schema(path: Path) -> None:
    loaded = load_manifest(path)
    assert loaded.path == path.absolute()
    assert _schema_errors(path.read_text()) == []


def _load_valid(name: str) -> Any:
    return load_manifest(HERE / "valid" / name)


def test_minimal_manifest() -> None:
    assert _load_valid("minimal.toml").manifest == Manifest(version=1)


def test_full_manifest_loads_to_the_expected_model() -> None:
    loaded = _load_valid("full.toml")
    assert loaded.manifest == Manifest(
        version=1,
        install=InstallSettings(
            root="../opt",
            projection="{arch}/{compiler.name}-{compiler.version}/{name}-{version}-{hash:7}",
            padded_length=128,
            specs=(
                "hello-app@3.0",
                "greetlib/yrhiacw",
                "gcc-runtime@=12.2.0",
                "/75b4t5r",
                "hello-app@2.9:3.1",
            ),
            arch="linux-debian12-x86_64_v4",
            permissions=Permissions(read="group", write="group", group="spack"),
        ),
        mirrors=(
            Mirror(name="team", url="file:///shared/mirror"),
            Mirror(
                name="public.cache_2",
                url="https://user:token@mirror.example.org/spack/",
                signed=False,
            ),
            Mirror(name="cloud", url="s3://bucket/spack"),
            Mirror(name="local", url="mirrors/local"),
            Mirror(name="plain-http", url="HTTP://mirror.example.org:8080/spack"),
        ),
        keys=(
            # Spaces and lower case, as gpg prints them, are normalised.
            Key(name="team-gpg", fingerprint=FIXTURE_FPR, file="keys/team.pub"),
            Key(
                name="published",
                fingerprint="0123456789ABCDEF0123456789ABCDEF01234567",
                source="mirror:cloud",
            ),
        ),
    )
    folder = (HERE / "valid").resolve()
    assert loaded.install_root() == folder.parent / "opt"
    assert loaded.resolve("keys/team.pub") == folder / "keys" / "team.pub"
    assert loaded.mirror_url(loaded.manifest.mirror("local")) == (folder / "mirrors/local").as_uri()
    assert loaded.mirror_url(loaded.manifest.mirror("team")) == "file:///shared/mirror"
    assert loaded.manifest.mirror("public.cache_2").signed is False


def test_inline_tables_and_dotted_keys_load_like_headers() -> None:
    assert _load_valid("inline-and-dotted.toml").manifest == Manifest(
        install=InstallSettings(
            root="/srv/spack",
            specs=("hello-app",),
            permissions=Permissions(read="user", write="user"),
        ),
        mirrors=(
            Mirror(name="team", url="file:///shared/mirror"),
            Mirror(name="web", url="https://mirror.example.org", signed=True),
        ),
        keys=(Key(name="team-gpg", fingerprint=FIXTURE_FPR, source="mirror:web"),),
    )


def test_cache_roots_and_s3_options_load_in_manifest_order() -> None:
    loaded = _load_valid("caches.toml")
    assert loaded.manifest.caches == (
        CacheRoot(
            root="/ci-cache/pr-1234",
            prefixes=("https://mirror.example.org/pr-1234/", "s3://bucket/pr-1234"),
        ),
        CacheRoot(
            root="../ci-cache/mirrors",
            prefixes=("/shared/mirror/", "./mirrors/local", "FILE:///srv/spack-mirror"),
        ),
        CacheRoot(root="/ci-cache/shared"),
    )
    assert loaded.manifest.mirrors == (
        Mirror(
            name="s3",
            url="s3://bucket/pr-1234",
            endpoint_url="http://127.0.0.1:9000",
            profile="ci",
        ),
        Mirror(name="aws", url="S3://bucket/spack"),
        Mirror(name="web", url="https://mirror.example.org/pr-1234/"),
    )
    assert loaded.resolve(loaded.manifest.caches[1].root) == (HERE / "ci-cache/mirrors").resolve()


def test_mirrors_split_by_another_table_keep_their_order() -> None:
    loaded = _load_valid("split-mirrors.toml")
    assert [mirror.name for mirror in loaded.manifest.mirrors] == ["first", "second"]
    assert loaded.install_root() == (HERE / "valid" / "opt").resolve()


def test_relative_paths_reach_the_real_fixtures(tmp_path: Path) -> None:
    loaded = _load_valid("fixtures.toml")
    manifest = loaded.manifest
    (key,) = manifest.keys
    assert key.file is not None
    assert loaded.resolve(key.file) == FIXTURE_KEY.resolve()
    url = loaded.mirror_url(manifest.mirror("fixture"))
    assert url == SIGNED_CACHE.resolve().as_uri()
    assert Path(urllib.parse.urlsplit(url).path, "build_cache", "index.json").is_file()
    # The pinned fingerprint is the one real gpg reads from the key file.
    shown = subprocess.run(
        ["gpg", "--batch", "--homedir", str(tmp_path), "--with-colons", "--show-keys"],
        input=loaded.resolve(key.file).read_bytes(),
        capture_output=True,
        check=True,
    ).stdout.decode()
    fingerprints = [line.split(":")[9] for line in shown.splitlines() if line.startswith("fpr:")]
    assert fingerprints[0] == key.fingerprint


def test_digest_is_the_sha256_of_the_file(tmp_path: Path) -> None:
    manifest = tmp_path / "reconcile.toml"
    manifest.write_bytes(
        b'version = 1\r\n[install]\r\nroot = "\xc3\xa9t\xc3\xa9"\r\nspecs = ["a"]\r\n'
    )
    loaded = load_manifest(manifest)
    assert loaded.digest == hashlib.sha256(manifest.read_bytes()).hexdigest()
    assert loaded.manifest.install is not None
    assert loaded.manifest.install.root == "été"
    assert loaded.install_root() == tmp_path / "été"


def test_publishing_tables_load_to_the_expected_model() -> None:
    manifest = _load_valid("publishing.toml").manifest
    assert manifest.mirrors[1:] == (
        Mirror(
            name="team",
            url="mirrors/team",
            layout=2,
            specs=("hello-app@3.0", "greetlib/yrhiacw"),
            sign_with=("team-gpg",),
            permissions=Permissions(read="group", write="group", group="spack"),
        ),
        Mirror(name="sources", url="file:///shared/sources"),
    )
    assert manifest.mirrors[0].layout == 3  # the default
    greetlib_sha = "fa2d16c7c3e49771597f3368c60265178be903aa6705b848ae6a82ef262e98df"
    hello_sha = "7ba9fd213dbd67030b30b08d252aba22e364805d7625e31c21e86b3b5b50fb57"
    assert manifest.sources == (
        Source(
            name="greetlib",
            version="2.1",
            url="https://token:secret@example.org/releases/greetlib-2.1.tar.gz?download=1",
            sha256=greetlib_sha,  # written in upper case, kept in lower case
            mirror="sources",
        ),
        Source(
            name="hello-app",
            version="3.0",
            url="../archives/hello-app-3.0.tar.gz",
            sha256=hello_sha,
            mirror="sources",
        ),
        Source(
            name="hello-app",
            version="3.0",
            url="s3://bucket/archives/hello-app-3.0.tar.gz",
            sha256=hello_sha,
            mirror="team",
        ),
    )
    assert manifest.publish == (
        Publish(specs=("hello-app@3.0",), mirror="team", key=("team-gpg",)),
        Publish(specs=("greetlib",), mirror="sources"),
    )


def test_publishing_problems_point_at_the_mirror_permissions_table_inside_its_mirror() -> None:
    """``[mirror.permissions]`` belongs to the [[mirror]] above it, wherever that is."""
    text = (
        "version = 1\n"
        '[[mirror]]\nname = "a"\nurl = "a"\n'
        '[[mirror]]\nname = "b"\nurl = "b"\nspecs = ["x"]\n'
        '[mirror.permissions]\nread = "group"\nwrite = "world"\n'
        '[[mirror]]\nname = "c"\nurl = "c"\n[mirror.permissions]\nread = "users"\n'
    )
    with pytest.raises(ManifestError) as caught:
        loads_manifest(text, path=Path("m.toml"))
    assert [str(problem) for problem in caught.value.problems] == [
        "m.toml:11:9: mirror[1].permissions.write: write = 'world' is broader than "
        "read = 'group' (expected write no broader than read: widen read or narrow write)",
        "m.toml:16:8: mirror[2].permissions.read: unsupported read scope 'users' "
        "(expected world, group or user)",
    ]
