"""Settings of the HTTP transport that users tune from the environment.

``RECONCILE_HTTP_CONNECT_TIMEOUT`` / ``RECONCILE_HTTP_READ_TIMEOUT`` (seconds) and the CA
bundle (``RECONCILE_CA_BUNDLE``, else ``REQUESTS_CA_BUNDLE``, else the system bundle that
requests uses). Explicit constructor arguments win over the environment.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import attrs

from reconcile.errors import TransportError
from reconcile.limits import RATE_WINDOW_SECONDS
from reconcile.reprs import fields_repr

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
CONNECT_TIMEOUT_VAR = "RECONCILE_HTTP_CONNECT_TIMEOUT"
READ_TIMEOUT_VAR = "RECONCILE_HTTP_READ_TIMEOUT"
# Over how many seconds [limits] min_transfer_rate is averaged (default 30).
RATE_WINDOW_VAR = "RECONCILE_TRANSFER_RATE_WINDOW"
CA_BUNDLE_VARS = ("RECONCILE_CA_BUNDLE", "REQUESTS_CA_BUNDLE")


@attrs.frozen(kw_only=True)
class HttpOptions:
    __repr__ = fields_repr

    connect_timeout: float
    read_timeout: float
    verify: bool | str  # True: requests' default bundle; a path: that bundle or CA folder
    rate_window: float = RATE_WINDOW_SECONDS


def _seconds(name: str, environ: Mapping[str, str], default: float) -> float:
    text = environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise TransportError(
            f"{name}={text!r} is not a number of seconds",
            hint=f"set {name} to a positive number such as 30, or unset it (default {default:g} s)",
        )
    return value


def _ca_bundle(environ: Mapping[str, str]) -> bool | str:
    for name in CA_BUNDLE_VARS:
        value = environ.get(name)
        if value:
            if not Path(value).exists():
                raise TransportError(
                    f"{name}={value}: no such CA bundle",
                    hint=f"point {name} at a PEM file (or a folder of CA certificates), "
                    "or unset it to use the system's CA bundle",
                )
            return value
    return True


def options_from_environment(
    *,
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
    environ: Mapping[str, str] | None = None,
) -> HttpOptions:
    env = os.environ if environ is None else environ
    return HttpOptions(
        connect_timeout=connect_timeout
        if connect_timeout is not None
        else _seconds(CONNECT_TIMEOUT_VAR, env, DEFAULT_CONNECT_TIMEOUT),
        read_timeout=read_timeout
        if read_timeout is not None
        else _seconds(READ_TIMEOUT_VAR, env, DEFAULT_READ_TIMEOUT),
        verify=_ca_bundle(env),
        rate_window=_seconds(RATE_WINDOW_VAR, env, RATE_WINDOW_SECONDS),
    )
