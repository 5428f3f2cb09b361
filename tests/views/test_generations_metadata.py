"""A generation's metadata file is on disk where others may edit it: every tampered form is
passed over as an incomplete generation (never switched to, never a traceback), and a valid
one still reads back."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from reconcile.views.contents import ViewContents, ViewSpec
from reconcile.views.generations import (
    Generation,
    generations_dir,
    link_target,
    metadata_to_dict,
    open_generations,
    read_view_state,
    write_metadata,
)

SPEC = ViewSpec(hash="a" * 32, name="zlib", version="1.3", prefix="/opt/zlib", projection="z")


def _generation() -> Generation:
    contents = ViewContents(link="symlink", conflicts="error", exclude=("*.a",), specs=(SPEC,))
    return Generation(
        number=1,
        created="2026-01-31T12:00:00Z",
        fingerprint=contents.fingerprint(),
        contents=contents,
        tree="0" * 64,
        files=3,
    )


def _view(tmp_path: Path) -> Path:
    view = tmp_path / "view"
    with open_generations(view) as folder:
        os.mkdir("1", dir_fd=folder.fd)
        write_metadata(folder, _generation())
    view.symlink_to(link_target(view, 1))
    return view


def _tampered(change: str) -> Any:
    data: Any = metadata_to_dict(_generation())
    contents, spec = data["contents"], data["contents"]["specs"][0]
    replacements: dict[str, Any] = {
        "files-1e309": ("files", 1e309),
        "files-nan": ("files", float("nan")),
        "files-negative": ("files", -1),
        "files-string": ("files", "3"),
        "files-bool": ("files", True),
        "number-float": ("number", 1.0),
        "number-bool": ("number", True),
        "created-list": ("created", ["x"]),
        "tree-object": ("tree", {"a": 1}),
        "fingerprint-number": ("fingerprint", 5),
        "contents-list": ("contents", []),
    }
    if change in replacements:
        key, value = replacements[change]
        data[key] = value
    elif change == "link-unknown":
        contents["link"] = "bind-mount"
    elif change == "link-list":
        contents["link"] = ["symlink"]
    elif change == "conflicts-unknown":
        contents["conflicts"] = "last"
    elif change == "exclude-string":
        contents["exclude"] = "*.a"
    elif change == "exclude-numbers":
        contents["exclude"] = [1, 2]
    elif change == "specs-object":
        contents["specs"] = {"0": spec}
    elif change == "projection-absolute":
        spec["projection"] = "/etc"
    elif change == "projection-parent":
        spec["projection"] = "z/../../.."
    elif change == "deep":
        data["tree"] = json.loads("[" * 200 + "]" * 200)
    return data


CHANGES = [
    "files-1e309",
    "files-nan",
    "files-negative",
    "files-string",
    "files-bool",
    "number-float",
    "number-bool",
    "created-list",
    "tree-object",
    "fingerprint-number",
    "contents-list",
    "link-unknown",
    "link-list",
    "conflicts-unknown",
    "exclude-string",
    "exclude-numbers",
    "specs-object",
    "projection-absolute",
    "projection-parent",
    "deep",
]


def test_valid_metadata_reads_back(tmp_path: Path) -> None:
    state = read_view_state(_view(tmp_path))
    assert state.current_generation == _generation()


@pytest.mark.parametrize("change", CHANGES)
def test_tampered_metadata_is_an_incomplete_generation(tmp_path: Path, change: str) -> None:
    view = _view(tmp_path)
    text = json.dumps(_tampered(change))  # 1e309 and NaN are written as Infinity and NaN
    (generations_dir(view) / "1.json").write_text(text)
    state = read_view_state(view)
    assert state.current == 1
    assert state.current_generation is None
    assert state.generations == ()
