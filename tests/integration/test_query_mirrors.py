"""A mirror URL with a query string (``https://host/path?token=...``, as registries that take
a token in the query expect) keeps its query on every URL derived from it: the index and its
hash, spec metadata, tarballs, layout-3 manifests and blobs, published keys. A real nginx
serves the fixture caches under /token/ only to requests that carry the token, so an install
that works proves every derived URL carried it; no output, saved plan or record shows it.
Only http(s) mirror URLs may carry a query; a fragment is refused everywhere."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import FIXTURE_FPR, FIXTURES, SIGNED_CACHE
from nginx_harness import QUERY_TOKEN, nginx_server
from support import run, write_manifest
from test_fixture_install import check_hello_works

SPACK1 = FIXTURES / "spack1-v3-signed"
SPACK1_FPR = "E19558C059B19311A4EB227B03683E7D4E8545AB"


def served_copy(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest)
    for path in [dest, *dest.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    return dest


def everything_written(folder: Path, manifest: Path) -> str:
    texts = [
        path.read_bytes().decode("utf-8", "replace")
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.is_symlink() and path != manifest
    ]
    return "\n".join(t for t in texts if "\0" not in t)


@pytest.mark.parametrize(
    ("fixture", "fingerprint"),
    [(SIGNED_CACHE, FIXTURE_FPR), (SPACK1, SPACK1_FPR)],
    ids=["v2", "v3"],
)
def test_a_mirror_with_a_query_token_installs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fixture: Path, fingerprint: str
) -> None:
    served = served_copy(fixture, tmp_path / "served")
    with nginx_server(served, tmp=tmp_path / "nginx") as server:
        mirror = f"{server.url}/token?token={QUERY_TOKEN}"
        work = tmp_path / "work"
        manifest = write_manifest(
            work,
            mirror=mirror,
            key_file=None,
            key_source="mirror:team",  # the key too comes from below the mirror's URL
            fingerprint=fingerprint,
            extra='\n[[cache]]\nroot = "cache"\n',
        )
        saved = work / "plan.json"
        assert run(manifest, "plan", "--out", str(saved)) == 0, capsys.readouterr().err
        assert run(manifest, "apply", str(saved)) == 0, capsys.readouterr().err
        applied = capsys.readouterr().out
        # the bytes are counted as the mirror's: its URLs were matched to it, query and all
        assert re.search(r"mirror 'team': [0-9.]+ MiB downloaded", applied), applied
        assert QUERY_TOKEN not in applied
        assert run(manifest, "plan", "--detailed-exitcode") == 0, capsys.readouterr().err
        assert run(manifest, "drift") == 0, capsys.readouterr().out
        requests = server.access_log_entries()
    check_hello_works(work / "opt")
    output = capsys.readouterr()
    assert QUERY_TOKEN not in output.out + output.err
    plan = json.loads(saved.read_text())
    urls = [a["details"]["tarball_url"] for a in plan["actions"] if a["action"] == "install"]
    assert len(urls) == 3 and all(u.endswith("?token=***") for u in urls), urls
    assert "/token/" in urls[0]
    assert QUERY_TOKEN not in everything_written(work, manifest)
    # every request carried the token (nginx answers 403 without it), none failed
    assert requests and all(e["uri"].startswith("/token/") for e in requests), requests
    assert {e["status"] for e in requests} <= {200, 206, 304, 404}, requests
    assert any(e["uri"].endswith(".spack") or "/blobs/" in e["uri"] for e in requests)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("file:///srv/mirror?token=abc", "only http(s) mirror URLs may carry one"),
        ("s3://bucket/prefix?token=abc", "only http(s) mirror URLs may carry one"),
        ("https://host/mirror#frag", "has a fragment"),
        ("https://host/mirror?token=abc#frag", "has a fragment"),
        ("oci://ghcr.io/team/cache?token=abc", "does not name a repository"),
    ],
)
def test_a_query_where_it_cannot_work_is_a_located_manifest_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str, problem: str
) -> None:
    manifest = write_manifest(tmp_path, mirror=url)
    capsys.readouterr()
    assert run(manifest, "validate") == 1
    err = capsys.readouterr().err
    line = manifest.read_text().splitlines().index(f'url = "{url}"') + 1
    assert f"{manifest}:{line}:7: mirror[0].url:" in err, err
    assert problem in err
    assert "abc" not in err  # the query's value is masked in the message too


def test_plain_paths_with_question_marks_are_file_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mirror declared by path may have '?' or '#' in a folder's name: not a query."""
    mirror = served_copy(SIGNED_CACHE, tmp_path / "odd?name#1")
    manifest = write_manifest(tmp_path / "work", mirror=mirror)
    assert run(manifest, "apply", "--yes") == 0, capsys.readouterr().err
    check_hello_works(tmp_path / "work" / "opt")
