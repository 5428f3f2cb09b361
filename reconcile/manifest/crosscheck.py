"""Checks that span several tables: unique names, cache roots and sources; keys, mirrors and
signing keys referred to by name are declared; mirrors that reconcile writes to are writable.

They read the plain TOML data rather than the model, so that they still run when some other
part of the manifest is malformed; entries of the wrong type are left to the field checks.
"""

from __future__ import annotations

import os.path
from collections.abc import Iterator
from typing import Any

from reconcile.manifest.checks import source_mirror
from reconcile.manifest.finding import Finding, KeyPath, at_value, format_key_path

# Schemes reconcile reads from but cannot write to yet.
READ_ONLY_SCHEMES = ("http", "https", "s3", "oci", "oci+http")
# Binary mirrors are written through the write seam (transport/store.py): folders and buckets;
# OCI registries through their own writer (buildcache/writer_oci.py).
# Source mirrors are observed on disk, so they are folders.
BINARY_WRITE_SCHEMES = ("s3", "oci", "oci+http")


def _named_entries(data: dict[str, Any], table: str) -> Iterator[tuple[int, dict[str, Any]]]:
    entries = data.get(table)
    if isinstance(entries, list):
        for index, entry in enumerate(entries):
            if isinstance(entry, dict):
                yield index, entry


def _duplicate_names(data: dict[str, Any], table: str, what: str) -> Iterator[Finding]:
    first_use: dict[str, int] = {}
    for index, entry in _named_entries(data, table):
        name = entry.get("name")
        if not isinstance(name, str):
            continue
        if name in first_use:
            earlier = format_key_path((table, first_use[name]))
            yield at_value(
                (table, index, "name"),
                f"duplicate {what} name {name!r} (already used by {earlier}; names must be unique)",
            )
        else:
            first_use[name] = index


def _declared(data: dict[str, Any], table: str) -> list[str]:
    return [
        entry["name"]
        for _, entry in _named_entries(data, table)
        if isinstance(entry.get("name"), str)
    ]


def _undeclared(path: KeyPath, what: str, name: str, declared: list[str]) -> Finding:
    known = (
        f"declared: {', '.join(dict.fromkeys(declared))}"
        if declared
        else f"no [[{what}]] is declared"
    )
    return at_value(path, f"names {what} {name!r}, which is not declared ({known})")


def _undeclared_key_sources(data: dict[str, Any]) -> Iterator[Finding]:
    declared = _declared(data, "mirror")
    for index, entry in _named_entries(data, "key"):
        source = entry.get("source")
        mirror = source_mirror(source) if isinstance(source, str) else None
        if mirror is not None and mirror not in declared:
            yield _undeclared(("key", index, "source"), "mirror", mirror, declared)


def _references(data: dict[str, Any]) -> Iterator[tuple[KeyPath, str, str]]:
    """Every (place, kind, name) where one table names another: [[source]] and [[publish]]
    name a mirror, [[publish]] and a mirror's sign_with name a key."""
    for index, entry in _named_entries(data, "mirror"):
        if isinstance(entry.get("sign_with"), str):
            yield ("mirror", index, "sign_with"), "key", entry["sign_with"]
        elif isinstance(entry.get("sign_with"), list):
            for number, name in enumerate(entry["sign_with"]):
                if isinstance(name, str):
                    yield ("mirror", index, "sign_with", number), "key", name
        if isinstance(entry.get("trust"), list):
            for number, name in enumerate(entry["trust"]):
                if isinstance(name, str):
                    yield ("mirror", index, "trust", number), "key", name
    for table in ("source", "publish"):
        for index, entry in _named_entries(data, table):
            if isinstance(entry.get("mirror"), str):
                yield (table, index, "mirror"), "mirror", entry["mirror"]
            if table == "publish" and isinstance(entry.get("key"), str):
                yield (table, index, "key"), "key", entry["key"]
            elif table == "publish" and isinstance(entry.get("key"), list):
                for number, name in enumerate(entry["key"]):
                    if isinstance(name, str):
                        yield (table, index, "key", number), "key", name


def _undeclared_references(data: dict[str, Any]) -> Iterator[Finding]:
    declared = {"mirror": _declared(data, "mirror"), "key": _declared(data, "key")}
    for path, what, name in _references(data):
        if name not in declared[what]:
            yield _undeclared(path, what, name, declared[what])


def _read_only_scheme(url: object) -> str | None:
    """The scheme of a mirror URL reconcile cannot write to yet (None when it can, or when
    the URL is malformed: the field check reports that)."""
    if not isinstance(url, str) or "://" not in url:
        return None
    scheme = url.split("://", 1)[0].lower()
    return scheme if scheme in READ_ONLY_SCHEMES else None


