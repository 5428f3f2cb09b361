"""Properties: load(dump(m)) == m for any valid manifest, and the JSON Schema's patterns agree
with the loader's checks on arbitrary input."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import tomlkit
from conftest import REPO
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from reconcile.errors import ManifestError
from reconcile.manifest import structure
from reconcile.manifest.checks import (
    check_arch,
    check_cache_prefix,
    check_endpoint_url,
    check_fingerprint,
    check_key_source,
    check_mirror_url,
    check_name,
    check_path_component,
    check_profile,
    check_sha256,
    check_source_url,
)
from reconcile.manifest.load import dump_manifest, loads_manifest
from reconcile.manifest.model import (
    CacheRoot,
    InstallSettings,
    Key,
    Manifest,
    Mirror,
    Permissions,
    Publish,
    Source,
    View,
)
from reconcile.manifest.paths import path_findings
from reconcile.spack.projection import validate_projection
from reconcile.spack.selector import parse_selector

SCHEMA = json.loads((REPO / "schemas" / "manifest.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
INSTALL = SCHEMA["properties"]["install"]["properties"]


def _subschema(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """A validator for one property's schema, resolving ``$ref`` against the whole schema."""
    return jsonschema.Draft202012Validator({**schema, "$defs": SCHEMA["$defs"]})


# --- generators of valid manifests ---------------------------------------------------------

names = st.from_regex(r"\A[A-Za-z0-9_.-]{1,16}\Z")
# Any text TOML can hold, including quotes, backslashes, control characters and non-ASCII.
texts = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=24).filter(
    lambda text: text.strip() != ""
)
hosts = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\.[a-z]{2,5}){0,2}\Z")
url_paths = st.from_regex(r"\A(/[A-Za-z0-9._~-]{1,8}){0,3}/?\Z")
plain_paths = texts.filter(lambda text: "://" not in text and text == text.strip())
urls = st.one_of(
    st.builds("file://{}".format, url_paths.filter(lambda path: path.startswith("/"))),
    st.builds("https://{}{}".format, hosts, url_paths),
    st.builds("https://user:secret@{}{}".format, hosts, url_paths),
    st.builds("http://{}:8080{}".format, hosts, url_paths),
    st.builds("s3://{}{}".format, hosts, url_paths),
    plain_paths,
)
endpoint_urls = st.one_of(
    st.builds("http://{}:9000".format, hosts),
    st.builds("https://{}{}".format, hosts, url_paths),
)
cache_prefixes = st.one_of(
    st.builds("https://{}{}".format, hosts, url_paths),
    st.builds("s3://{}{}".format, hosts, url_paths),
    st.builds("file://{}".format, url_paths.filter(lambda path: path.startswith("/"))),
    st.builds("{}{}".format, st.sampled_from(["/", "./", "../"]), plain_paths),
)
package = st.from_regex(r"\A[a-z][a-z0-9-]{0,10}\Z")
version = st.from_regex(r"\A[0-9]{1,3}(\.[0-9]{1,3}){0,2}\Z")
dag_hash = st.from_regex(r"\A[a-z2-7]{1,32}\Z")
selectors = st.one_of(
    package,
    st.builds("{}@{}".format, package, version),
    st.builds("{}@={}".format, package, version),
    st.builds("{}@{}:{}".format, package, version, version),
    st.builds("/{}".format, dag_hash),
    st.builds("{}@{}/{}".format, package, version, dag_hash),
)
projections = st.builds(
    "{}{}{}".format,
    st.sampled_from(["", "{arch}/", "team/{name}/", "{compiler.name}-{compiler.version}/"]),
    st.sampled_from(["{name}-{version}-", "{namespace}.{name}@", "x"]),
    st.sampled_from(["{hash}", "{hash:7}", "{hash:32}", "{hash:1}"]),
)
fingerprints = st.from_regex(r"\A[0-9A-F]{40}\Z")
_SCOPES = ["user", "group", "world"]


