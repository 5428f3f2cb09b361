"""When an HTTP request is tried again, and how long to wait before it.

Capped exponential backoff with jitter: a mirror that is briefly overloaded gets time to
recover, and many clients that failed together do not come back in lock-step.
"""

from __future__ import annotations

import email.utils
import random
import time

import attrs

from reconcile.reprs import fields_repr

# Answers that mean "not now", as opposed to "no": the request may succeed if repeated.
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUS or 500 <= status <= 599


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


@attrs.frozen(kw_only=True)
class RetryPolicy:
    __repr__ = fields_repr

    attempts: int = attrs.field(default=4, validator=attrs.validators.ge(1))
    backoff_base: float = attrs.field(default=0.5, validator=attrs.validators.ge(0))
    backoff_cap: float = attrs.field(default=10.0, validator=attrs.validators.ge(0))

    def delay(self, failures: int, *, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``failures``-th failed attempt (1-based).

        A server's ``Retry-After`` is honoured, but never beyond the cap: a mirror asking
        for an hour is better reported than waited for.
        """
        if retry_after is not None:
            return min(self.backoff_cap, retry_after)
        exponential = min(self.backoff_cap, self.backoff_base * 2.0 ** (failures - 1))
        return exponential * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not secrecy
