"""Where a Spack that installs from a published cache puts each prefix, by default.

Binaries can only be relocated to a prefix no longer than the one they were built in (a
C string inside a binary cannot grow). A cache is installable by a Spack with its default
install tree only if every published prefix is at least as long as the prefix that Spack
gives the same spec: its root padded to ``padded_length``, then its default projection.
"""

from __future__ import annotations

from typing import Literal

from reconcile.spack.projection import format_projection
from reconcile.spack.spec import SpecNode

SpackRelease = Literal["0.23", "1.x"]
SPACK_RELEASES: tuple[SpackRelease, ...] = ("0.23", "1.x")

# config:install_tree:projections:all in each release's etc/spack/defaults.
DEFAULT_PROJECTIONS: dict[SpackRelease, str] = {
    "0.23": "{architecture}/{compiler.name}-{compiler.version}/{name}-{version}-{hash}",
    "1.x": "{architecture.platform}-{architecture.target}/{name}-{version}-{hash}",
}
DEFAULT_CONSUMER_PADDED_LENGTH = 128


def consumer_prefix_length(node: SpecNode, release: SpackRelease, padded_length: int) -> int:
    """The length of ``node``'s prefix in that Spack's default tree, with its root padded to
    ``padded_length`` (Spack pads a root to exactly that length)."""
    return padded_length + 1 + len(format_projection(DEFAULT_PROJECTIONS[release], node))
