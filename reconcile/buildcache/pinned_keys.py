"""The GnuPG keys the manifest pins, loaded and checked against their fingerprints."""

from __future__ import annotations

import datetime
from collections.abc import Callable

from reconcile.buildcache.key_text import read_key_text
from reconcile.buildcache.layout_v2 import key_url
from reconcile.errors import NotFoundError, VerificationError
from reconcile.manifest.bounded import MAX_KEY_FILE_BYTES, NotReadableError, read_bounded
from reconcile.manifest.model import Key, ManifestFile
from reconcile.redact import mask_credentials
from reconcile.trust.policy import MirrorTrust, TrustedKey, TrustPolicy
from reconcile.trust.signers import normalize_fingerprint

MIRROR_SOURCE_PREFIX = "mirror:"


def trust_policy(manifest_file: ManifestFile, *, read_url: Callable[[str], bytes]) -> TrustPolicy:
    """The run's trust policy: for each mirror the keys its ``trust`` names (default: every
    declared key) and the ``require``d number of distinct signers. Keys are read (with
    ``read_url``) when the policy is first used."""
    mirrors = {
        mirror.name: MirrorTrust(
            keys=frozenset(mirror.trust) if mirror.trust is not None else None,
            require=mirror.require,
        )
        for mirror in manifest_file.manifest.mirrors
    }
    now = datetime.datetime.now(datetime.UTC)
    notes = [
        f"key '{key.name}' is revoked in the manifest"
        + (f" (after {key.revoked_after.isoformat()})" if key.revoked_after else "")
        + (
            ": its signatures logged from then on do not count (Rekor integrated time)"
            if _judged_by_log_time(key)
            else ": its signatures do not count"
        )
        for key in manifest_file.manifest.keys
        if key.revoked_for(now)
    ]
    return TrustPolicy(lambda: _unrevoked(manifest_file, read_url), mirrors=mirrors, notes=notes)


def _unrevoked(manifest_file: ManifestFile, read_url: Callable[[str], bytes]) -> list[TrustedKey]:
    """The declared keys that may verify now: a key revoked (``revoked = true``, or past its
    ``revoked_after``) verifies nothing new, as if it were not declared."""
    now = datetime.datetime.now(datetime.UTC)
    revoked = {
        key.name
        for key in manifest_file.manifest.keys
        if key.revoked_for(now) and not _judged_by_log_time(key)
    }
    keys = load_trusted_keys(manifest_file, read_url=read_url)
    return [key for key in keys if key.name not in revoked]


def _judged_by_log_time(key: Key) -> bool:
    """A sigstore key revoked after a moment stays loaded: its verifier compares that moment
    with each signature's transparency-log time, which no signer can choose."""
    return key.kind == "sigstore" and key.revoked_after is not None


def load_pinned_keys(
    manifest_file: ManifestFile, *, read_url: Callable[[str], bytes]
) -> dict[str, bytes]:
    """Pinned fingerprint -> armored public key, for every ``[[key]]`` of kind gpg."""
    keys = load_trusted_keys(manifest_file, read_url=read_url)
    return {key.identity: key.material for key in keys if key.scheme == "gpg"}


def load_trusted_keys(
    manifest_file: ManifestFile, *, read_url: Callable[[str], bytes]
) -> list[TrustedKey]:
    """Every ``[[key]]`` of kind gpg with its armored public key.

    A key comes from ``file`` (relative to the manifest's folder) or from ``source =
    "mirror:<name>"`` (``build_cache/_pgp/<FINGERPRINT>.pub`` on that mirror, read with
    ``read_url``). Its primary fingerprint must be the pinned one: a mirror can publish any key,
    and only the manifest decides which are trusted.
    """
    pinned: list[TrustedKey] = [
        ed25519_trusted_key(manifest_file, key)
        for key in manifest_file.manifest.keys
        if key.kind == "ed25519"
    ]
    sigstore = [k for k in manifest_file.manifest.keys if k.kind == "sigstore"]
    if sigstore:  # a sigstore key's code only for a sigstore key
        from reconcile.buildcache.sigstore_keys import sigstore_trusted_key

        pinned.extend(sigstore_trusted_key(manifest_file, key) for key in sigstore)
    for key in [k for k in manifest_file.manifest.keys if k.kind == "gpg"]:
        expected = normalize_fingerprint(key.fingerprint)
        origin, armored = _read_key(manifest_file, key, expected, read_url)
        from reconcile.trust.verify import key_fingerprints  # runs gpg: only to load a key

        found = key_fingerprints(armored)
        if expected not in found:
            shown = ", ".join(found) if found else "no OpenPGP public key at all"
            raise VerificationError(
                f"key '{key.name}': {origin} holds {shown}, but the manifest pins {expected}",
                hint="make sure the file is the key you meant to trust; change the pinned "
                "fingerprint only after checking the new key with its owner",
            )
        pinned.append(TrustedKey(name=key.name, scheme="gpg", identity=expected, material=armored))
    return pinned


