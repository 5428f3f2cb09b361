"""Which layout a mirror has, and how messages name it, without the code that reads each
(``layout_v2.py``, ``layout_v3.py``, ``layout_oci.py``): a plan asks every mirror its layout
but reads only the layouts it meets, and importing the others' code (their classes and
checks) was a noticeable part of a no-op plan's start-up."""

from __future__ import annotations

from reconcile.errors import NotFoundError
from reconcile.transport.base import Transport, join_url

# MirrorView.layout of an OCI registry: not a file layout, Spack's OCI images.
OCI_LAYOUT = 0
# Layout 3's folder (``v3``: its manifests' version) and the file that marks it.
LAYOUT_FOLDER = "v3"
LAYOUT_JSON = "layout.json"


def describe_layout(layout: int) -> str:
    """How messages name a mirror's layout: ``layout 3``, or ``Spack's OCI format``."""
    return "Spack's OCI format" if layout == OCI_LAYOUT else f"layout {layout}"


def layout_url(mirror_url: str) -> str:
    """``v3/layout.json``: its presence says the mirror uses layout v3."""
    return join_url(mirror_url, LAYOUT_FOLDER, LAYOUT_JSON)


def is_v3(transport: Transport, mirror_url: str) -> bool:
    """Whether the mirror has ``v3/layout.json``. Other transport errors (an unreachable
    mirror) propagate: they say nothing about the layout."""
    try:
        transport.size(layout_url(mirror_url))
    except NotFoundError:
        return False
    return True
