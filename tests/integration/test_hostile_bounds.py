"""Bounded work, through the CLI, against gpg-signed hostile caches made here.

Every tarball is signed by a key the manifest trusts and its checksum is right: the attack is
in what the archive makes reconcile do (unpack gigabytes, nest 1,100 folders, expand YAML
aliases, hide members after junk). Each must end in a clear ``error[...]``, leave the install
root as it was, and leave nothing in staging that breaks the next apply.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from conftest import HELLO_HASH, REPO, SIGNED_CACHE
from support import run, snapshot, write_manifest
from test_hostile_mirror import victim_document

from reconcile.archive.unpack import unpack_package
from reconcile.buildcache.manifest_v3 import parse_manifest
from reconcile.buildcache.writer_v2 import (
    spec_json_bytes,
    spec_path,
    tarball_path,
    write_index_v2,
    write_spec_v2,
)
from reconcile.errors import ReconcileError, VerificationError
from reconcile.relocate.package import relocate_package
from reconcile.relocate.prefix_map import build_prefix_map
from reconcile.safe_fs import remove_tree_at
from reconcile.spack.spec import parse_node
from reconcile.trust.gnupg import isolated_home
from reconcile.trust.sign import GpgSigner, generate_key

sys.path.insert(0, str(REPO / "tests" / "archive"))
sys.path.insert(0, str(REPO / "tests"))
import hostile
import hostile_blocks
from hostile_server import Misbehave, hostile_server

# What each bound attack must be refused with.
BOUND_ATTACKS = {
    "junk_after_end": "data-after-end",
    "junk_header_in_middle": "unreadable-archive",
    "lone_zero_block_then_member": "data-after-end",
    "garbage_after_gzip": "data-after-end",
    "zero_bomb": "unpacked-size",
    "deep_nesting": "too-deep",
    "yaml_alias_bomb": "bad-binary-distribution",
    "yaml_deep_nesting": "bad-binary-distribution",
}


@pytest.fixture(scope="module")
def signer() -> Iterator[GpgSigner]:
    with isolated_home() as home:
        fingerprint = generate_key(home, "Hostile Mirror", "hostile@example.invalid")
        yield GpgSigner(gnupghome=home, fingerprint=fingerprint)


def signed_mirror(tmp_path: Path, signer: GpgSigner, tarball: Path) -> Path:
    mirror = tmp_path / "mirror"
    document = victim_document()
    write_spec_v2(mirror, spec_document=document, tarball=tarball, signer=signer)
    write_index_v2(mirror, [parse_node(n) for n in document["spec"]["nodes"]])
    return mirror


def manifest_for(tmp_path: Path, signer: GpgSigner, mirror: Path, limits: str = "") -> Path:
    key = tmp_path / "hostile.pub"
    key.write_bytes(signer.public_key())
    extra = f"\n[limits]\n{limits}\n" if limits else ""
    return write_manifest(
        tmp_path,
        specs=["victim"],
        mirror=mirror,
        key_file=key,
        fingerprint=signer.fingerprint,
        extra=extra,
    )


def staging_leftovers(root: Path) -> list[Path]:
    staging = root / ".reconcile" / "staging"
    return list(staging.iterdir()) if staging.is_dir() else []


def assert_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], manifest: Path, rule: str
) -> str:
    root = tmp_path / "opt"
    root.mkdir(exist_ok=True)
    (root / "keep.txt").write_text("mine\n")
    before = snapshot(root)
    assert run(manifest, "apply", "--yes") == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "error[" in err
    assert not rule or f"rule '{rule}'" in err
    assert snapshot(root) == before
    assert staging_leftovers(root) == []
    return err


@pytest.mark.parametrize("attack", sorted(BOUND_ATTACKS))
def test_signed_hostile_tarball_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], signer: GpgSigner, attack: str
) -> None:
    tarball = hostile.ATTACKS[attack].build(tmp_path / f"{attack}.spack")
    manifest = manifest_for(tmp_path, signer, signed_mirror(tmp_path, signer, tarball))
    err = assert_refused(tmp_path, capsys, manifest, BOUND_ATTACKS[attack])
    assert "victim" in err


# Streams of the block-by-block corpus that the tar reader of its own must refuse.
READER_ATTACKS = [
    "gnu-header-prefix",
    "megabyte-of-pax-records",
    "megabyte-deep-long-name",
    "too-deep-pax-path",
    "pax-path-dotdot",
    "long-name-and-pax-disagree",
    "hard-link-to-symlink",
    "size-base-256-huge",
]


@pytest.mark.parametrize("attack", READER_ATTACKS)
def test_signed_hand_built_tar_stream_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], signer: GpgSigner, attack: str
) -> None:
    build, rule = hostile_blocks.CORPUS[attack]
    assert rule is not None
    tarball = tmp_path / "victim.spack"
    tarball.write_bytes(gzip.compress(build(), 1))
    manifest = manifest_for(tmp_path, signer, signed_mirror(tmp_path, signer, tarball))
    err = assert_refused(tmp_path, capsys, manifest, rule)
    assert "victim" in err and len(err) < 4000


def test_many_tiny_members_refused_by_max_members(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], signer: GpgSigner
) -> None:
    extra = [hostile.Member(f"{hostile.PREFIX}/share/victim/f{i}") for i in range(300)]
    tarball = hostile.spack_tarball(tmp_path / "many.spack", extra)
    mirror = signed_mirror(tmp_path, signer, tarball)
    manifest = manifest_for(tmp_path, signer, mirror, "max_members = 100")
    err = assert_refused(tmp_path, capsys, manifest, "too-many-members")
    assert "max_members" in err
    # The same tarball within the limit installs.
    manifest = manifest_for(tmp_path, signer, mirror, "max_members = 1000")
    assert run(manifest, "apply", "--yes") == 0


def test_zero_file_refused_by_max_unpack_ratio_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], signer: GpgSigner
) -> None:
    """The 2 GiB zero file in a 2 MB tarball, scaled down: 512 KiB of zeros against a
    ratio of 5; the default ratio (50) lets the same package in."""
    zeros = hostile.Member(f"{hostile.PREFIX}/lib/zeros", data=bytes(512 << 10))
    noise = hostile.Member(f"{hostile.PREFIX}/lib/noise", data=os.urandom(16 << 10))
    tarball = hostile.spack_tarball(tmp_path / "zeros.spack", [noise, zeros])
    assert tarball.stat().st_size * 50 > 512 << 10
    mirror = signed_mirror(tmp_path, signer, tarball)
    manifest = manifest_for(tmp_path, signer, mirror, "max_unpack_ratio = 5")
    assert "max_unpack_ratio" in assert_refused(tmp_path, capsys, manifest, "unpacked-size")
    assert run(manifest_for(tmp_path, signer, mirror), "apply", "--yes") == 0


def test_deep_stale_staging_does_not_break_later_applies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], signer: GpgSigner
) -> None:
    """What a killed run may leave after unpacking a deep archive: 1,100 nested folders,
    some read-only, with links out. The next apply clears it and installs."""
    mirror = signed_mirror(tmp_path, signer, hostile.spack_tarball(tmp_path / "ok.spack"))
    manifest = manifest_for(tmp_path, signer, mirror)
    outside = tmp_path / "outside.txt"
    outside.write_text("not reconcile's\n")
    leftover = tmp_path / "opt" / ".reconcile" / "staging" / "run-1-dead"
    leftover.mkdir(parents=True)
    fd = os.open(leftover, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(hostile.NESTING_LEVELS):
            os.mkdir("d", dir_fd=fd)
            os.symlink(outside, "link-out", dir_fd=fd)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            if level % 100 == 0:
                os.fchmod(fd, 0o555)
            os.close(fd)
            fd = child
    finally:
        os.close(fd)
    assert run(manifest, "apply", "--yes") == 0, capsys.readouterr().err
    assert "Traceback" not in capsys.readouterr().err
    assert staging_leftovers(tmp_path / "opt") == []
    assert outside.read_text() == "not reconcile's\n"
    assert run(manifest, "plan", "--detailed-exitcode") == 0


def test_staging_removal_handles_what_rmtree_cannot(tmp_path: Path) -> None:
    top = tmp_path / "tree"
    top.mkdir()
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(hostile.NESTING_LEVELS):
        os.mkdir("d", dir_fd=fd)
        child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.fchmod(fd, 0o500)
        os.close(fd)
        fd = child
    os.close(fd)
    parent = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        remove_tree_at(parent, top.name)
    finally:
        os.close(parent)
    assert not top.exists()


# -- modes under a permissive umask ----------------------------------------------------------


def writable_by_others(root: Path) -> dict[str, str]:
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            mode = path.lstat().st_mode
            if not stat.S_ISLNK(mode) and mode & 0o022:
                found[str(path.relative_to(root))] = oct(stat.S_IMODE(mode))
    return found


def apply_with_umask(manifest: Path, umask: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconcile", "-m", str(manifest), *args],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        preexec_fn=lambda: os.umask(umask),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def victim_prefix(root: Path) -> Path:
    (prefix,) = (p for p in root.iterdir() if p.name.startswith("victim"))
    return prefix


@pytest.mark.parametrize("umask", [0o000, 0o002])
def test_permissive_umask_gives_nothing_writable_the_tarball_did_not_ask_for(
    tmp_path: Path, signer: GpgSigner, umask: int
) -> None:
    shared = hostile.Member(f"{hostile.PREFIX}/share/victim/shared.txt", data=b"s\n", mode=0o664)
    tarball = hostile.spack_tarball(tmp_path / "modes.spack", [shared])
    manifest = manifest_for(tmp_path, signer, signed_mirror(tmp_path, signer, tarball))
    done = apply_with_umask(manifest, umask, "apply", "--yes")
    assert done.returncode == 0, done.stderr
    root = tmp_path / "opt"
    prefix = victim_prefix(root)
    # Only the member whose tarball mode is group-writable (0o664), masked by the umask.
    assert writable_by_others(root) == {
        f"{prefix.name}/share/victim/shared.txt": oct(0o664 & ~umask)
    }
    assert stat.S_IMODE((prefix / "bin/tool").stat().st_mode) == 0o755
    for folder in (root, root / ".reconcile", root / ".reconcile/records"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert apply_with_umask(manifest, umask, "plan", "--detailed-exitcode").returncode == 0


def test_restrictive_umask_masks_tarball_modes(tmp_path: Path, signer: GpgSigner) -> None:
    tarball = hostile.spack_tarball(tmp_path / "modes.spack")
    manifest = manifest_for(tmp_path, signer, signed_mirror(tmp_path, signer, tarball))
    done = apply_with_umask(manifest, 0o077, "apply", "--yes")
    assert done.returncode == 0, done.stderr
    prefix = victim_prefix(tmp_path / "opt")
    assert stat.S_IMODE((prefix / "bin/tool").stat().st_mode) == 0o700
    assert stat.S_IMODE((prefix / "share/victim/readme.txt").stat().st_mode) == 0o600
    assert stat.S_IMODE((prefix / "share").stat().st_mode) == 0o700


# -- the [limits] table ----------------------------------------------------------------------


def test_bad_limits_are_located_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = write_manifest(
        tmp_path,
        extra='\n[limits]\nmax_members = 0\nmax_unpack_ratio = "lots"\nmax_index = 5\n',
    )
    assert run(manifest, "validate") == 1
    err = capsys.readouterr().err
    lines = manifest.read_text().splitlines()
    at = {
        key: lines.index(next(line for line in lines if line.startswith(key))) + 1
        for key in ("max_members", "max_unpack_ratio", "max_index")
    }
    assert f":{at['max_members']}:15: limits.max_members: expected a positive integer, got 0" in err
    assert f":{at['max_unpack_ratio']}:20: limits.max_unpack_ratio: expected an integer" in err
    assert (
        f":{at['max_index']}:1: limits: unknown key 'max_index' (did you mean 'max_index_bytes'?)"
        in err
    )
    assert "Traceback" not in err


# -- dependency graphs and saved plans -------------------------------------------------------

BASE32 = "abcdefghijklmnopqrstuvwxyz234567"


def chain_hash(index: int) -> str:
    digits = "".join(BASE32[(index >> (5 * k)) & 31] for k in range(4))
    return "chain" + "a" * 23 + digits


def chain_node(index: int, depends_on: list[int]) -> dict[str, Any]:
    node = victim_document()["spec"]["nodes"][0] | {
        "name": f"link{index}",
        "hash": chain_hash(index),
    }
    node["dependencies"] = [
        {
            "name": f"link{dep}",
            "hash": chain_hash(dep),
            "parameters": {"deptypes": ["link", "run"], "virtuals": []},
        }
        for dep in depends_on
    ]
    return node


def publish_graph(
    mirror: Path, edges: dict[int, list[int]], tarball: Path, signer: GpgSigner | None
) -> None:
    """One spec per key of ``edges``, depending on the listed ones; each spec file holds the
    node and its direct dependencies, as the index does."""
    nodes = {index: chain_node(index, deps) for index, deps in edges.items()}
    checksum = hashlib.sha256(tarball.read_bytes()).hexdigest()
    for index, deps in edges.items():
        document = {
            "spec": {
                "_meta": {"version": 4},
                "nodes": [nodes[index], *(nodes[d] for d in deps if d != index)],
            }
        }
        if signer is not None:
            write_spec_v2(mirror, spec_document=document, tarball=tarball, signer=signer)
            continue
        # Unsigned: what write_spec_v2 writes, without its fsyncs (thousands of specs).
        root = parse_node(nodes[index])
        target = tarball_path(mirror, root)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(tarball, target)
        document |= {
            "buildcache_layout_version": 2,
            "binary_cache_checksum": {"hash_algorithm": "sha256", "hash": checksum},
        }
        spec_path(mirror, root, signed=False).write_bytes(spec_json_bytes(document))
    write_index_v2(mirror, [parse_node(n) for n in nodes.values()])


@pytest.mark.parametrize(
    ("edges", "named"),
    [
        ({0: [0]}, "link0@1.0/chainaa depends on itself: link0@1.0/chainaa -> link0@1.0/chainaa"),
        ({0: [1], 1: [2], 2: [0]}, "-> link1@1.0/chainaa -> link2@1.0/chainaa -> link0@1.0"),
    ],
    ids=["self-dependency", "three-spec-cycle"],
)
def test_dependency_cycle_is_a_clear_refusal(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    signer: GpgSigner,
    edges: dict[int, list[int]],
    named: str,
) -> None:
    mirror = tmp_path / "mirror"
    publish_graph(mirror, edges, hostile.spack_tarball(tmp_path / "t.spack"), signer)
    key = tmp_path / "hostile.pub"
    key.write_bytes(signer.public_key())
    manifest = write_manifest(
        tmp_path, specs=["link0"], mirror=mirror, key_file=key, fingerprint=signer.fingerprint
    )
    for command in (("plan",), ("apply", "--yes")):
        assert run(manifest, *command) == 1
        err = capsys.readouterr().err
        assert "Traceback" not in err and "RecursionError" not in err
        assert "error[dependency-cycle]" in err and named in err
        assert "must form a DAG" in err
    assert not (tmp_path / "opt").exists() or not any((tmp_path / "opt").iterdir())


def test_a_1500_spec_chain_is_planned(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    length = 1500
    edges = {index: [index + 1] if index + 1 < length else [] for index in range(length)}
    mirror = tmp_path / "mirror"
    publish_graph(mirror, edges, hostile.spack_tarball(tmp_path / "t.spack"), None)
    manifest = write_manifest(tmp_path, specs=["link0"], mirror=mirror, signed=False, key_file=None)
    assert run(manifest, "plan", "--json") == 0, capsys.readouterr().err
    plan = json.loads(capsys.readouterr().out)
    installs = [a for a in plan["actions"] if a["action"] == "install"]
    assert len(installs) == length
    # dependencies first: the last link of the chain is installed first
    assert installs[0]["details"]["name"] == f"link{length - 1}"
    assert installs[-1]["details"]["name"] == "link0"


def test_deeply_nested_saved_plan_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path)
    for text in ("[" * 100_000 + "]" * 100_000, '{"a": ' * 200 + "1" + "}" * 200):
        saved = tmp_path / "plan.json"
        saved.write_text(text)
        assert run(manifest, "apply", "--yes", str(saved)) == 1
        err = capsys.readouterr().err
        assert "Traceback" not in err
        assert "error[invalid-plan]" in err and "nests lists and objects more than 64" in err


# -- hostile HTTP mirrors ------------------------------------------------------------------


def served_paths(mirror: Path) -> tuple[str, str]:
    """The paths of the victim's signed spec file and tarball, relative to the mirror."""
    node = parse_node(victim_document()["spec"]["nodes"][0])
    spec = spec_path(mirror, node, signed=True).relative_to(mirror)
    return str(spec), str(tarball_path(mirror, node).relative_to(mirror))


