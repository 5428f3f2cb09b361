"""Plain TOML data <-> the manifest model: the hooks and checks of every field, applied by
plain functions to a good manifest and by cattrs to one that has problems.

Every field has a strict hook (TOML has types: a string is never taken for an integer) that
also runs the field's value check, and cattrs' detailed validation collects every failure
with the attribute or index it happened at. ``findings`` turns that tree of exceptions into
``Finding``s with key paths; nothing stops at the first problem.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import attrs

from reconcile.limits import SETTINGS, Limits
from reconcile.manifest import checks, sigstore_fields
from reconcile.manifest.finding import Finding, KeyPath
from reconcile.manifest.model import (
    SIGSTORE_INSTANCES,
    CacheRoot,
    DriftSettings,
    InstallSettings,
    Key,
    Manifest,
    Mirror,
    Permissions,
    Publish,
    Source,
    View,
)
from reconcile.spack.projection import validate_projection
from reconcile.spack.selector import parse_selector

if TYPE_CHECKING:
    import cattrs

T = TypeVar("T")
Hook = Callable[[Any, Any], Any]

# Attribute names that differ from the TOML keys: ``[[mirror]]`` fills ``Manifest.mirrors``.
TOML_NAMES: dict[type, dict[str, str]] = {
    Manifest: {
        "mirrors": "mirror",
        "keys": "key",
        "caches": "cache",
        "sources": "source",
        "views": "view",
    },
    # ``Key.identity`` is what a signer is recorded as; the TOML ``identity`` is the SAN.
    Key: {"san": "identity"},
}
# Key fields that only a sigstore key takes.
SIGSTORE_ONLY_KEYS = (
    "identity",
    "identity_glob",
    "issuer",
    "trusted_root",
    "instance",
    "signing_config",
)
# Mirror keys that only an s3:// mirror understands.
S3_ONLY_KEYS = ("endpoint_url", "profile")


class _InvalidValueError(Exception):
    """One problem, at the value being structured or at ``subpath`` below it."""

    def __init__(
        self, message: str, *, subpath: KeyPath = (), anchor: Literal["value", "key"] = "value"
    ):
        super().__init__(message)
        self.message = message
        self.subpath = subpath
        self.anchor = anchor


class _ProblemGroupError(Exception):
    """Several problems, each at a path relative to the value being structured."""

    def __init__(self, errors: list[tuple[KeyPath, Exception]]):
        super().__init__(f"{len(errors)} problems")
        self.errors = errors


def toml_keys(cls: type) -> list[str]:
    """The keys a TOML table for ``cls`` may hold, in declaration order."""
    names = TOML_NAMES.get(cls, {})
    return [names.get(field.name, field.name) for field in attrs.fields(cls)]


# --- strict scalar hooks ---------------------------------------------------------------


def _string(value: Any, _: Any = None) -> str:
    if not isinstance(value, str):
        raise _InvalidValueError(f"expected a string, got {checks.describe_type(value)}")
    return value


def _boolean(value: Any, _: Any = None) -> bool:
    if not isinstance(value, bool):
        raise _InvalidValueError(
            f"expected a boolean (true or false), got {checks.describe_type(value)}"
        )
    return value


def _integer(value: Any, _: Any = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _InvalidValueError(f"expected an integer, got {checks.describe_type(value)}")
    return value


def _checked(parse: Callable[[Any], T], check: Callable[[T], str | None]) -> Hook:
    def hook(value: Any, _: Any) -> T:
        parsed = parse(value)
        problem = check(parsed)
        if problem is not None:
            raise _InvalidValueError(problem)
        return parsed

    return hook


def _not_empty(expected: str) -> Hook:
    return _checked(_string, lambda text: checks.check_not_empty(text, expected))


def _fingerprint(value: Any, _: Any) -> str:
    text = _string(value)
    problem = checks.check_fingerprint(text)
    if problem is not None:
        raise _InvalidValueError(problem)
    return checks.normalize_fingerprint(text)


def _sha256(value: Any, _: Any) -> str:
    text = _string(value)
    problem = checks.check_sha256(text)
    if problem is not None:
        raise _InvalidValueError(problem)
    return checks.normalize_sha256(text)


def _specs(value: Any, _: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _InvalidValueError(
            f"expected an array of spec selectors, got {checks.describe_type(value)}"
        )
    if not value:
        raise _InvalidValueError(
            "is empty (expected at least one spec selector such as 'hello-app@3.0')"
        )
    errors: list[tuple[KeyPath, Exception]] = []
    for index, item in enumerate(value):
        try:
            parse_selector(_string(item))
        except _InvalidValueError as exc:
            errors.append(((index,), exc))
        except ValueError as exc:
            errors.append(((index,), _InvalidValueError(str(exc))))
    if errors:
        raise _ProblemGroupError(errors)
    return tuple(value)


def _external_folders(value: Any, _: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _InvalidValueError(
            f"expected an array of absolute folders, got {checks.describe_type(value)}"
        )
    errors: list[tuple[KeyPath, Exception]] = []
    for index, item in enumerate(value):
        try:
            problem = checks.check_external_folder(_string(item))
        except _InvalidValueError as exc:
            errors.append(((index,), exc))
            continue
        if problem is not None:
            errors.append(((index,), _InvalidValueError(problem)))
    if errors:
        raise _ProblemGroupError(errors)
    return tuple(item.rstrip("/") for item in value)


def _ignore_globs(value: Any, _: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _InvalidValueError(
            f"expected an array of path globs, got {checks.describe_type(value)}"
        )
    errors: list[tuple[KeyPath, Exception]] = []
    for index, item in enumerate(value):
        try:
            problem = checks.check_ignore_glob(_string(item))
            if problem is not None:
                raise _InvalidValueError(problem)
        except _InvalidValueError as exc:
            errors.append(((index,), exc))
    if errors:
        raise _ProblemGroupError(errors)
    return tuple(value)


def _moment(value: Any, _: Any) -> datetime.datetime:
    """A TOML offset date-time, or a date (midnight UTC); as a UTC datetime."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            raise _InvalidValueError(
                "expected a date-time with its offset (2026-05-01T00:00:00Z) or a date "
                "(2026-05-01), got a local date-time"
            )
        return value.astimezone(datetime.UTC)
    if isinstance(value, datetime.date):
        return datetime.datetime(value.year, value.month, value.day, tzinfo=datetime.UTC)
    raise _InvalidValueError(
        f"expected a TOML date (2026-05-01) or date-time, got {checks.describe_type(value)}"
    )


