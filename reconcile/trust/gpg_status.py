"""GnuPG's machine-readable status lines (``--status-file``), the only output we judge by.

The human-readable messages on stderr change between versions and locales, and they quote
user IDs chosen by whoever made the key; status lines are a documented, stable interface
(GnuPG's ``doc/DETAILS``).
"""

from __future__ import annotations

import attrs

from reconcile.reprs import fields_repr

STATUS_PREFIX = "[GNUPG:] "

# Statuses that report the outcome of one signature; each signature yields exactly one.
SIGNATURE_RESULTS = frozenset({"GOODSIG", "BADSIG", "ERRSIG", "EXPSIG", "EXPKEYSIG", "REVKEYSIG"})

# ERRSIG's return-code field: the signer's public key is not in the keyring.
ERRSIG_NO_PUBKEY = "9"


@attrs.frozen(kw_only=True)
class StatusLine:
    __repr__ = fields_repr

    keyword: str
    args: tuple[str, ...]

    def arg(self, index: int) -> str | None:
        """The ``index``-th argument (0-based after the keyword), None when absent."""
        return self.args[index] if index < len(self.args) else None


@attrs.frozen(kw_only=True)
class GpgStatus:
    __repr__ = fields_repr

    lines: tuple[StatusLine, ...]

    def all(self, keyword: str) -> tuple[StatusLine, ...]:
        return tuple(line for line in self.lines if line.keyword == keyword)

    def first(self, keyword: str) -> StatusLine | None:
        found = self.all(keyword)
        return found[0] if found else None

    def count(self, keyword: str) -> int:
        return len(self.all(keyword))

    def signature_results(self) -> tuple[StatusLine, ...]:
        return tuple(line for line in self.lines if line.keyword in SIGNATURE_RESULTS)


def parse_status(text: str) -> GpgStatus:
    """Parse the status stream; lines without the ``[GNUPG:]`` prefix are ignored."""
    lines = []
    for raw in text.splitlines():
        if not raw.startswith(STATUS_PREFIX):
            continue
        keyword, _, rest = raw[len(STATUS_PREFIX) :].partition(" ")
        lines.append(StatusLine(keyword=keyword, args=tuple(rest.split())))
    return GpgStatus(lines=tuple(lines))