def http_manifest(tmp_path: Path, signer: GpgSigner, url: str, limits: str = "") -> Path:
    return manifest_for(tmp_path, signer, url, limits)  # type: ignore[arg-type]


def test_endless_tarball_over_http_is_cut_at_its_planned_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], signer: GpgSigner
) -> None:
    mirror = signed_mirror(tmp_path, signer, hostile.spack_tarball(tmp_path / "ok.spack"))
    _, tarball = served_paths(mirror)
    with hostile_server(mirror, {tarball: Misbehave("endless")}) as server:
        manifest = http_manifest(tmp_path, signer, server.url)
        err = assert_refused(tmp_path, capsys, manifest, "")
        assert server.bytes_sent(tarball) < 64 << 20
    assert "sent more; expected at most" in err and "the size the plan recorded" in err
    assert tarball.rsplit("/", 1)[-1] in err


def test_not_clear_signed_sig_over_http_is_refused_after_a_few_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], signer: GpgSigner
) -> None:
    mirror = signed_mirror(tmp_path, signer, hostile.spack_tarball(tmp_path / "ok.spack"))
    spec, _ = served_paths(mirror)
    rule = Misbehave("body", body=b"N" * (1 << 20), repeat=48)
    with hostile_server(mirror, {spec: rule}) as server:
        manifest = http_manifest(tmp_path, signer, server.url)
        assert run(manifest, "plan") == 1
        sent = server.bytes_sent(spec)
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error[" in err
    assert "BEGIN PGP SIGNED MESSAGE" in err or "clear-signed" in err
    assert sent < 16 << 20  # not the 48 MiB the mirror offered


def test_huge_index_over_http_is_refused_by_max_index_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], signer: GpgSigner
) -> None:
    mirror = signed_mirror(tmp_path, signer, hostile.spack_tarball(tmp_path / "ok.spack"))
    rule = Misbehave("huge_length", length=2 << 30, body=b"{")
    with hostile_server(mirror, {"build_cache/index.json": rule}) as server:
        manifest = http_manifest(tmp_path, signer, server.url, "max_index_bytes = 1048576")
        assert run(manifest, "plan") == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "announces 2,147,483,648 bytes" in err and "max_index_bytes" in err


