"""What went wrong on the network, in words, from the exceptions requests and urllib3 raise.

requests wraps urllib3 which wraps the socket error; the useful fact (refused, no such host,
timed out, bad certificate) sits somewhere in that chain. ``classify`` finds it, says whether
trying again can help, and whether it means the mirror did not answer at all.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

import attrs
import requests
import urllib3.exceptions

from reconcile.reprs import fields_repr


@attrs.frozen(kw_only=True)
class NetworkFailure:
    __repr__ = fields_repr

    description: str  # "connection refused", "no such host", ...
    retryable: bool
    # the mirror never answered (as opposed to answering and then breaking off)
    unreachable: bool
    # which setting to mention in the hint: "connect", "read", "tls", "dns" or ""
    topic: str = ""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and every exception it wraps, breadth first, each once."""
    seen: set[int] = set()
    queue: list[BaseException] = [exc]
    while queue:
        current = queue.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [arg for arg in current.args if isinstance(arg, BaseException)]
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            wrapped.append(reason)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                wrapped.append(linked)
        queue.extend(wrapped)


def classify(exc: BaseException, *, answered: bool) -> NetworkFailure:
    """``answered``: the response headers had arrived (the failure cut the body short)."""
    chain = list(_chain(exc))
    unreachable = not answered
    for link in chain:
        if isinstance(link, ssl.SSLCertVerificationError):
            return NetworkFailure(
                description=f"TLS certificate verification failed ({link.verify_message})",
                retryable=False,
                unreachable=True,
                topic="tls",
            )
    for link in chain:
        if isinstance(link, socket.gaierror):
            temporary = link.errno == socket.EAI_AGAIN
            return NetworkFailure(
                description="the host name could not be resolved"
                + (" (temporary DNS failure)" if temporary else " (no such host)"),
                retryable=temporary,
                unreachable=True,
                topic="dns",
            )
        if isinstance(link, ConnectionRefusedError):
            return NetworkFailure(
                description="connection refused", retryable=True, unreachable=True
            )
    for link in chain:
        # urllib3 derives NewConnectionError (refused, unroutable...) from ConnectTimeoutError
        if isinstance(link, urllib3.exceptions.ConnectTimeoutError) and not isinstance(
            link, urllib3.exceptions.NewConnectionError
        ):
            return NetworkFailure(
                description="connecting timed out",
                retryable=True,
                unreachable=True,
                topic="connect",
            )
        if isinstance(link, urllib3.exceptions.ReadTimeoutError | socket.timeout):
            what = "the transfer stalled" if answered else "no answer"
            return NetworkFailure(
                description=f"{what} (read timed out)",
                retryable=True,
                unreachable=unreachable,
                topic="read",
            )
    if isinstance(exc, requests.exceptions.SSLError):
        return NetworkFailure(
            description="the TLS handshake failed", retryable=False, unreachable=True, topic="tls"
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return NetworkFailure(
            description="connecting timed out", retryable=True, unreachable=True, topic="connect"
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return NetworkFailure(
            description="no answer (read timed out)",
            retryable=True,
            unreachable=unreachable,
            topic="read",
        )
    if answered:
        return NetworkFailure(
            description="the connection was cut during the transfer",
            retryable=True,
            unreachable=False,
        )
    if isinstance(
        exc, requests.exceptions.ConnectionError | requests.exceptions.ChunkedEncodingError
    ):
        # the operating system's own words when it had some ("no route to host", ...)
        reason = next(
            (
                link.strerror
                for link in chain
                if isinstance(link, OSError) and type(link).__module__ == "builtins"
                if link.strerror
            ),
            None,
        )
        return NetworkFailure(
            description=reason.lower() if reason else "the connection was closed without an answer",
            retryable=True,
            unreachable=True,
        )
    return NetworkFailure(
        description=f"the request failed ({type(exc).__name__})",
        retryable=False,
        unreachable=False,
    )