@st.composite
def permissions(draw: st.DrawFn) -> Permissions:
    read = draw(st.sampled_from(_SCOPES))
    write = draw(st.sampled_from(_SCOPES[: _SCOPES.index(read) + 1]))
    return Permissions(read=read, write=write, group=draw(st.none() | texts))  # type: ignore[arg-type]


install_settings = st.builds(
    InstallSettings,
    root=texts,
    projection=projections,
    padded_length=st.none() | st.integers(min_value=1, max_value=4096),
    specs=st.lists(selectors, min_size=1, max_size=4).map(tuple),
    arch=st.none() | st.from_regex(r"\A[a-z0-9_]{1,8}-[a-z0-9_.]{1,8}-[a-z0-9_]{1,8}\Z"),
    permissions=st.none() | permissions(),
)


writable_urls = st.one_of(
    st.builds("file://{}".format, url_paths.filter(lambda path: path.startswith("/"))),
    plain_paths,
)
path_components = st.from_regex(r"\A[A-Za-z0-9._+-]{1,12}\Z").filter(
    lambda text: text not in (".", "..")
)
sha256s = st.from_regex(r"\A[0-9a-f]{64}\Z")
archive_names = st.from_regex(r"\A[A-Za-z0-9._-]{0,8}[A-Za-z0-9_-]\.(tar\.gz|tgz|zip|tar)\Z")
source_urls = st.one_of(
    st.builds(
        "https://{}{}/{}".format, hosts, url_paths.map(lambda p: p.rstrip("/")), archive_names
    ),
    st.builds("s3://{}/{}".format, hosts, archive_names),
    st.builds("file:///{}".format, archive_names),
    st.builds("{}/{}".format, plain_paths, archive_names),
)


def _mirrors(draw: st.DrawFn, key_names: list[str]) -> tuple[list[Mirror], list[str]]:
    """Mirrors, and the names of those reconcile may write to (file URLs and plain paths)."""
    mirrors, writable = [], []
    for name in draw(st.lists(names, max_size=4, unique=True)):
        url = draw(st.one_of(urls, writable_urls))
        s3 = url.startswith("s3://")
        can_write = "://" not in url or url.startswith("file://")
        if can_write:
            writable.append(name)
        mirrors.append(
            Mirror(
                name=name,
                url=url,
                signed=draw(st.booleans()),
                endpoint_url=draw(st.none() | endpoint_urls) if s3 else None,
                profile=draw(st.none() | names) if s3 else None,
                layout=draw(st.sampled_from([2, 3])),
                specs=tuple(draw(st.lists(selectors, max_size=3))) if can_write else (),
                sign_with=tuple(draw(st.lists(st.sampled_from(key_names), max_size=2, unique=True)))
                if key_names
                else (),
                permissions=draw(st.none() | permissions()),
            )
        )
    return mirrors, writable


def _sources(draw: st.DrawFn, writable: list[str]) -> tuple[Source, ...]:
    if not writable:
        return ()
    drawn = draw(
        st.lists(
            st.tuples(path_components, path_components, st.sampled_from(writable)),
            max_size=3,
            unique=True,  # one name and version per mirror
        )
    )
    return tuple(
        Source(
            name=name,
            version=version,
            url=draw(source_urls),
            sha256=draw(sha256s),
            mirror=mirror,
        )
        for name, version, mirror in drawn
    )