def test_trickling_mirror_is_abandoned_by_min_transfer_rate(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    signer: GpgSigner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One byte every 0.3 s (the 20 s of the report, scaled down): under the read timeout,
    but far below the rate; the window is shortened to 1 s for the test."""
    monkeypatch.setenv("RECONCILE_TRANSFER_RATE_WINDOW", "1")
    mirror = signed_mirror(tmp_path, signer, hostile.spack_tarball(tmp_path / "ok.spack"))
    spec, _ = served_paths(mirror)
    with hostile_server(mirror, {spec: Misbehave("trickle", interval=0.3)}) as server:
        manifest = http_manifest(tmp_path, signer, server.url)
        assert run(manifest, "plan") == 1
        assert server.bytes_sent(spec) < 50
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "min_transfer_rate" in err and spec.rsplit("/", 1)[-1] in err


# -- malformed ELF inside a signed tarball ---------------------------------------------------


def elf_variants(original: bytes) -> list[tuple[str, bytes]]:
    """Truncations and bit flips of a real compiled ELF, mostly in its headers (seeded)."""
    rng = random.Random(14)
    cuts = {0, 1, 4, 5, 16, 52, 63, 64, 200, 600, 2000, 8000, len(original) - 1}
    cuts |= {rng.randrange(len(original)) for _ in range(12)}
    variants = [(f"cut at {n}", original[:n]) for n in sorted(cuts)]
    for _ in range(120):
        flipped = bytearray(original)
        at = rng.randrange(4096 if rng.random() < 0.7 else len(original))
        flipped[at] ^= 1 << rng.randrange(8)
        variants.append((f"bit flip at {at}", bytes(flipped)))
    for _ in range(30):
        smashed = bytearray(original)
        at = rng.randrange(16, 4096)
        smashed[at : at + 8] = b"\xff" * 8
        variants.append((f"0xff x 8 at {at}", bytes(smashed)))
    return variants


def test_fuzzed_real_elf_is_relocated_or_refused_naming_the_file(tmp_path: Path) -> None:
    """The relocation of every variant ends in success or a ReconcileError naming the
    binary; nothing else escapes (no traceback through the CLI)."""
    (tarball,) = SIGNED_CACHE.glob(f"build_cache/*/*/*/*-{HELLO_HASH}.spack")
    unpacked = unpack_package(tarball, tmp_path / "base", dag_hash=HELLO_HASH, restore_modes=False)
    build_info = attrs.evolve(unpacked.build_info, relocate_textfiles=())
    prefix_map = build_prefix_map(
        build_info,
        own_hash=HELLO_HASH,
        new_prefixes={h: f"/n/{h}" for h in build_info.hash_to_prefix},
        new_root="/n",
    )
    binary = "bin/hello-app"
    original = (unpacked.prefix_dir / binary).read_bytes()
    outcomes: dict[str, int] = {"accepted": 0, "refused": 0}
    for what, data in elf_variants(original):
        prefix = tmp_path / "variant"
        if prefix.exists():
            shutil.rmtree(prefix)
        shutil.copytree(unpacked.prefix_dir, prefix, symlinks=True)
        (prefix / binary).write_bytes(data)
        try:
            relocate_package(prefix, build_info, prefix_map)
        except ReconcileError as error:
            assert str(prefix / binary) in error.message, (what, error.message)
            assert error.reference in ("bad-elf", "not-elf"), (what, error.reference)
            outcomes["refused"] += 1
        else:
            outcomes["accepted"] += 1
    assert outcomes["refused"] >= 20 and sum(outcomes.values()) == len(elf_variants(original))


@pytest.mark.parametrize("cut", [40, 300, 3000])
def test_truncated_elf_in_a_signed_tarball_is_a_relocation_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], signer: GpgSigner, cut: int
) -> None:
    (tarball,) = SIGNED_CACHE.glob(f"build_cache/*/*/*/*-{HELLO_HASH}.spack")
    elf = unpack_package(tarball, tmp_path / "elf", dag_hash=HELLO_HASH).prefix_dir
    damaged = (elf / "bin/hello-app").read_bytes()[:cut]
    text = hostile.binary_distribution_text().replace(
        "relocate_binaries: []", "relocate_binaries: [bin/tool]"
    )
    members = [
        *hostile.parent_folders(),
        *(m for m in hostile.package_body() if not m.name.endswith("bin/tool")),
        hostile.Member(f"{hostile.PREFIX}/bin/tool", data=damaged, mode=0o755),
        hostile.binary_distribution(text=text),
    ]
    built = hostile.build_tarball(tmp_path / "elf.spack", members)
    manifest = manifest_for(tmp_path, signer, signed_mirror(tmp_path, signer, built))
    err = assert_refused(tmp_path, capsys, manifest, "")
    assert "error[bad-elf]" in err or "error[not-elf]" in err
    assert "bin/tool" in err


@pytest.mark.parametrize(
    "item",
    [
        {"contentLength": list(range(100_000))},
        {"contentLength": 1, "mediaType": {"k": "v" * 100_000}},
        {"contentLength": 1, "mediaType": "t", "compression": "z" * 100_000},
    ],
)
def test_untrusted_manifest_values_are_quoted_shortened(item: dict[str, Any]) -> None:
    record = {
        "contentLength": 1,
        "mediaType": "application/vnd.spack.install.v2.tar+gzip",
        "compression": "gzip",
        "checksumAlgorithm": "sha256",
        "checksum": "0" * 64,
    } | item
    text = json.dumps({"version": 3, "data": [record]}).encode()
    with pytest.raises(VerificationError) as caught:
        parse_manifest(text, source="mirror 'm': x.spec.manifest.json")
    assert len(caught.value.message) < 500
