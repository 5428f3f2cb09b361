"""Every Sigstore case of ../shared/vectors/README.md, offline, through the trust policy as a
``[[key]] kind = "sigstore"`` would be checked: real bundles made by the public instances (and
the CVE-2022-36056 bundle) pass or fail as the table says."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from reconcile.errors import VerificationError
from reconcile.trust.policy import TrustedKey, TrustPolicy, Verified
from reconcile.trust.sigstore_key import SigstoreKey, embedded_root
from tests.conftest import SHARED

VECTORS = SHARED / "vectors"
PYTHON = VECTORS / "sigstore-python"
CONFORMANCE = VECTORS / "sigstore-conformance"
GITHUB = "https://token.actions.githubusercontent.com"
GITHUB_OAUTH = "https://github.com/login/oauth"
BEACON = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
RFC8785 = "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2"


def _root(instance_or_file: str | Path) -> str:
    if isinstance(instance_or_file, Path):
        return instance_or_file.read_text()
    return embedded_root(instance_or_file)


def key(
    root: str | Path,
    *,
    identity: str | None = None,
    glob: str | None = None,
    issuer: str,
    name: str = "ci",
    revoked_after: datetime.datetime | None = None,
) -> TrustedKey:
    material = SigstoreKey(
        san=identity,
        identity_glob=glob,
        issuer=issuer,
        trusted_root=_root(root),
        root_origin=str(root),
        revoked_after=revoked_after,
    ).material()
    return TrustedKey(name=name, scheme="sigstore", identity=f"sigstore:{name}", material=material)


def verify(artifact: bytes, bundle: Path, *keys: TrustedKey) -> Verified:
    with TrustPolicy.of_keys(keys) as policy:
        return policy.verify_detached(
            artifact, [("sigstore", bundle.read_bytes())], what=bundle.name
        )


# artifact, bundle, root, identity, issuer: the table's "valid" rows.
W = "william@yossarian.net"
REKOR2 = CONFORMANCE / "rekor2-happy-path"
VALID = [
    ("bundle_v3_github.whl", PYTHON / "bundle_v3_github.whl.sigstore", "production", RFC8785,
     GITHUB),
    ("bundle_v3.txt", PYTHON / "bundle_v3.txt.sigstore", "staging", W, GITHUB_OAUTH),
    ("bundle_v3_alt.txt", PYTHON / "bundle_v3_alt.txt.sigstore", "staging", W, GITHUB_OAUTH),
    ("bundle.txt", PYTHON / "bundle.txt.sigstore", "staging", "a@tny.town", GITHUB_OAUTH),
    ("staging-rekor-v2.txt", PYTHON / "staging-rekor-v2.txt.sigstore.json", "staging",
     "jku@goto.fi", GITHUB_OAUTH),
    ("a.txt", CONFORMANCE / "happy-path-v0.3" / "bundle.sigstore.json", "production", BEACON,
     GITHUB),
    ("a.txt", REKOR2 / "bundle.sigstore.json", REKOR2 / "trusted_root.json", BEACON, GITHUB),
]  # fmt: skip
IDS = [f"{bundle.parent.name}/{bundle.name}" for _, bundle, *_ in VALID]


def _artifact(name: str, bundle: Path) -> bytes:
    folder = PYTHON if bundle.parent == PYTHON else CONFORMANCE
    return (folder / name).read_bytes()


@pytest.mark.parametrize(("name", "bundle", "root", "identity", "issuer"), VALID, ids=IDS)
def test_valid_bundle_verifies_under_its_identity_and_issuer(
    name: str, bundle: Path, root: str | Path, identity: str, issuer: str
) -> None:
    verified = verify(_artifact(name, bundle), bundle, key(root, identity=identity, issuer=issuer))
    [signer] = verified.signers
    assert (signer.scheme, signer.identity) == ("sigstore", "sigstore:ci")
    # The log's time (or the timestamp authority's, for Rekor v2), never the signer's claim.
    assert signer.signed_at is not None
    assert datetime.datetime(2022, 1, 1, tzinfo=datetime.UTC) < signer.signed_at


@pytest.mark.parametrize(("name", "bundle", "root", "identity", "issuer"), VALID, ids=IDS)
def test_one_changed_byte_fails(
    name: str, bundle: Path, root: str | Path, identity: str, issuer: str
) -> None:
    artifact = bytearray(_artifact(name, bundle))
    for position in (0, len(artifact) // 2, len(artifact) - 1):
        changed = bytearray(artifact)
        changed[position] ^= 0x01
        with pytest.raises(VerificationError) as refused:
            verify(bytes(changed), bundle, key(root, identity=identity, issuer=issuer))
        assert "not valid under any declared sigstore key" in refused.value.message
        assert "key 'ci'" in refused.value.message


@pytest.mark.parametrize(("name", "bundle", "root", "identity", "issuer"), VALID, ids=IDS)
def test_right_identity_with_another_issuer_fails(
    name: str, bundle: Path, root: str | Path, identity: str, issuer: str
) -> None:
    other = GITHUB_OAUTH if issuer == GITHUB else GITHUB
    with pytest.raises(VerificationError) as refused:
        verify(_artifact(name, bundle), bundle, key(root, identity=identity, issuer=other))
    assert "OIDCIssuer does not match" in refused.value.message
    assert f"issuer {issuer}" in refused.value.message  # the signature found is named


@pytest.mark.parametrize(("name", "bundle", "root", "identity", "issuer"), VALID, ids=IDS)
def test_another_identity_with_the_right_issuer_fails(
    name: str, bundle: Path, root: str | Path, identity: str, issuer: str
) -> None:
    with pytest.raises(VerificationError, match="SANs do not match"):
        verify(_artifact(name, bundle), bundle, key(root, identity=identity + "x", issuer=issuer))


STAGING = [row for row in VALID if row[2] == "staging"]


@pytest.mark.parametrize(
    ("name", "bundle", "root", "identity", "issuer"),
    STAGING,
    ids=[f"{bundle.name}" for _, bundle, *_ in STAGING],
)
def test_staging_bundle_fails_against_the_production_root(
    name: str, bundle: Path, root: str | Path, identity: str, issuer: str
) -> None:
    with pytest.raises(VerificationError) as refused:
        verify(_artifact(name, bundle), bundle, key("production", identity=identity, issuer=issuer))
    assert "key 'ci'" in refused.value.message


def test_production_bundle_fails_against_the_staging_root() -> None:
    bundle = PYTHON / "bundle_v3_github.whl.sigstore"
    with pytest.raises(VerificationError, match="certificate chain"):
        verify(
            (PYTHON / "bundle_v3_github.whl").read_bytes(),
            bundle,
            key("staging", identity=RFC8785, issuer=GITHUB),
        )


def test_cve_2022_36056_bundle_is_rejected() -> None:
    """Its log entry is for another signature: everything else checks out, so only the
    consistency check between the entry and the bundle refuses it."""
    bundle = PYTHON / "bundle_cve_2022_36056.txt.sigstore"
    artifact = (PYTHON / "bundle_cve_2022_36056.txt").read_bytes()
    with pytest.raises(VerificationError) as refused:
        verify(artifact, bundle, key("staging", glob="william@**", issuer=GITHUB_OAUTH))
    assert "inconsistent with other materials" in refused.value.message


def test_identity_glob_matches_within_a_segment_only() -> None:
    bundle = CONFORMANCE / "happy-path-v0.3" / "bundle.sigstore.json"
    artifact = (CONFORMANCE / "a.txt").read_bytes()
    workflows = (
        "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
        ".github/workflows/"
    )
    for pattern in (workflows + "*@refs/heads/main", "https://github.com/sigstore-conformance/**"):
        verify(artifact, bundle, key("production", glob=pattern, issuer=GITHUB))
    for pattern in (
        workflows + "*@refs/tags/*",  # a tag, not a branch
        "https://github.com/sigstore-conformance/*@refs/heads/main",  # '*' stops at '/'
        "https://github.com/other/**",
    ):
        with pytest.raises(VerificationError, match="do not match the pattern"):
            verify(artifact, bundle, key("production", glob=pattern, issuer=GITHUB))


def test_refusal_lists_every_key_tried_and_why() -> None:
    bundle = PYTHON / "bundle_v3.txt.sigstore"
    keys = [
        key("staging", identity="someone@else.net", issuer=GITHUB_OAUTH, name="a"),
        key("production", identity="william@yossarian.net", issuer=GITHUB_OAUTH, name="b"),
        key("staging", identity="william@yossarian.net", issuer=GITHUB, name="c"),
    ]
    with pytest.raises(VerificationError) as refused:
        verify((PYTHON / "bundle_v3.txt").read_bytes(), bundle, *keys)
    message = refused.value.message
    assert f"Sigstore signature by {W} (issuer {GITHUB_OAUTH})" in message
    assert "key 'a' (someone@else.net" in message and "SANs do not match" in message
    assert "key 'b' (william@yossarian.net" in message and "certificate chain" in message
    assert "key 'c' (william@yossarian.net" in message and "OIDCIssuer" in message
    # With the right key among them, the bundle counts.
    right = key("staging", identity="william@yossarian.net", issuer=GITHUB_OAUTH, name="d")
    verified = verify((PYTHON / "bundle_v3.txt").read_bytes(), bundle, *keys, right)
    assert [s.identity for s in verified.signers] == ["sigstore:d"]


def test_revoked_after_compares_with_the_log_time() -> None:
    """bundle_v3.txt was logged at 2024-04-02 19:19:09 UTC."""
    bundle = PYTHON / "bundle_v3.txt.sigstore"
    artifact = (PYTHON / "bundle_v3.txt").read_bytes()
    logged = datetime.datetime(2024, 4, 2, 19, 19, 9, tzinfo=datetime.UTC)
    after = logged + datetime.timedelta(seconds=1)
    verified = verify(
        artifact,
        bundle,
        key("staging", identity="william@yossarian.net", issuer=GITHUB_OAUTH, revoked_after=after),
    )
    assert verified.signers[0].signed_at == logged
    with pytest.raises(VerificationError, match="revoked after 2024-04-02T19:19:09"):
        verify(
            artifact,
            bundle,
            key(
                "staging",
                identity="william@yossarian.net",
                issuer=GITHUB_OAUTH,
                revoked_after=logged,
            ),
        )


@pytest.mark.parametrize(
    "folder",
    ["managed-key-happy-path", "managed-key-wrong-key_fail", "managed-key-and-trusted-root"],
)
def test_public_key_bundles_are_not_identity_signatures(folder: str) -> None:
    """A managed-key bundle has no certificate, so no identity: a sigstore key refuses it."""
    with pytest.raises(VerificationError, match="malformed Sigstore bundle"):
        verify(
            (CONFORMANCE / "a.txt").read_bytes(),
            CONFORMANCE / folder / "bundle.sigstore.json",
            key("production", identity=BEACON, issuer=GITHUB),
        )


@pytest.mark.parametrize(
    ("folder", "valid"), [("managed-key-happy-path", True), ("managed-key-wrong-key_fail", False)]
)
def test_managed_key_signature_primitive(folder: str, valid: bool) -> None:
    """The table's managed-key rows, at the primitive: ECDSA P-256 over a.txt by key.pub."""
    document = json.loads((CONFORMANCE / folder / "bundle.sigstore.json").read_text())
    try:
        public = serialization.load_pem_public_key((CONFORMANCE / folder / "key.pub").read_bytes())
    except ValueError:  # the wrong-key case's key.pub is not even a valid PEM key
        assert not valid
        return
    assert isinstance(public, ec.EllipticCurvePublicKey)
    artifact = (CONFORMANCE / "a.txt").read_bytes()
    digest = document["messageSignature"]["messageDigest"]["digest"]
    assert base64.b64decode(digest) == hashlib.sha256(artifact).digest()
    signature = base64.b64decode(document["messageSignature"]["signature"])
    try:
        public.verify(signature, artifact, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        assert not valid
    else:
        assert valid


def test_garbage_in_place_of_a_bundle_is_refused_without_a_traceback() -> None:
    keys = [key("production", identity=BEACON, issuer=GITHUB)]
    real = (CONFORMANCE / "happy-path-v0.3" / "bundle.sigstore.json").read_bytes()
    hostile = [
        b"",
        b"not json",
        b"[]",
        b"{}",
        b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}',
        real[: len(real) // 2],
        real.replace(b'"certificate"', b'"certificatf"'),
        real.replace(b'"rawBytes": "', b'"rawBytes": "AAAA', 1),
        b"\xff\xfe" * 100,
        b"[" * 60000,  # nesting deeper than any parser's recursion
        b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "x": ' * 900,
    ]
    with TrustPolicy.of_keys(keys) as policy:
        for signature in hostile:
            with pytest.raises(VerificationError) as refused:
                policy.verify_detached(
                    (CONFORMANCE / "a.txt").read_bytes(), [("sigstore", signature)], what="a.txt"
                )
            assert "signature 1 (sigstore)" in refused.value.message


def test_a_dsse_bundle_is_not_a_signature_over_the_statement() -> None:
    """An attestation (DSSE envelope) signs its own payload, never reconcile's statement."""
    bundle = PYTHON / "a.dsse.staging-rekor-v2.txt.sigstore.json"
    with pytest.raises(VerificationError, match="holds a DSSE envelope"):
        verify(
            (PYTHON / "a.dsse.staging-rekor-v2.txt").read_bytes(),
            bundle,
            key("staging", glob="jku@**", issuer=GITHUB_OAUTH),
        )


def test_identity_glob_still_requires_the_issuer() -> None:
    bundle = CONFORMANCE / "happy-path-v0.3" / "bundle.sigstore.json"
    pattern = "https://github.com/sigstore-conformance/**"
    with pytest.raises(VerificationError, match="OIDCIssuer does not match"):
        verify(
            (CONFORMANCE / "a.txt").read_bytes(),
            bundle,
            key("production", glob=pattern, issuer=GITHUB_OAUTH),
        )