def ed25519_trusted_key(manifest_file: ManifestFile, key: Key) -> TrustedKey:
    """An ed25519 key from ``public_key`` or from ``file`` (``<name>:<base64>``, as
    ``reconcile keys generate --kind ed25519`` and ``nix key convert-secret-to-public`` write)."""
    text, origin = key.public_key, "public_key"
    if text is None:
        path = manifest_file.resolve(key.file or "")
        origin = f"file {path}"
        text = read_key_text(
            key,
            path,
            what="key file",
            encoding="ascii",
            missing_hint="write the key's '<name>:<base64>' public key there (reconcile keys "
            f"export {key.name}), or fix the path (it is relative to the manifest's folder)",
            unreadable_hint="name a file holding one '<name>:<base64>' ed25519 public key",
        ).strip()
    from reconcile.trust.ed25519 import parse_public_key  # an ed25519 key's code for one

    try:
        parsed = parse_public_key(text)
    except ValueError as exc:
        raise VerificationError(
            f"key '{key.name}': {origin} is not an ed25519 public key: {exc}",
            hint="an ed25519 public key is '<name>:<base64 of 32 bytes>', as Nix writes them",
            reference="bad-ed25519-key",
        ) from None
    return TrustedKey(
        name=key.name, scheme="ed25519", identity=key.identity, material=parsed.text().encode()
    )


def _read_key(
    manifest_file: ManifestFile,
    key: Key,
    fingerprint: str,
    read_url: Callable[[str], bytes],
) -> tuple[str, bytes]:
    """Where the key came from (for messages) and its armored bytes."""
    if key.file is not None:
        path = manifest_file.resolve(key.file)
        try:
            # regular files only, bounded: a FIFO would hang, /dev/zero never ends
            return f"file {path}", read_bounded(path, MAX_KEY_FILE_BYTES)
        except NotReadableError as exc:
            raise VerificationError(
                f"key '{key.name}': key file not read: {exc.message}",
                hint="name an armored public key file (gpg --armor --export FINGERPRINT)",
                reference="key-file-unreadable",
            ) from None
        except FileNotFoundError:
            raise VerificationError(
                f"key '{key.name}': key file {path} does not exist",
                hint=f"export it with `gpg --armor --export {fingerprint} > {key.file}`, "
                "or fix the path (it is relative to the manifest's folder)",
                reference="key-file-missing",
            ) from None
        except OSError as exc:
            raise VerificationError(
                f"key '{key.name}': cannot read key file {path}: {exc.strerror}",
                hint="check the file's permissions",
                reference="key-file-unreadable",
            ) from None
    source = key.source or ""
    if not source.startswith(MIRROR_SOURCE_PREFIX):
        raise VerificationError(
            f'key \'{key.name}\': expected file = "..." or source = "mirror:<name>", '
            f"found source = {source!r}",
            hint="name an armored key file, or a mirror that publishes the key",
        )
    mirror_name = source.removeprefix(MIRROR_SOURCE_PREFIX)
    try:
        mirror = manifest_file.manifest.mirror(mirror_name)
    except KeyError:
        raise VerificationError(
            f"key '{key.name}': source names mirror '{mirror_name}', which the manifest "
            "does not declare",
            hint="add a [[mirror]] with that name, or fix the source",
        ) from None
    try:
        url = key_url(manifest_file.mirror_url(mirror), fingerprint)
    except ValueError:
        raise VerificationError(
            f"key '{key.name}': fingerprint {key.fingerprint!r} is not 40 hex digits",
            hint="write the full fingerprint, as `gpg --fingerprint` shows it",
        ) from None
    base = manifest_file.mirror_url(mirror)
    from reconcile.buildcache.layout_v3 import read_mirror_key_v3  # only for mirror: keys

    try:
        # layout 3 first (key manifest, then its checked blob), as Spack reads mirrors
        armored = read_mirror_key_v3(read_url, base, fingerprint)
        return f"{mask_credentials(base)} v3 key {fingerprint} (mirror '{mirror_name}')", armored
    except NotFoundError:
        pass
    try:
        return f"{mask_credentials(url)} (mirror '{mirror_name}')", read_url(url)
    except NotFoundError as exc:
        raise NotFoundError(
            f"key '{key.name}': mirror '{mirror_name}' publishes no key {fingerprint} "
            f"({mask_credentials(url)} does not exist)",
            hint="check the fingerprint, or publish the key with `spack gpg publish`; "
            'you can also save the key to a file and use file = "..."',
        ) from exc
