"""Registry credentials from Docker's ``config.json`` (``$DOCKER_CONFIG/config.json``, else
``~/.docker/config.json``): the ``auths`` entry for the registry host, whose ``auth`` is
base64 of ``user:password`` (what ``docker login`` writes without a credential helper).

Credential helpers (``credsStore``, ``credHelpers``) are programs reconcile does not run; an
entry that names one is reported, so the user knows why nothing was sent.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from pathlib import Path

from reconcile.errors import TransportError
from reconcile.transport.credentials import Credentials

# A config.json is a few kilobytes; anything larger is not one.
MAX_CONFIG_BYTES = 1 << 20


def docker_config_path(environ: Mapping[str, str]) -> Path:
    folder = environ.get("DOCKER_CONFIG")
    return (Path(folder) if folder else Path.home() / ".docker") / "config.json"


def _unreadable(path: Path, why: str) -> TransportError:
    return TransportError(
        f"cannot read registry credentials from {path}: {why}",
        hint="fix the file (docker login writes it), or point $DOCKER_CONFIG at another "
        "folder, or give the credentials in the environment instead",
        reference="bad-docker-config",
    )


def _entry_for(auths: Mapping[str, object], host: str) -> object:
    """``auths`` keys are ``host[:port]``, sometimes written as a URL (``https://host/v1/``)."""
    for key, value in auths.items():
        bare = key.split("://", 1)[-1].split("/", 1)[0]
        if bare.lower() == host.lower():
            return value
    return None


def from_docker_config(host: str, environ: Mapping[str, str] | None = None) -> Credentials | None:
    """The credentials config.json holds for ``host`` (``host[:port]``), or None."""
    env = os.environ if environ is None else environ
    path = docker_config_path(env)
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _unreadable(path, exc.strerror or "unreadable") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise _unreadable(path, "over 1 MiB, not a Docker config")
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        # json's message may quote the file, which holds secrets: say where only
        raise _unreadable(path, "not valid JSON") from None
    if not isinstance(document, Mapping):
        raise _unreadable(path, "expected a JSON object")
    auths = document.get("auths", {})
    if not isinstance(auths, Mapping):
        raise _unreadable(path, "'auths' is not an object")
    entry = _entry_for(auths, host)
    if entry is None:
        return None
    if not isinstance(entry, Mapping):
        raise _unreadable(path, f"the entry for {host} is not an object")
    encoded = entry.get("auth")
    if not encoded:
        helpers = document.get("credHelpers")
        if document.get("credsStore") or (isinstance(helpers, Mapping) and host in helpers):
            raise _unreadable(
                path,
                f"the credentials for {host} are kept by a credential helper, which "
                "reconcile does not run",
            )
        return None
    try:
        user, sep, password = base64.b64decode(str(encoded), validate=True).decode().partition(":")
    except (binascii.Error, ValueError):
        raise _unreadable(path, f"the 'auth' of {host} is not base64 of user:password") from None
    if not sep:
        raise _unreadable(path, f"the 'auth' of {host} is not base64 of user:password")
    return Credentials(kind="basic", username=user, secret=password, source=f"Docker config {path}")
