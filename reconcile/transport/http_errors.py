"""The errors an HTTP mirror's failures become: what happened, at which URL (credentials
masked), and what to do about it."""

from __future__ import annotations

import urllib.parse

import requests

from reconcile.errors import MirrorUnreachableError, NotFoundError, TransportError
from reconcile.transport.credentials import Credentials, credential_hint
from reconcile.transport.http_failures import NetworkFailure
from reconcile.transport.http_options import CONNECT_TIMEOUT_VAR, READ_TIMEOUT_VAR, HttpOptions


def _network_hint(failure: NetworkFailure, options: HttpOptions) -> str:
    if failure.topic == "tls":
        return (
            "if the mirror uses a private CA, point RECONCILE_CA_BUNDLE at its certificate "
            "bundle (PEM)"
        )
    if failure.topic == "dns":
        return "check the host name in the mirror URL and the machine's DNS settings"
    if failure.topic == "connect":
        return (
            f"check that the mirror is up and reachable from here; raise {CONNECT_TIMEOUT_VAR} "
            f"(now {options.connect_timeout:g} s) on a slow network"
        )
    if failure.topic == "read":
        return (
            f"the mirror is overloaded or stalled; raise {READ_TIMEOUT_VAR} "
            f"(now {options.read_timeout:g} s) if it is just slow"
        )
    return "check the mirror URL (host and port) and that its server is running"


def network_error(
    where: str, failure: NetworkFailure, attempts: int, options: HttpOptions
) -> TransportError:
    """``where``: the masked URL, with the mirror's name when known."""
    tries = f" (after {attempts} attempt{'s' if attempts != 1 else ''})"
    hint = _network_hint(failure, options)
    if failure.unreachable:
        return MirrorUnreachableError(
            f"{where}: the mirror did not answer: {failure.description}{tries}",
            hint=hint + "; this run skips the mirror from now on",
        )
    return TransportError(f"{where}: {failure.description}{tries}", hint=hint)


def status_error(where: str, response: requests.Response, attempts: int) -> TransportError:
    """A "try again later" answer that kept coming until the attempts ran out."""
    return TransportError(
        f"{where}: the server answered HTTP {response.status_code} {response.reason} "
        f"(after {attempts} attempts)",
        hint="the mirror's server is failing or overloaded; try again later",
    )


def answer_error(
    where: str,
    url: str,
    response: requests.Response,
    *,
    credentials: Credentials | None,
    mirror_name: str | None,
) -> TransportError:
    """A final answer that is not the file: not found, access denied, anything else."""
    answer = f"HTTP {response.status_code} {response.reason or ''}".rstrip()
    if response.status_code in (404, 410):
        return NotFoundError(f"{where}: no such file on the mirror ({answer})")
    if response.status_code in (401, 403):
        return _access_error(where, url, answer, credentials, mirror_name)
    return TransportError(
        f"{where}: the server answered {answer}",
        hint="check the mirror URL; the server does not serve this file as expected",
    )


def _access_error(
    where: str, url: str, answer: str, credentials: Credentials | None, mirror_name: str | None
) -> TransportError:
    if credentials is not None:
        what = f"the credentials from {credentials.source} were refused"
        hint = (
            "check the user name and password (or token), and that this account may read "
            "the mirror; " + credential_hint(mirror_name)
        )
    elif urllib.parse.urlsplit(url).scheme != "https":
        what = "the mirror wants credentials, and none are sent over plain http"
        hint = "serve the mirror over https:// and give credentials: " + credential_hint(
            mirror_name
        )
    else:
        what = "the mirror wants credentials, and none were found"
        hint = credential_hint(mirror_name)
    return TransportError(f"{where}: access denied ({answer}): {what}", hint=hint)
