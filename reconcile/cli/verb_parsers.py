"""The parsers of the verbs with sub-verbs or options of their own (bundle, cache, drift,
init, keys, lock, locks, mirror, generations, rollback, env): argparse only, so that the
parser builds without importing what the verbs run (see parser.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from reconcile.manifest.kinds import GENERATED_KEY_KINDS
from reconcile.trust.key_algorithms import ALGORITHMS

HOME_HELP = (
    "the GnuPG home holding the signing keys (default: $RECONCILE_SIGNING_HOME, else "
    "reconcile's key folder and then $GNUPGHOME or ~/.gnupg)"
)


def add_bundle_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    bundle = subparsers.add_parser(
        "bundle", help="export or import an air-gapped bundle of everything the manifest needs"
    )
    actions = bundle.add_subparsers(dest="bundle_command", required=True, metavar="ACTION")
    export = actions.add_parser(
        "export",
        help="write one tar archive with the closure, sources, keys and a manifest for them",
        description="Plan the manifest against an empty install root and write everything the "
        "plan fetches (signed spec metadata and tarballs, in the mirror's layout), the "
        "[[source]] archives and the pinned keys into OUT, with a manifest that uses them.",
    )
    export.add_argument("--out", type=Path, metavar="FILE", help="the archive to write (.tar)")
    # the old spelling, a positional OUT.tar, kept working with a warning
    export.add_argument("out_positional", nargs="?", type=Path, help=argparse.SUPPRESS)
    export.add_argument("--json", action="store_true", help="print the result as JSON")
    importing = actions.add_parser(
        "import",
        help="verify a bundle and unpack it into a new folder, or write it into a mirror",
        description="Check every member of the bundle against its bundle.json, unpack it, "
        "verify every signature with the keys its manifest pins, then move it to DEST (a "
        "folder that must not exist or be empty). When DEST is a mirror URL (s3://bucket/prefix "
        "or file:///path), the verified tarballs, then their signed metadata, then the index "
        "entries are written into that mirror instead; --out DIR receives a manifest and keys "
        "that read it.",
    )
    importing.add_argument("bundle", metavar="BUNDLE.tar", type=Path)
    importing.add_argument("dest", metavar="DEST", help="a new folder, or a mirror URL")
    importing.add_argument(
        "--endpoint-url", metavar="URL", help="s3 only: an S3-compatible service (MinIO, Ceph)"
    )
    importing.add_argument("--profile", metavar="NAME", help="s3 only: the AWS profile to use")
    importing.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="with a mirror URL: a new folder for the bundle's manifest and keys, reading it",
    )
    importing.add_argument("--json", action="store_true", help="print the result as JSON")


def add_cache_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    cache = subparsers.add_parser(
        "cache", help="list or clean the cache roots of downloaded tarballs"
    )
    actions = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list",
        help="show each cache root with its blobs",
        description="Show each [[cache]] root of the manifest: its URL prefixes, how many "
        "blobs it holds, their size, and when each was last used. Reads only.",
    )
    listing.add_argument("--json", action="store_true", help="print the listing as JSON")
    collect = actions.add_parser(
        "gc",
        help="remove blobs the manifest does not need, least recently used first",
        description="Remove blobs unused for longer than --older-than, then the least "
        "recently used ones until the roots hold at most --max-size. Blobs the manifest still "
        "needs (what its plan would install, what its installed specs came from) are kept.",
    )
    collect.add_argument(
        "--max-size", metavar="SIZE", help="keep at most this much: 1234, 500M, 10GiB, 2GB"
    )
    collect.add_argument(
        "--older-than", metavar="AGE", help="remove blobs unused for this long: 30m, 12h, 7d"
    )
    collect.add_argument("--dry-run", action="store_true", help="only say what would go")
    collect.add_argument("--json", action="store_true", help="print the report as JSON")


def add_drift_parser(
    subparsers: argparse._SubParsersAction[Any], jobs_type: Any, jobs: int
) -> None:
    drift = subparsers.add_parser(
        "drift",
        help="audit the install tree against what reconcile recorded (read-only)",
        description="Compare every prefix reconcile installed with its install record (files "
        "modified, missing or added, modes, owner group, link targets), and the records with "
        "the manifest (declared specs missing, installs no longer declared, signers no longer "
        "pinned), and report leftovers of interrupted runs. Reads only and takes no lock, so "
        "it never blocks an apply. Exits 0 when nothing drifted, 2 when something did, 1 on "
        "error.",
    )
    drift.add_argument(
        "--check-contents",
        action="store_true",
        help="hash every file (default: hash only files whose size or mtime changed)",
    )
    drift.add_argument("--json", action="store_true", help="print the report as JSON")
    drift.add_argument("--junit", type=Path, metavar="FILE", help="also write JUnit XML to FILE")
    drift.add_argument(
        "-j",
        "--jobs",
        type=jobs_type,
        default=jobs,
        help="check up to N prefixes at once (default: the number of CPUs, at most 8)",
    )


def add_init_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    init = subparsers.add_parser(
        "init",
        help="write a starting manifest for a binary cache",
        description="Write a manifest (the -m path, default ./reconcile.toml) that installs "
        "specs from the mirror at --mirror into --root. The keys the mirror publishes are "
        "listed with their fingerprints: check each with its owner, then pass it with "
        "--trust to write its [[key]] active (otherwise the entry is written commented out). "
        "An existing manifest is never overwritten.",
    )
    init.add_argument("--mirror", required=True, metavar="URL", help="the binary cache")
    init.add_argument(
        "--spec", action="append", default=[], metavar="SELECTOR", help="a spec to install"
    )
    init.add_argument(
        "--trust",
        action="append",
        default=[],
        metavar="FINGERPRINT",
        help="a published key's fingerprint, checked out of band",
    )
    init.add_argument("--root", default="opt", help="the install root (default: opt)")


def add_keys_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    keys = subparsers.add_parser("keys", help="make, list and export the keys that sign caches")
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")

    generate = actions.add_parser(
        "generate",
        help="make a signing key and print its [[key]] entry for the manifest",
        description="Make a signing key without a passphrase in a private GnuPG home (default: "
        "$RECONCILE_SIGNING_HOME, else $XDG_DATA_HOME/reconcile/keys, i.e. "
        "~/.local/share/reconcile/keys), write its public key next to the manifest and print "
        "the [[key]] entry that pins it. The entry goes to standard output, notes to standard "
        "error, so 'reconcile keys generate NAME >> reconcile.toml' works.",
    )
    generate.add_argument("name", metavar="NAME", help="the key's name in the manifest")
    generate.add_argument(
        "--kind", default="gpg", help=f"the key kind: {', '.join(GENERATED_KEY_KINDS)}"
    )
    generate.add_argument("--email", help="the user id's address (default: user@host)")
    generate.add_argument("--home", type=Path, help="the GnuPG home to make the key in")
    generate.add_argument(
        "--algorithm",
        choices=ALGORITHMS,
        default="ed25519",
        help="ed25519 (default, fast) or rsa4096 (what 'spack gpg create' makes)",
    )
    generate.add_argument(
        "--out",
        dest="public_out",
        type=Path,
        metavar="FILE",
        help="where to write the public key (default: keys/NAME.pub next to the manifest)",
    )
    # the old spelling, kept working with a warning
    generate.add_argument(
        "--public-out", dest="public_out_deprecated", type=Path, help=argparse.SUPPRESS
    )
    generate.add_argument(
        "--json", action="store_true", help="print the key and its [[key]] entry as JSON"
    )

    listing = actions.add_parser(
        "list",
        help="show the signing keys and the [[key]] they match",
        description="Show the secret keys in reconcile's private keystore, with their "
        "fingerprints and the manifest's [[key]] entries that pin them.",
    )
    listing.add_argument("--home", type=Path, help=HOME_HELP)
    listing.add_argument("--json", action="store_true", help="print the listing as JSON")

    export = actions.add_parser(
        "export",
        help="print a signing key's public key, or back up its secret key",
        description="Print the armored public key of a signing key (named by the manifest's "
        "[[key]] name, a fingerprint, or its user id), or with --secret write its secret key "
        "to a new file of mode 0600 for a backup.",
    )
    export.add_argument("key", metavar="NAME|FINGERPRINT")
    export.add_argument("--home", type=Path, help=HOME_HELP)
    export.add_argument("--secret", action="store_true", help="export the secret key (needs --out)")
    export.add_argument("--out", type=Path, metavar="FILE", help="write to FILE, not stdout")
    export.add_argument("--json", action="store_true", help="print the result as JSON")


def add_locks_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    locks = subparsers.add_parser(
        "locks",
        help="show who holds the install root's lock",
        description="Show whether a run holds the install root's lock and who it is (host, "
        "pid, user, start time, command), without taking the lock: plan and drift never "
        "block an apply, and this works for a user who may only read the tree. Exits 0 when "
        "the lock is free, 2 when it is held.",
    )
    locks.add_argument("--json", action="store_true", help="print the answer as JSON")


def add_mirror_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    mirror = subparsers.add_parser("mirror", help="look into the manifest's mirrors")
    actions = mirror.add_subparsers(dest="mirror_command", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list",
        help="show the specs a mirror offers",
        description="List the specs in a declared mirror's index (binary packages only, not "
        "externals), optionally those matching a selector in Spack's syntax. The index is not "
        "signed: what is installed from it is verified spec by spec.",
    )
    listing.add_argument("name", help="a [[mirror]] name from the manifest")
    listing.add_argument("selector", nargs="?", help="only specs matching this selector")
    listing.add_argument("--json", action="store_true", help="print the list as JSON")


# The shells 'reconcile env' writes for (views/environment.py renders them).
ENV_SHELLS = ("sh", "csh", "fish")


def add_views_parsers(subparsers: argparse._SubParsersAction[Any], positive: Any) -> None:
    generations = subparsers.add_parser(
        "generations",
        help="list a view's generations",
        description="List the generations of a [[view]] kept beside it: number, when it was "
        "built, what it links, and which one the view points at. Reads only.",
    )
    generations.add_argument("--view", metavar="NAME", help="the view (default: the first)")
    generations.add_argument("--json", action="store_true", help="print the list as JSON")
    rollback = subparsers.add_parser(
        "rollback",
        help="switch a view back to an earlier generation",
        description="Point a [[view]] at an earlier generation (the one before the current, "
        "or --to N) with one atomic rename: a program reading through the view sees the old "
        "tree or the new one, never none. The switch is logged beside the generations. The "
        "next apply builds a new generation again if the manifest asks for other contents.",
    )
    rollback.add_argument("--view", metavar="NAME", help="the view (default: the first)")
    rollback.add_argument("--to", type=positive, metavar="N", help="the generation to switch to")
    env = subparsers.add_parser(
        "env",
        help="print the shell lines that put a view on PATH",
        description="Print the lines that prepend a view's folders to PATH, MANPATH, "
        "ACLOCAL_PATH, PKG_CONFIG_PATH and CMAKE_PREFIX_PATH (Spack's defaults for views; "
        'not LD_LIBRARY_PATH), for eval: eval "$(reconcile env)". Lmod and Tcl module files '
        "are not written.",
    )
    env.add_argument("--view", metavar="NAME", help="the view (default: the first)")
    env.add_argument("--shell", choices=ENV_SHELLS, default="sh", help="the shell (default: sh)")


def add_lock_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    lock = subparsers.add_parser(
        "lock",
        help="pin what each selector resolves to in the lock file",
        description="Resolve every [install] selector as plan would, verify the signed "
        "metadata of every node of its closure, and write the lock file beside the manifest "
        "(reconcile.toml -> reconcile.lock): per selector its DAG hash and closure, per node "
        "its mirror, tarball sha256 and size and signer, and the sources' URLs and checksums. "
        "Selectors the lock already satisfies keep their hashes unless --update names them. "
        "plan and apply then resolve to the locked hashes; --locked refuses anything else.",
    )
    lock.add_argument(
        "--update",
        nargs="*",
        metavar="SELECTOR",
        help="resolve anew the named selectors (as written in the manifest), or every "
        "selector when none is named",
    )
    lock.add_argument(
        "--pick",
        choices=("newest",),
        help="newest: a selector that matches several specs takes the one with the highest "
        "version (of equal versions, the one from the first mirror in manifest order) "
        "instead of failing",
    )
    lock.add_argument("--json", action="store_true", help="print the new lock as JSON")
