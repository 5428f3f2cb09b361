"""``[drift] ignore`` globs (the matcher lives in ``reconcile.path_globs``: views use it too)."""

from __future__ import annotations

from reconcile.path_globs import IgnoreRules

__all__ = ["IgnoreRules"]
