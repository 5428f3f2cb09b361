"""drift of a local mirror that reconcile publishes with statement signers: the
``.reconcile-sig`` sidecars beside each package's metadata are reconcile's own files, not
strays; a sidecar that belongs to no listed package still is one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import run, write_manifest
from test_ed25519_trust import generate_ed25519


@pytest.fixture(autouse=True)
def signing_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where ``keys generate`` keeps the ed25519 secret (no GnuPG key is involved)."""
    home = tmp_path / "signing"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("RECONCILE_SIGNING_HOME", str(home))
    monkeypatch.delenv("RECONCILE_ED25519_SECRET_KEY", raising=False)


def publish(folder: Path, layout: int, capsys: pytest.CaptureFixture[str]) -> Path:
    """hello-app's closure published to a file:// mirror, signed by the ed25519 key 'site'
    only (its sidecars are the only signatures)."""
    folder.mkdir(parents=True)
    entry = generate_ed25519(folder / "reconcile.toml", "site", capsys)
    extra = f"""
[[mirror]]
name = "published"
url = "published"
layout = {layout}
signed = false

{entry}
[[publish]]
specs = ["hello-app"]
mirror = "published"
key = ["site"]
"""
    manifest = write_manifest(folder, padded_length=128, extra=extra)
    assert run(manifest, "apply", "--yes") == 0, capsys.readouterr().err
    return manifest


def drift_findings(
    manifest: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[dict[str, str]]]:
    capsys.readouterr()
    code = run(manifest, "drift", "--json")
    report = json.loads(capsys.readouterr().out)
    (mirror,) = [r for r in report["resources"] if r["resource"] == "mirror:published"]
    return code, mirror["findings"]


@pytest.mark.parametrize("layout", [2, 3])
def test_sidecars_of_listed_packages_are_not_drift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], layout: int
) -> None:
    manifest = publish(tmp_path / "publisher", layout, capsys)
    mirror = tmp_path / "publisher" / "published"
    assert len(list(mirror.rglob("*.reconcile-sig"))) == 3
    code, findings = drift_findings(manifest, capsys)
    assert findings == []
    assert code == 0


@pytest.mark.parametrize("layout", [2, 3])
def test_a_sidecar_of_nothing_listed_is_still_a_stray(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], layout: int
) -> None:
    manifest = publish(tmp_path / "publisher", layout, capsys)
    mirror = tmp_path / "publisher" / "published"
    real = sorted(mirror.rglob("*.reconcile-sig"))[0]
    # a sidecar whose package the index does not list (its metadata is not there either),
    # and one beside a file that is no package's metadata at all
    ghost = real.parent / ("ghost-" + real.name)
    ghost.write_bytes(real.read_bytes())
    index = "build_cache/index.json" if layout == 2 else "v3/manifests/index/index.manifest.json"
    beside_index = mirror / (index + ".reconcile-sig")
    beside_index.write_bytes(real.read_bytes())
    code, findings = drift_findings(manifest, capsys)
    assert sorted((f["kind"], f["path"]) for f in findings) == sorted(
        [("mirror-file-unlisted", str(ghost)), ("mirror-file-unlisted", str(beside_index))]
    )
    assert all(f["detail"] == "a signature sidecar of no package the index lists" for f in findings)
    assert all(f["severity"] == "warning" for f in findings)
    assert code == 2
    # the real sidecars are still not reported, and nothing was removed
    assert real.is_file() and ghost.is_file()