def _writes_to_read_only_mirrors(data: dict[str, Any]) -> Iterator[Finding]:
    """Sources, published and synced binaries are written by reconcile: binaries to folders
    and buckets, sources to folders. The URL is not echoed (it may carry credentials): its
    scheme says enough."""
    schemes = {
        entry["name"]: _read_only_scheme(entry.get("url"))
        for _, entry in _named_entries(data, "mirror")
        if isinstance(entry.get("name"), str)
    }
    writes: list[tuple[KeyPath, object, bool]] = [
        (("mirror", index, "specs"), entry.get("name"), True)
        for index, entry in _named_entries(data, "mirror")
        if "specs" in entry
    ]
    writes.extend(
        ((table, index, "mirror"), entry.get("mirror"), table == "publish")
        for table in ("source", "publish")
        for index, entry in _named_entries(data, table)
    )
    for path, mirror, binaries in writes:
        scheme = schemes.get(mirror) if isinstance(mirror, str) else None
        if scheme is None or (binaries and scheme in BINARY_WRITE_SCHEMES):
            continue
        if binaries:
            yield at_value(
                path,
                f"mirror {mirror!r} is an {scheme} mirror: reconcile publishes binaries only to "
                "file, s3 and oci mirrors (expected a mirror whose url is a file://, s3:// or "
                "oci:// URL or a plain path)",
            )
        else:
            yield at_value(
                path,
                f"mirror {mirror!r} is an {scheme} mirror: reconcile fills source mirrors only "
                "in folders for now (expected a mirror whose url is a file:// URL or a plain "
                "path)",
            )


def _duplicate_sources(data: dict[str, Any]) -> Iterator[Finding]:
    """One mirror holds one archive per name and version: ``<name>/<name>-<version>.<ext>``."""
    first_use: dict[tuple[str, str, str], int] = {}
    for index, entry in _named_entries(data, "source"):
        name, version, mirror = (entry.get(key) for key in ("name", "version", "mirror"))
        if not (isinstance(name, str) and isinstance(version, str) and isinstance(mirror, str)):
            continue
        identity = (name, version, mirror)
        if identity in first_use:
            earlier = format_key_path(("source", first_use[identity]))
            yield at_value(
                ("source", index),
                f"duplicate source {name}@{version} for mirror {mirror!r} (already declared by "
                f"{earlier}; expected each name and version once per mirror)",
            )
        else:
            first_use[identity] = index


def _duplicate_cache_roots(data: dict[str, Any]) -> Iterator[Finding]:
    """Two [[cache]] tables naming one folder would have its blobs listed, counted and
    collected twice. Roots are compared as written, after folding ``//``, ``/./`` and a
    trailing ``/`` (the manifest's folder is not known here)."""
    first_use: dict[str, int] = {}
    for index, entry in _named_entries(data, "cache"):
        root = entry.get("root")
        if not isinstance(root, str) or not root.strip():
            continue
        folded = os.path.normpath(root)
        if folded in first_use:
            earlier = format_key_path(("cache", first_use[folded]))
            yield at_value(
                ("cache", index, "root"),
                f"cache root {root!r} is already declared by {earlier} (expected each folder "
                "once: put all of its prefixes in one table)",
            )
        else:
            first_use[folded] = index


def _unreachable_requirements(data: dict[str, Any]) -> Iterator[Finding]:
    """``require`` can be met only by that many distinct keys counting for the mirror."""
    declared = _declared(data, "key")
    for index, entry in _named_entries(data, "mirror"):
        require = entry.get("require")
        if not isinstance(require, int) or isinstance(require, bool) or require < 1:
            continue
        trust = entry.get("trust")
        counting = (
            {name for name in trust if isinstance(name, str)}
            if isinstance(trust, list)
            else set(declared)
        )
        if require > len(counting):
            which = "keys in its trust list" if isinstance(trust, list) else "declared keys"
            yield at_value(
                ("mirror", index, "require"),
                f"require = {require}, but only {len(counting)} {which} can sign for this "
                f"mirror (expected at most {len(counting)})",
            )


def _signed_oci_mirrors(data: dict[str, Any]) -> Iterator[Finding]:
    """OCI images carry no GnuPG signature (Spack pushes them unsigned): a signed OCI mirror
    is one whose packages reconcile's sidecar statements vouch for, so the manifest must
    declare an ed25519 or Sigstore key; otherwise the mirror must say ``signed = false``."""
    detached = any(
        entry.get("kind") in ("ed25519", "sigstore") for _, entry in _named_entries(data, "key")
    )
    if detached:
        return
    for index, entry in _named_entries(data, "mirror"):
        url = entry.get("url")
        if not isinstance(url, str) or "://" not in url:
            continue
        scheme = url.split("://", 1)[0].lower()
        if scheme in ("oci", "oci+http") and entry.get("signed") is not False:
            path: KeyPath = ("mirror", index, "signed") if "signed" in entry else ("mirror", index)
            yield at_value(
                path,
                "OCI images carry no GnuPG signature (Spack pushes them unsigned), and no "
                "ed25519 or Sigstore key is declared to check reconcile's sidecar signatures "
                "(expected signed = false on this mirror, or such a [[key]])",
            )


def _views_without_install(data: dict[str, Any]) -> Iterator[Finding]:
    """A view links installed prefixes: it needs the [install] table that installs them."""
    if "install" in data:
        return
    for index, _ in _named_entries(data, "view"):
        yield at_value(
            ("view", index),
            "a view links installed specs, but the manifest has no [install] table (expected "
            "[install] with root and specs)",
        )


def cross_check(data: dict[str, Any]) -> list[Finding]:
    return [
        *_duplicate_names(data, "mirror", "mirror"),
        *_duplicate_names(data, "view", "view"),
        *_views_without_install(data),
        *_duplicate_names(data, "key", "key"),
        *_undeclared_key_sources(data),
        *_duplicate_cache_roots(data),
        *_undeclared_references(data),
        *_duplicate_sources(data),
        *_writes_to_read_only_mirrors(data),
        *_signed_oci_mirrors(data),
        *_unreachable_requirements(data),
    ]