def _key_names(value: Any, _: Any) -> tuple[str, ...]:
    """``key = "a"`` or ``key = ["a", "b"]``: the [[key]] names, each once."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names:
        got = "an empty array" if names == [] else checks.describe_type(value)
        raise _InvalidValueError(
            f"expected a key name or a non-empty array of key names, got {got}"
        )
    errors: list[tuple[KeyPath, Exception]] = []
    for index, item in enumerate(names):
        try:
            problem = checks.check_name(_string(item), "key")
            if problem is None and names.index(item) != index:
                problem = f"key {item!r} is named twice"
            if problem is not None:
                raise _InvalidValueError(problem)
        except _InvalidValueError as exc:
            errors.append(((index,) if names is value else (), exc))
    if errors:
        raise _ProblemGroupError(errors)
    return tuple(names)


def _trusted_key_names(value: Any, _: Any) -> tuple[str, ...]:
    """``trust = ["a", "b"]``: an array (a single name reads like a typo of ``sign_with``)."""
    if not isinstance(value, list):
        raise _InvalidValueError(
            f"expected an array of key names, got {checks.describe_type(value)}"
        )
    return _key_names(value, None)


def _cache_prefixes(value: Any, _: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _InvalidValueError(
            f"expected an array of URL prefixes, got {checks.describe_type(value)}"
        )
    if not value:
        # An empty list reads like "no URL", but no prefixes means every URL: say which.
        raise _InvalidValueError(
            "is empty (expected at least one URL prefix; leave 'prefixes' out for a root "
            "that keeps downloads from every URL)"
        )
    errors: list[tuple[KeyPath, Exception]] = []
    for index, item in enumerate(value):
        try:
            problem = checks.check_cache_prefix(_string(item))
        except _InvalidValueError as exc:
            errors.append(((index,), exc))
            continue
        if problem is not None:
            errors.append(((index,), _InvalidValueError(problem)))
    if errors:
        raise _ProblemGroupError(errors)
    return tuple(value)


def _view_projections(value: Any, _: Any) -> dict[str, str]:
    """Spack's view projections: ``all`` or a spec selector -> a path in the view; kept in
    the order written (the first selector that matches a spec wins, ``all`` last)."""
    if not isinstance(value, dict):
        raise _InvalidValueError(
            f'expected a table of selector = projection (all = "{{name}}-{{version}}"), '
            f"got {checks.describe_type(value)}"
        )
    errors: list[tuple[KeyPath, Exception]] = []
    for selector, projection in value.items():
        try:
            if selector != "all":
                try:
                    parse_selector(selector)
                except ValueError as exc:
                    raise _InvalidValueError(
                        f"{exc} (expected 'all' or a spec selector)", anchor="key"
                    ) from None
            problem = validate_projection(_string(projection), unique=False)
            if problem is not None:
                raise _InvalidValueError(problem)
        except _InvalidValueError as exc:
            errors.append(((selector,), exc))
    if errors:
        raise _ProblemGroupError(errors)
    return dict(value)


# --- tables ------------------------------------------------------------------------------


def _table_hook(
    cls: type[T],
    generated: Callable[[Any, Any], T],
    *,
    failed: type[Exception],
    before: Callable[[dict[str, Any]], Iterable[_InvalidValueError]] = lambda _: (),
    after: Callable[[T], Iterable[_InvalidValueError]] = lambda _: (),
) -> Callable[[Any, Any], T]:
    """cattrs' structuring of ``cls`` (``failed``: what it raises), plus checks across its
    fields (on the raw table ``before``, so that they run even when a field fails; on the
    result ``after``)."""

    def hook(value: Any, _: Any) -> T:
        if not isinstance(value, dict):
            raise _InvalidValueError(f"expected a table, got {checks.describe_type(value)}")
        errors: list[tuple[KeyPath, Exception]] = [((), problem) for problem in before(value)]
        try:
            built = generated(value, cls)
        except failed as exc:
            errors.insert(0, ((), exc))
        else:
            errors.extend(((), problem) for problem in after(built))
        if errors:
            raise _ProblemGroupError(errors)
        return built

    return hook


def _require(*names: str) -> Callable[[dict[str, Any]], Iterable[_InvalidValueError]]:
    """Keys the model gives a default but a manifest must still write."""
    return lambda table: [
        _InvalidValueError(f"missing required key {n!r}") for n in names if n not in table
    ]


def _key_fields(table: dict[str, Any]) -> Iterable[_InvalidValueError]:
    """Which fields each kind of key takes."""
    kind = table.get("kind")
    if kind == "sigstore":
        yield from _sigstore_fields(table)
        return
    for name in SIGSTORE_ONLY_KEYS:
        if name in table:
            yield _InvalidValueError(
                f'{name} is for kind = "sigstore" keys', subpath=(name,), anchor="key"
            )
    if kind != "ed25519":
        yield from _require("fingerprint")(table)
        if "public_key" in table:
            yield _InvalidValueError(
                'public_key is for kind = "ed25519" keys (a gpg key takes fingerprint and '
                "file or source)",
                subpath=("public_key",),
                anchor="key",
            )
        yield from _file_or_source(table)
        return
    for name in ("fingerprint", "source"):
        if name in table:
            yield _InvalidValueError(
                f"{name} is for gpg keys (an ed25519 key takes public_key or file)",
                subpath=(name,),
                anchor="key",
            )
    if "file" in table and "public_key" in table:
        yield _InvalidValueError(
            "'file' and 'public_key' are both set (expected exactly one)", subpath=("public_key",)
        )
    elif "file" not in table and "public_key" not in table:
        yield _InvalidValueError(
            "missing 'public_key' or 'file' (expected exactly one: public_key = "
            '"<name>:<base64>" or file = "keys/site.ed25519.pub")'
        )


def _sigstore_fields(table: dict[str, Any]) -> Iterable[_InvalidValueError]:
    for name in ("fingerprint", "source", "public_key", "file"):
        if name in table:
            yield _InvalidValueError(
                f'{name} is not for kind = "sigstore" keys (a sigstore key takes identity or '
                "identity_glob, issuer, and optionally trusted_root or instance)",
                subpath=(name,),
                anchor="key",
            )
    if "identity" in table and "identity_glob" in table:
        yield _InvalidValueError(
            "'identity' and 'identity_glob' are both set (expected exactly one)",
            subpath=("identity_glob",),
        )
    elif "identity" not in table and "identity_glob" not in table:
        yield _InvalidValueError(
            "missing 'identity' or 'identity_glob' (the certificate identity that must have "
            'signed, e.g. identity = "https://github.com/org/repo/.github/workflows/'
            'release.yml@refs/heads/main")'
        )
    if "issuer" not in table:
        yield _InvalidValueError(
            "missing required key 'issuer' (the OIDC issuer of the identity, e.g. "
            '"https://token.actions.githubusercontent.com")'
        )
    if "trusted_root" in table and "instance" in table:
        yield _InvalidValueError(
            "'trusted_root' and 'instance' are both set (expected at most one: a root file, "
            "or a public instance's embedded root)",
            subpath=("instance",),
        )


def _file_or_source(table: dict[str, Any]) -> Iterable[_InvalidValueError]:
    if "file" in table and "source" in table:
        yield _InvalidValueError(
            "'file' and 'source' are both set (expected exactly one)", subpath=("source",)
        )
    elif "file" not in table and "source" not in table:
        yield _InvalidValueError(
            "missing 'file' or 'source' (expected exactly one: file = \"keys/team.pub\" "
            'or source = "mirror:<name>")'
        )


def _s3_only_options(table: dict[str, Any]) -> Iterable[_InvalidValueError]:
    url = table.get("url")
    if not isinstance(url, str) or url.lower().startswith("s3://"):
        return
    for name in S3_ONLY_KEYS:
        if name in table:
            article = "an" if name[0] in "aeiou" else "a"
            yield _InvalidValueError(
                f"only s3:// mirrors take {article} {name} (expected an s3://bucket/prefix "
                f"url, or no {name})",
                subpath=(name,),
            )


def _write_within_read(table: dict[str, Any]) -> Iterable[_InvalidValueError]:
    """On the raw table, so that it is reported even next to an unknown key; scopes that are
    not valid are left to their own checks."""
    defaults = Permissions()
    read, write = table.get("read", defaults.read), table.get("write", defaults.write)
    if read not in checks.READ_SCOPES or write not in checks.WRITE_SCOPES:
        return
    problem = checks.check_write_within_read(read, write)
    if problem is not None:
        yield _InvalidValueError(problem, subpath=("write",))


def _array_of_tables(
    structure: Callable[[Any, type[T]], T],
    cls: type[T],
    what: str,
    caught: tuple[type[Exception], ...],
) -> Hook:
    def hook(value: Any, _: Any) -> tuple[T, ...]:
        if not isinstance(value, list):
            raise _InvalidValueError(
                f"expected an array of tables ([[{what}]]), got {checks.describe_type(value)}"
            )
        built: list[T] = []
        errors: list[tuple[KeyPath, Exception]] = []
        for index, item in enumerate(value):
            try:
                built.append(structure(item, cls))
            except caught as exc:
                errors.append(((index,), exc))
        if errors:
            raise _ProblemGroupError(errors)
        return tuple(built)

    return hook


Before = Callable[[dict[str, Any]], Iterable[_InvalidValueError]]
Structure = Callable[[Any, Any], Any]
_NOTHING_BEFORE: Before = lambda _: ()  # noqa: E731


def _tables(
    structure: Structure, caught: tuple[type[Exception], ...]
) -> dict[type, tuple[dict[str, Hook], Before]]:
    """Each table class's hooks, by attribute name, and its checks across fields on the raw
    table. ``structure(value, cls)`` builds a nested table; ``caught`` are the exceptions it
    raises for a table that has problems (kept per element of an array of tables)."""

    def nested(cls: type) -> Hook:
        return lambda value, _: structure(value, cls)

    limit = _checked(_integer, checks.check_limit)
    return {
        Permissions: (
            {
                "read": _checked(_string, lambda scope: checks.check_scope(scope, "read")),
                "write": _checked(_string, lambda scope: checks.check_scope(scope, "write")),
                "group": _not_empty("a group name"),
            },
            _write_within_read,
        ),
        InstallSettings: (
            {
                "root": _not_empty("a folder, relative to the manifest's folder or absolute"),
                "projection": _checked(_string, validate_projection),
                "padded_length": _checked(_integer, checks.check_padded_length),
                "specs": _specs,
                "arch": _checked(_string, checks.check_arch),
                "permissions": nested(Permissions),
                "externals": _external_folders,
                "prune": _boolean,
                "strict": _boolean,
                "strict_relocation": _boolean,
                "owner": _checked(_string, lambda name: checks.check_name(name, "owner")),
            },
            _require("specs"),
        ),
        Mirror: (
            {
                "name": _checked(_string, lambda name: checks.check_name(name, "mirror")),
                "url": _checked(_string, checks.check_declared_mirror_url),
                "signed": _boolean,
                "endpoint_url": _checked(_string, checks.check_endpoint_url),
                "profile": _checked(_string, checks.check_profile),
                "layout": _checked(_integer, checks.check_layout),
                "specs": _specs,
                "sign_with": _key_names,
                "trust": _trusted_key_names,
                "require": _checked(_integer, checks.check_require),
                "permissions": nested(Permissions),
                "drift_ignore": _ignore_globs,
            },
            _s3_only_options,
        ),
        Source: (
            {
                "name": _checked(
                    _string, lambda name: checks.check_path_component(name, "source name")
                ),
                "version": _checked(
                    _string, lambda text: checks.check_path_component(text, "version")
                ),
                "url": _checked(_string, checks.check_source_url),
                "sha256": _sha256,
                "mirror": _checked(_string, lambda name: checks.check_name(name, "mirror")),
                "size": _checked(_integer, checks.check_limit),
            },
            _NOTHING_BEFORE,
        ),
        Publish: (
            {
                "specs": _specs,
                "mirror": _checked(_string, lambda name: checks.check_name(name, "mirror")),
                "key": _key_names,
                "min_prefix_length": _checked(_integer, checks.check_prefix_length),
                "for_spack": _checked(_string, checks.check_spack_release),
                "consumer_padded_length": _checked(_integer, checks.check_padded_length),
            },
            _NOTHING_BEFORE,
        ),
        CacheRoot: (
            {
                "root": _not_empty("a folder, relative to the manifest's folder or absolute"),
                "prefixes": _cache_prefixes,
            },
            _NOTHING_BEFORE,
        ),
        Key: (
            {
                "name": _checked(_string, lambda name: checks.check_name(name, "key")),
                "kind": _checked(_string, checks.check_key_kind),
                "fingerprint": _fingerprint,
                "file": _not_empty("the path of an armored public key"),
                "source": _checked(_string, checks.check_key_source),
                "public_key": _checked(_string, checks.check_ed25519_public_key),
                "san": _checked(_string, sigstore_fields.check_identity),
                "identity_glob": _checked(_string, sigstore_fields.check_identity_glob),
                "issuer": _checked(_string, sigstore_fields.check_issuer),
                "trusted_root": _not_empty("the path of a Sigstore trusted_root.json"),
                "signing_config": _not_empty("the path of a Sigstore signing_config.json"),
                "instance": _checked(
                    _string, lambda name: sigstore_fields.check_instance(name, SIGSTORE_INSTANCES)
                ),
                "revoked": _boolean,
                "revoked_after": _moment,
            },
            _key_fields,
        ),
        View: (
            {
                "name": _checked(_string, lambda name: checks.check_name(name, "view")),
                "path": _not_empty(
                    "a path for the view's symlink, relative to the manifest's folder"
                ),
                "specs": _specs,
                "run_dependencies": _boolean,
                "link": _checked(_string, checks.check_link_kind),
                "projections": _view_projections,
                "exclude": _ignore_globs,
                "conflicts": _checked(_string, checks.check_conflict_policy),
                "keep": _checked(_integer, checks.check_view_keep),
            },
            _NOTHING_BEFORE,
        ),
        DriftSettings: ({"ignore": _ignore_globs}, _NOTHING_BEFORE),
        Limits: (dict.fromkeys(SETTINGS, limit), _NOTHING_BEFORE),
        Manifest: (
            {
                "version": _checked(_integer, checks.check_version),
                "install": nested(InstallSettings),
                "mirrors": _array_of_tables(structure, Mirror, "mirror", caught),
                "keys": _array_of_tables(structure, Key, "key", caught),
                "caches": _array_of_tables(structure, CacheRoot, "cache", caught),
                "sources": _array_of_tables(structure, Source, "source", caught),
                "publish": _array_of_tables(structure, Publish, "publish", caught),
                "views": _array_of_tables(structure, View, "view", caught),
                "drift": nested(DriftSettings),
                "limits": nested(Limits),
            },
            _require("version"),
        ),
    }


def make_converter() -> cattrs.Converter:
    """A converter that structures TOML data into the model strictly, and back; it says
    exactly what is wrong with a manifest that ``plain_manifest`` does not build."""
    import cattrs
    from cattrs.errors import ClassValidationError
    from cattrs.gen import make_dict_structure_fn, override

    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    caught = (ClassValidationError, _InvalidValueError, _ProblemGroupError)
    for cls, (hooks, before) in _tables(converter.structure, caught).items():
        renames = TOML_NAMES.get(cls, {})
        overrides = {
            name: override(struct_hook=hook, rename=renames.get(name))
            for name, hook in hooks.items()
        }
        generated: Structure = make_dict_structure_fn(cls, converter, **overrides)  # type: ignore[arg-type]
        converter.register_structure_hook(
            cls, _table_hook(cls, generated, failed=ClassValidationError, before=before)
        )
    _register_unstructure(converter)
    return converter


@functools.cache
def converter() -> cattrs.Converter:
    """``make_converter()``, built on first use: for a manifest with problems, or to write one."""
    return make_converter()


class _NotPlainError(Exception):
    """The plain path does not build this table as written; the converter says why."""


def _plain_table(value: Any, cls: type[T]) -> T:
    hooks, before = _plain_tables()[cls]
    if not isinstance(value, dict) or any(True for _ in before(value)):
        raise _NotPlainError
    renames = TOML_NAMES.get(cls, {})
    fields = {
        renames.get(field.name, field.name): field
        for field in attrs.fields(cls)  # type: ignore[arg-type]
    }
    arguments: dict[str, Any] = {}
    for key, item in value.items():
        field = fields.get(key)
        hook = hooks.get(field.name) if field is not None else None
        if field is None or hook is None:
            raise _NotPlainError
        arguments[field.alias] = hook(item, field.type)
    return cls(**arguments)


@functools.cache
def _plain_tables() -> dict[type, tuple[dict[str, Hook], Before]]:
    return _tables(_plain_table, (_InvalidValueError, _ProblemGroupError))


def plain_manifest(data: dict[str, Any]) -> Manifest | None:
    """The manifest built from ``data`` with the converter's own hooks and checks, without
    cattrs (whose import and code generation were a sixth of a plan's start-up); None when
    anything is not right, for the converter to say what. Tests hold the two to the same
    results."""
    try:
        return _plain_table(data, Manifest)
    except (_NotPlainError, _InvalidValueError, _ProblemGroupError, TypeError, ValueError):
        return None


def _register_unstructure(converter: cattrs.Converter) -> None:
    """Defaults are left out (so a dump stays short), except the version."""
    from cattrs.gen import make_dict_unstructure_fn, override

    for cls in (
        Permissions,
        InstallSettings,
        Mirror,
        CacheRoot,
        Key,
        Source,
        Publish,
        View,
        DriftSettings,
        Limits,
        Manifest,
    ):
        renames = TOML_NAMES.get(cls, {})
        overrides = {name: override(rename=toml) for name, toml in renames.items()}
        if cls is Manifest:
            overrides["version"] = override(omit_if_default=False)
        converter.register_unstructure_hook(
            cls,
            make_dict_unstructure_fn(
                cls,
                converter,
                _cattrs_omit_if_default=True,
                **overrides,  # type: ignore[arg-type]
            ),
        )


# --- from exceptions to findings ---------------------------------------------------------


def _unknown_key(cls: type, name: str, path: KeyPath) -> Finding:
    known = toml_keys(cls)
    import difflib  # only for a problem

    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(known)}"
    return Finding(
        path=path, message=f"unknown key {name!r} ({hint})", at=(*path, name), anchor="key"
    )


def findings(exc: BaseException, path: KeyPath = ()) -> list[Finding]:
    """Every problem in an exception raised while structuring, with its key path."""
    from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError

    if isinstance(exc, _InvalidValueError):
        where = (*path, *exc.subpath)
        return [Finding(path=where, message=exc.message, at=where, anchor=exc.anchor)]
    if isinstance(exc, _ProblemGroupError):
        return [found for sub, error in exc.errors for found in findings(error, (*path, *sub))]
    if isinstance(exc, ClassValidationError):
        found: list[Finding] = []
        with_notes, others = exc.group_exceptions()
        renames = TOML_NAMES.get(exc.cl, {})
        for error, note in with_notes:
            name = renames.get(note.name, note.name)
            if isinstance(error, KeyError):
                found.append(Finding(path=path, message=f"missing required key {name!r}", at=path))
            else:
                found.extend(findings(error, (*path, name)))
        for error in others:
            if not isinstance(error, ForbiddenExtraKeysError):
                raise error
            found.extend(_unknown_key(exc.cl, name, path) for name in sorted(error.extra_fields))
        return found
    raise exc


def structure_manifest(data: dict[str, Any]) -> tuple[Manifest | None, list[Finding]]:
    """The manifest built from plain TOML data, or None and every problem found in it."""
    manifest = plain_manifest(data)
    if manifest is not None:
        return manifest, []
    from cattrs.errors import ClassValidationError

    try:
        return converter().structure(data, Manifest), []
    except (ClassValidationError, _InvalidValueError, _ProblemGroupError) as exc:
        return None, findings(exc)
