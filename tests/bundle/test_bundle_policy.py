"""The bundle's one mirror keeps the trust policy of the mirrors its closure came from: the
same policy is kept, differing ones are refused (a bundle never verifies with less)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconcile.bundle.errors import BundleError
from reconcile.bundle.export import _mirror_policy
from reconcile.manifest.load import loads_manifest
from reconcile.manifest.model import ManifestFile

KEYS = """
[[key]]
name = "a"
kind = "ed25519"
public_key = "a:o32JLMxu1ZvEOX3OfnGtYtaVqWcvx6jVUmoiZhlZWqc="

[[key]]
name = "b"
kind = "ed25519"
public_key = "b:Zoqv1FjFuxCDmbcpIFZX2Z6jXbcCnJxBmE6n7Z0JIKU="
"""


def manifest(first: str, second: str) -> ManifestFile:
    text = (
        f'version = 1\n\n[[mirror]]\nname = "one"\nurl = "one"\n{first}\n\n'
        f'[[mirror]]\nname = "two"\nurl = "two"\n{second}\n{KEYS}'
    )
    return loads_manifest(text, path=Path("/site/reconcile.toml"))


def test_the_policy_of_the_source_mirrors_is_kept() -> None:
    loaded = manifest('trust = ["a", "b"]\nrequire = 2', 'trust = ["a", "b"]\nrequire = 2')
    assert _mirror_policy(loaded, {"one", "two"}) == (("a", "b"), 2)
    assert _mirror_policy(loaded, {"one"}) == (("a", "b"), 2)
    assert _mirror_policy(manifest("", ""), set()) == (None, 1)


@pytest.mark.parametrize(
    ("first", "second"),
    [("require = 2", ""), ('trust = ["a"]', 'trust = ["b"]'), ('trust = ["a"]', "")],
)
def test_differing_policies_are_refused(first: str, second: str) -> None:
    loaded = manifest(first, second)
    with pytest.raises(BundleError, match="whose trust policies differ"):
        _mirror_policy(loaded, {"one", "two"})