@st.composite
def manifests(draw: st.DrawFn) -> Manifest:
    key_names = draw(st.lists(names, max_size=3, unique=True))
    mirrors, writable = _mirrors(draw, key_names)
    mirror_names = [mirror.name for mirror in mirrors]
    keys = []
    for name in key_names:
        from_mirror = bool(mirror_names) and draw(st.booleans())
        keys.append(
            Key(
                name=name,
                fingerprint=draw(fingerprints),
                file=None if from_mirror else draw(texts),
                source=f"mirror:{draw(st.sampled_from(mirror_names))}" if from_mirror else None,
            )
        )
    # Roots are unique once ``//``, ``/./`` and a trailing ``/`` are folded: "x" + index.
    caches = tuple(
        CacheRoot(
            root=f"{draw(plain_paths)}/{index}",
            prefixes=tuple(draw(st.lists(cache_prefixes, max_size=3))),
        )
        for index in range(draw(st.integers(min_value=0, max_value=3)))
    )
    publish = tuple(
        Publish(
            specs=tuple(draw(st.lists(selectors, min_size=1, max_size=3))),
            mirror=draw(st.sampled_from(writable)),
            key=tuple(draw(st.lists(st.sampled_from(key_names), max_size=2, unique=True)))
            if key_names
            else (),
        )
        for _ in range(draw(st.integers(min_value=0, max_value=2) if writable else st.just(0)))
    )
    install = draw(st.none() | install_settings)
    return Manifest(
        install=install,
        mirrors=tuple(mirrors),
        keys=tuple(keys),
        caches=caches,
        sources=_sources(draw, writable),
        publish=publish,
        views=draw(views()) if install is not None else (),
    )


view_projections = st.builds(
    "{}{}".format,
    st.sampled_from(["", "apps/", "{arch}/"]),
    st.sampled_from(["{name}", "{name}-{version}", "{name}/{hash:7}", "x"]),
)


@st.composite
def views(draw: st.DrawFn) -> tuple[View, ...]:
    """Views (they need [install]): unique names and paths."""
    names = draw(st.lists(st.from_regex(r"\A[a-z][a-z0-9_.-]{0,8}\Z"), max_size=3, unique=True))
    return tuple(
        View(
            name=name,
            path=f"views/{index}",
            specs=draw(st.none() | st.lists(selectors, min_size=1, max_size=3).map(tuple)),
            run_dependencies=draw(st.booleans()),
            link=draw(st.sampled_from(["symlink", "hardlink", "copy"])),
            projections=draw(
                st.dictionaries(st.just("all") | selectors, view_projections, max_size=3)
            ),
            exclude=tuple(draw(st.lists(st.sampled_from(["share/doc/**", "*.la", "**/x"])))),
            conflicts=draw(st.sampled_from(["error", "first"])),
            keep=draw(st.integers(min_value=1, max_value=1000)),
        )
        for index, name in enumerate(names)
    )


@settings(max_examples=150, deadline=None)
@given(manifests())
def test_dump_then_load_gives_the_same_manifest(manifest: Manifest) -> None:
    text = dump_manifest(manifest)
    # Roots drawn as any text may name a system folder or overlap one another; those are
    # refused on purpose (tests/manifest/test_manifest_paths.py), not round-tripped.
    assume(path_findings(tomlkit.parse(text).unwrap(), Path.cwd()) == [])
    assert loads_manifest(text, path=Path("reconcile.toml")).manifest == manifest
    # What reconcile writes, editors accept too.
    assert list(VALIDATOR.iter_errors(tomlkit.parse(text).unwrap())) == []


