"""A relative symlink is judged from the folder that holds it, however deep that is."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconcile.archive.unpack import check_symlinks
from reconcile.errors import ArchiveError

FINAL = "/opt/root/pkg-1.0"


def nested(tmp_path: Path, target: str) -> Path:
    root = tmp_path / "prefix"
    (root / "lib" / "python" / "site").mkdir(parents=True)
    (root / "bin").mkdir()
    (root / "lib" / "python" / "site" / "link").symlink_to(target)
    return root


@pytest.mark.parametrize("target", ["../../../bin", "../../../lib/python/site", "../../.."])
def test_a_deep_link_that_climbs_to_the_prefix_and_no_further_is_accepted(
    tmp_path: Path, target: str
) -> None:
    check_symlinks(nested(tmp_path, target), final_prefix=FINAL, allowed_prefixes=())


@pytest.mark.parametrize("target", ["../../../../etc", "../../../bin/../../x"])
def test_a_deep_link_that_climbs_one_folder_too_far_is_refused(tmp_path: Path, target: str) -> None:
    with pytest.raises(ArchiveError, match="climbs above"):
        check_symlinks(nested(tmp_path, target), final_prefix=FINAL, allowed_prefixes=())
