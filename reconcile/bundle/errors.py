"""The error a bundle raises when it cannot be written or must not be trusted."""

from __future__ import annotations

from reconcile.errors import ReconcileError


class BundleError(ReconcileError):
    """A bundle could not be exported, or an imported one failed a check."""

    reference = "bundle-refused"