def _leaf_paths(value: Any, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    if isinstance(value, dict):
        return [path] + [p for key, item in value.items() for p in _leaf_paths(item, (*path, key))]
    if isinstance(value, list):
        return [path] + [
            p for index, item in enumerate(value) for p in _leaf_paths(item, (*path, index))
        ]
    return [path]


@settings(max_examples=60, deadline=None)
@given(manifest=manifests(), data=st.data())
def test_the_plain_path_builds_what_cattrs_builds(manifest: Manifest, data: st.DataObject) -> None:
    """A good manifest is built without cattrs, by the converter's own hooks: into what the
    converter builds, and never when the converter finds a problem (it is left to say what)."""
    import cattrs

    raw: Any = tomllib.loads(dump_manifest(manifest))
    for _ in range(data.draw(st.integers(0, 2), label="changes")):
        *parent_path, last = data.draw(st.sampled_from(_leaf_paths(raw)[1:]), label="at")
        parent = raw
        for part in parent_path:
            parent = parent[part]
        change = data.draw(st.sampled_from(["drop", "unknown", "value"]), label="change")
        if change == "drop" and isinstance(parent, dict):
            del parent[last]
        elif change == "unknown" and isinstance(parent, dict):
            parent[f"{last}x"] = 1
        else:
            parent[last] = data.draw(
                st.sampled_from([0, -1, 7, "", "x", "/abs", True, 1.5, [], ["x"], {}, {"a": 1}]),
                label="value",
            )
    plain = structure.plain_manifest(raw)
    try:
        expected = structure.converter().structure(raw, Manifest)
    except (cattrs.BaseValidationError, structure._InvalidValueError, structure._ProblemGroupError):
        expected = None
    assert plain == expected


def test_dump_is_readable_toml() -> None:
    manifest = Manifest(
        install=InstallSettings(root="opt", specs=("hello-app@3.0",)),
        mirrors=(Mirror(name="team", url="file:///shared/mirror"),),
        keys=(Key(name="team-gpg", fingerprint="A" * 40, source="mirror:team"),),
    )
    assert dump_manifest(manifest) == (
        "version = 1\n\n"
        '[install]\nroot = "opt"\nspecs = ["hello-app@3.0"]\n\n'
        '[[mirror]]\nname = "team"\nurl = "file:///shared/mirror"\n\n'
        f'[[key]]\nname = "team-gpg"\nfingerprint = "{"A" * 40}"\nsource = "mirror:team"\n'
    )


# --- the schema and the loader agree on single values ---------------------------------------


def _selector_ok(text: str) -> bool:
    try:
        parse_selector(text)
    except ValueError:
        return False
    return True


MIRROR = SCHEMA["$defs"]["mirror"]["properties"]
KEY = SCHEMA["$defs"]["key"]["properties"]
# (schema of one value, the loader's verdict on it, fragments to build test strings from)
AGREEMENTS: dict[str, tuple[dict[str, Any], Callable[[str], bool], list[str]]] = {
    "url": (
        MIRROR["url"],
        lambda url: check_mirror_url(url) is None,
        [
            *["http", "https", "HTTPS", "s3", "file", "ftp", "://", "/", "@", ":", "user", "\n"],
            *["host", "localhost", " ", "?", "#", "x", ":8080", ":99999", "[::1]", "[", "]"],
            *["oci", "oci+http", "OCI", "oci://host/", "team/", "a-b", "A", "__", "."],
        ],
    ),
    "cache prefix": (
        SCHEMA["$defs"]["cache_prefix"],
        lambda prefix: check_cache_prefix(prefix) is None,
        [
            *["http", "https", "s3", "FILE", "file", "ftp", "://", "/", "./", "../", ".", "@"],
            *[":", "user", "host", "localhost", " ", "\n", "?", "#", ":8080", "[::1]", "x"],
            *["oci", "oci+http", "oci://host/", "team/", "A", "-"],
        ],
    ),
    "endpoint url": (
        MIRROR["endpoint_url"],
        lambda url: check_endpoint_url(url) is None,
        [
            *["http", "https", "HTTP", "s3", "file", "://", "/", "@", ":", "user", "\n", " "],
            *["host", "127.0.0.1", ":9000", ":99999", "[::1]", "?", "#", "[", "]"],
        ],
    ),
    "profile": (
        MIRROR["profile"],
        lambda p: check_profile(p) is None,
        ["ci", " ", "\n", "\t", "-"],
    ),
    "projection": (
        INSTALL["projection"],
        lambda projection: validate_projection(projection) is None,
        [
            *["{name}", "{hash}", "{hash:7}", "{hash:0}", "{hash:40}", "{hash:032}", "{bad}"],
            *["{", "}", "/", ".", "..", "a", "-", "\\", "{arch}", "{compiler.name}", "\n"],
        ],
    ),
    "name": (MIRROR["name"], lambda name: check_name(name, "mirror") is None, list("ab_.- \n/Z9")),
    "source": (
        KEY["source"],
        lambda source: check_key_source(source) is None,
        ["mirror:", "mirror", ":", "a", "b", " ", "\n", "-", "/"],
    ),
    "source url": (
        SCHEMA["$defs"]["source"]["properties"]["url"],
        lambda url: check_source_url(url) is None,
        [
            *["https", "http", "s3", "file", "ftp", "://", "/", "x.tar.gz", "@", ":", "user"],
            *["host", "localhost", " ", "?", "#", "x", "\n", "[::1]", "bucket", "."],
        ],
    ),
    "source name": (
        SCHEMA["$defs"]["path_component"],
        lambda name: check_path_component(name, "source name") is None,
        [*"ab9_.+-/ \n@Z", ".."],
    ),
    "sha256": (
        SCHEMA["$defs"]["source"]["properties"]["sha256"],
        lambda text: check_sha256(text) is None,
        ["0123456789abcdef" * 2, "0123456789ABCDEF", "0", "g", " ", "\n", "sha256:"],
    ),
    "arch": (
        INSTALL["arch"],
        lambda arch: check_arch(arch) is None,
        ["linux", "-", "x86_64", " ", "\n", "a", "--"],
    ),
    "fingerprint": (
        KEY["fingerprint"],
        lambda fingerprint: check_fingerprint(fingerprint) is None,
        ["0123456789", "ABCDEF", "abcdef", " ", "\n", "g", "0"],
    ),
}


SELECTOR_FRAGMENTS = [*"ab9_@=:./ \t-+~%^z27XQ\n", "gcc", "shared", "target="]


@settings(max_examples=600, deadline=None)
@given(data=st.data())
def test_schema_accepts_every_selector_the_loader_accepts(data: st.DataObject) -> None:
    # Spack's syntax has rules a pattern cannot say (a name first, nothing given twice):
    # the schema may accept more than validate, never less.
    text = data.draw(st.lists(st.sampled_from(SELECTOR_FRAGMENTS), max_size=12).map("".join))
    if _selector_ok(text):
        assert _subschema(INSTALL["specs"]["items"]).is_valid(text), text


@pytest.mark.parametrize(
    "text", ["hello-app", "hello-app@3.0 %gcc@12 +shared target=x86_64_v4", "/d7r6xmz", "^zlib"]
)
def test_schema_selector_examples(text: str) -> None:
    assert _subschema(INSTALL["specs"]["items"]).is_valid(text)


@pytest.mark.parametrize("text", ["", "hello app!", "a@", "/XYZ", "a %", "a$b"])
def test_schema_and_loader_refuse_malformed_selectors(text: str) -> None:
    assert not _selector_ok(text)
    assert not _subschema(INSTALL["specs"]["items"]).is_valid(text)


@pytest.mark.parametrize("what", list(AGREEMENTS))
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_schema_patterns_agree_with_the_loader(what: str, data: st.DataObject) -> None:
    schema, loader_accepts, fragments = AGREEMENTS[what]
    text = data.draw(st.lists(st.sampled_from(fragments), max_size=12).map("".join))
    assert _subschema(schema).is_valid(text) == loader_accepts(text), text


def test_manifest_error_lists_every_problem() -> None:
    text = 'version = 3\n[install]\nroot = 1\nspecs = []\n[[mirror]]\nname = ""\nurl = "ftp://x"\n'
    try:
        loads_manifest(text, path=Path("m.toml"))
    except ManifestError as error:
        assert [str(p) for p in error.problems] == [
            "m.toml:1:11: version: unsupported manifest version 3 (expected 1)",
            "m.toml:3:8: install.root: expected a string, got an integer",
            "m.toml:4:9: install.specs: is empty (expected at least one spec selector such as "
            "'hello-app@3.0')",
            "m.toml:6:8: mirror[0].name: the mirror name is empty (expected letters, digits, "
            "'_', '.' and '-')",
            "m.toml:7:7: mirror[0].url: unsupported scheme 'ftp' (expected file, http, https, s3, "
            "oci, oci+http)",
        ]
        assert error.diagnostics().startswith("error[invalid-manifest]: 5 problems in the manifest")
    else:
        raise AssertionError("the manifest loaded")
