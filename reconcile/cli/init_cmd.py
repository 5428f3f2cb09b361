"""``reconcile init --mirror URL``: a starting manifest for a binary cache.

It names the mirror, an install root and the specs, and lists the keys the mirror publishes
with their fingerprints. A published key proves nothing by itself (anyone who can write the
mirror can publish one), so a key is written active only when the user passes its
fingerprint with ``--trust`` after checking it out of band; otherwise its entry is written
commented out, saying where it came from.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from reconcile.buildcache.layout_v2 import BUILD_CACHE, KEYS_FOLDER, key_url
from reconcile.buildcache.layout_v3 import read_key_index_v3, read_mirror_key_v3
from reconcile.errors import NotFoundError, ReconcileError
from reconcile.manifest.load import loads_manifest
from reconcile.redact import mask_credentials
from reconcile.spack.selector import parse_selector
from reconcile.transport.base import join_url
from reconcile.transport.registry import TransportPool, endpoints_of
from reconcile.trust.verify import key_fingerprints, normalize_fingerprint
from reconcile.userpath import expand_user

MIRROR_NAME = "upstream"


def _toml_string(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid TOML basic string


def _manifest_text(mirror: str, root: str, specs: list[str], keys: str = "") -> str:
    install = [f"root = {_toml_string(root)}"]
    if specs:
        install.append(f"specs = [{', '.join(_toml_string(s) for s in specs)}]")
        install_text = "[install]\n" + "\n".join(install) + "\n\n"
    else:  # [install] needs at least one spec: leave it for the user to fill in
        lines = ["[install]", *install, 'specs = ["name-of-a-spec"]']
        install_text = "".join(f"# {line}\n" for line in lines) + "\n"
    return (
        "# Written by `reconcile init`. Check it, then run `reconcile plan`.\n"
        "version = 1\n\n"
        + install_text
        + f'[[mirror]]\nname = "{MIRROR_NAME}"\nurl = {_toml_string(mirror)}\n'
        + keys
    )


def _published_keys(pool: TransportPool, url: str) -> dict[str, bytes]:
    """Fingerprint -> armored key, for every key the mirror lists (layout 3, then 2)."""
    try:
        listed = read_key_index_v3(pool.read_bytes, url)
        return {fpr: read_mirror_key_v3(pool.read_bytes, url, fpr) for fpr in listed}
    except NotFoundError:
        pass
    try:
        index = json.loads(pool.read_bytes(join_url(url, BUILD_CACHE, KEYS_FOLDER, "index.json")))
    except NotFoundError:
        return {}
    except ValueError:
        return {}
    keys = index.get("keys") if isinstance(index, dict) else None
    found: dict[str, bytes] = {}
    for fingerprint in keys if isinstance(keys, dict) else {}:
        normalized = normalize_fingerprint(str(fingerprint))
        try:
            found[normalized] = pool.read_bytes(key_url(url, normalized))
        except (NotFoundError, ValueError):
            continue
    return found


def _key_entries(keys: dict[str, bytes], trusted: set[str], shown_url: str) -> str:
    text = ""
    for number, (listed, armored) in enumerate(sorted(keys.items()), 1):
        actual = key_fingerprints(armored)
        fingerprint = actual[0] if actual else listed
        entry = (
            f'[[key]]\nname = "upstream-{number}"\nkind = "gpg"\n'
            f'fingerprint = "{fingerprint}"\nsource = "mirror:{MIRROR_NAME}"\n'
        )
        if fingerprint in trusted:
            text += f"\n# Published by {shown_url}; trusted with --trust.\n" + entry
        else:
            commented = "".join(f"# {line}\n" for line in entry.splitlines())
            text += (
                f"\n# Published by {shown_url}, NOT trusted yet: check this fingerprint with\n"
                "# the mirror's owner, then remove the '# ' below (or rerun init --trust).\n"
                + commented
            )
    return text


def run_init(args: argparse.Namespace, manifest: Path) -> int:
    target = manifest.absolute()
    if target.exists():
        raise ReconcileError(
            f"{target} already exists: init never overwrites a manifest",
            hint="remove it first, or name another file with -m",
            reference="usage",
        )
    for text in args.spec:
        try:
            parse_selector(text)
        except ValueError as exc:
            hint = "selectors use Spack's spec syntax: see docs/manifest.md#specs"
            raise ReconcileError(str(exc), hint=hint, reference="usage") from None
    mirror = args.mirror
    if "://" not in mirror:  # a path given from here is written relative to the manifest
        mirror = os.path.relpath(expand_user(mirror).absolute(), target.parent)
    trusted = {normalize_fingerprint(f) for f in args.trust}
    draft = loads_manifest(_manifest_text(mirror, args.root, args.spec), path=target)
    url = draft.mirror_url(draft.manifest.mirror(MIRROR_NAME))
    with TransportPool(endpoints_of(draft)) as pool:
        keys = _published_keys(pool, url)
    shown = mask_credentials(url)
    unknown = trusted - {f for armored in keys.values() for f in key_fingerprints(armored)}
    if unknown:
        raise ReconcileError(
            f"--trust names {', '.join(sorted(unknown))}, which {shown} does not publish "
            f"(it publishes: {', '.join(sorted(keys)) or 'no key'})",
            hint="copy the fingerprint exactly as the mirror's owner gave it to you",
            reference="usage",
        )
    text = _manifest_text(mirror, args.root, args.spec, _key_entries(keys, trusted, shown))
    loads_manifest(text, path=target)  # what init writes must be a valid manifest
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    print(f"Wrote {target}.", file=sys.stderr)
    for fingerprint in sorted(keys):
        state = "trusted" if fingerprint in trusted else "NOT trusted (commented out)"
        print(f"  key {fingerprint} published by the mirror: {state}", file=sys.stderr)
    if not keys:
        print(f"  {shown} publishes no key: add a [[key]] for its signer.", file=sys.stderr)
    if not args.spec:
        print("  No --spec given: add selectors to install.specs.", file=sys.stderr)
    return 0
