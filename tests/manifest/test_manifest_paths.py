"""Dangerous manifests are refused by ``validate`` (and so by every command), each problem
located at its file, line and column, never a traceback: system folders as roots, roots
inside one another, key files that are not regular files, paths the filesystem cannot hold,
and manifests too large to be one. The corpus (invalid/65-67) holds the cases that need no
files; these need a real filesystem."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURE_KEY, REPO

from reconcile.buildcache.pinned_keys import load_pinned_keys
from reconcile.errors import ManifestError, VerificationError
from reconcile.manifest.bounded import MAX_MANIFEST_BYTES
from reconcile.manifest.load import load_manifest
from reconcile.manifest.paths import is_system_folder

KEY = '[[key]]\nname = "team"\nfingerprint = "E4A1C447981D70AB30BD8B09643A47B4E5E41176"\n'


def write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "reconcile.toml"
    path.write_text("version = 1\n" + text)
    return path


def problems(manifest: Path) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        load_manifest(manifest)
    return [str(problem) for problem in caught.value.problems]


def install(root: str) -> str:
    return f'[install]\nroot = "{root}"\nspecs = ["hello-app"]\n'


def validate(manifest: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconcile", "-m", str(manifest), "validate"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=120,  # a safety net only: a FIFO used to hang here for ever
    )


@pytest.mark.parametrize(
    ("path", "system"),
    [
        ("/", True),
        ("/bin", True),
        ("/boot", True),
        ("/boot/grub", True),
        ("/dev", True),
        ("/dev/shm/x", True),
        ("/etc", True),
        ("/etc/spack", True),
        ("/lib", True),
        ("/lib64", True),
        ("/libx32", True),
        ("/proc", True),
        ("/proc/1/root", True),
        ("/run", True),
        ("/sbin", True),
        ("/sys", True),
        ("/sys/fs/cgroup", True),
        ("/usr", True),
        ("/var", True),
        # folders of their own below the system trees that allow them
        ("/usr/local", False),
        ("/usr/local/spack", False),
        ("/var/tmp/spack", False),
        ("/var/lib/spack", False),
        ("/run/user/1000/spack", False),
        ("/opt/spack", False),
        ("/library", True),  # the decision says /lib*: every top-level /lib... name
        ("/opt/lib", False),
        ("/etcetera", False),
        ("/home/ci/.reconcile", False),
    ],
)
def test_system_folders(path: str, system: bool) -> None:
    assert is_system_folder(path) is system


@pytest.mark.parametrize("root", ["/", "/etc", "/usr", "/var", "/bin", "/lib64", "/proc/self"])
def test_validate_refuses_a_system_folder_as_install_root(tmp_path: Path, root: str) -> None:
    manifest = write(tmp_path, install(root))
    shown = problems(manifest)
    assert len(shown) == 1
    assert shown[0].startswith(f"{manifest}:3:8: install.root: install root '{root}'")
    assert "is a system folder" in shown[0]


def test_a_link_to_a_system_folder_is_caught_by_its_target(tmp_path: Path) -> None:
    (tmp_path / "innocent").symlink_to("/etc")
    manifest = write(tmp_path, install("innocent") + '[[cache]]\nroot = "innocent/cache"\n')
    shown = problems(manifest)
    assert len(shown) == 2
    assert shown[0].startswith(
        f"{manifest}:3:8: install.root: install root 'innocent' (/etc) is a system folder "
    )
    assert shown[1].startswith(
        f"{manifest}:6:8: cache[0].root: cache root 'innocent/cache' (/etc/cache) is a system "
    )


def test_folders_of_their_own_are_accepted(tmp_path: Path) -> None:
    text = (
        install("opt")
        + '[[mirror]]\nname = "team"\nurl = "mirror"\n'
        + '[[cache]]\nroot = "opt-cache"\n'  # beside the install root, not inside it
        + '[[cache]]\nroot = "~/.cache/reconcile-h3-test"\n'
    )
    loaded = load_manifest(write(tmp_path, text))
    assert loaded.install_root() == tmp_path / "opt"


def test_roots_inside_one_another(tmp_path: Path) -> None:
    text = (
        install("shared/opt")
        + '[[mirror]]\nname = "team"\nurl = "shared"\n'
        + '[[cache]]\nroot = "shared/opt/.reconcile"\n'
        + '[[cache]]\nroot = "elsewhere"\n'
        + '[[cache]]\nroot = "elsewhere/opt"\n'
    )
    shown = problems(write(tmp_path, text))
    assert [line.split(": ", 2)[1] for line in shown] == [
        "install.root",
        "cache[0].root",
        "cache[0].root",
    ]
    assert f"install root {tmp_path}/shared/opt is inside mirror 'team'" in shown[0]
    assert "is inside the install root's state folder .reconcile/" in shown[1]
    assert "is inside mirror 'team'" in shown[2]


def test_install_root_inside_or_equal_to_a_cache_root(tmp_path: Path) -> None:
    for cache in ("opt", "."):
        shown = problems(write(tmp_path, install("opt") + f'[[cache]]\nroot = "{cache}"\n'))
        assert any(
            "install.root: install root" in line and "inside cache[0]" in line for line in shown
        )


def test_an_existing_file_as_root(tmp_path: Path) -> None:
    (tmp_path / "opt").write_text("not a folder")
    (tmp_path / "cache").write_text("not a folder")
    manifest = write(tmp_path, install("opt") + '[[cache]]\nroot = "cache"\n')
    assert problems(manifest) == [
        f"{manifest}:3:8: install.root: install root {tmp_path}/opt exists and is not a "
        "folder (expected a folder, or a path that does not exist yet)",
        f"{manifest}:6:8: cache[0].root: cache root {tmp_path}/cache exists and is not a "
        "folder (expected a folder, or a path that does not exist yet)",
    ]


def test_key_files_that_are_not_regular_files(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "team.pub")
    (tmp_path / "folder.pub").mkdir()
    text = (
        KEY
        + 'file = "team.pub"\n'
        + KEY.replace('"team"', '"zero"')
        + 'file = "/dev/zero"\n'
        + KEY.replace('"team"', '"dir"')
        + 'file = "folder.pub"\n'
    )
    manifest = write(tmp_path, text)
    done = validate(manifest)  # the FIFO has no writer: opening it would block for ever
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"{manifest}:5:8: key[0].file: key file {tmp_path}/team.pub is a FIFO (named " in (
        done.stderr
    )
    assert f"{manifest}:9:8: key[1].file: key file /dev/zero is a character device" in done.stderr
    assert f"{manifest}:13:8: key[2].file: key file {tmp_path}/folder.pub is a folder" in (
        done.stderr
    )


def test_a_key_file_swapped_for_a_fifo_after_validation_is_not_read(tmp_path: Path) -> None:
    """The check at load time is a courtesy; the read itself refuses a FIFO without
    blocking and never reads past its bound."""
    key = tmp_path / "team.pub"
    key.write_bytes(FIXTURE_KEY.read_bytes())
    loaded = load_manifest(write(tmp_path, KEY + 'file = "team.pub"\n'))
    key.unlink()
    os.mkfifo(key)
    with pytest.raises(VerificationError) as caught:
        load_pinned_keys(loaded, read_url=lambda url: b"")
    assert caught.value.reference == "key-file-unreadable"
    assert "is not a regular file" in caught.value.message


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        ("opt\\u0000evil", "install root contains a NUL byte (expected a path)"),
        ("~no-such-user-h3/opt", "install root '~no-such-user-h3': no-such-user-h3 has no home"),
        ("x" * 256, "install root has a component of 256 bytes"),
        ("/" + "/".join(["d" * 200] * 21), "bytes long once resolved (expected fewer than 4096)"),
        ("/" + "/".join(["d" * 200] * 20), "prefixes below it would pass the 4096-byte path limit"),
    ],
    ids=["nul", "no-such-user", "long-name", "past-path-max", "no-room-for-prefixes"],
)
def test_paths_the_filesystem_cannot_hold(tmp_path: Path, root: str, expected: str) -> None:
    manifest = write(tmp_path, install(root))
    done = validate(manifest)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "error[invalid-manifest]: 1 problem in the manifest" in done.stderr
    assert f"{manifest}:3:8: install.root: " in done.stderr
    assert expected in done.stderr


def test_padded_length_leaving_no_room_for_prefixes(tmp_path: Path) -> None:
    manifest = write(tmp_path, install("opt").replace("specs", "padded_length = 3900\nspecs"))
    assert problems(manifest) == [
        f"{manifest}:4:17: install.padded_length: padded_length = 3900 leaves no room for "
        "prefixes within the 4096-byte path limit (expected at most 3839)"
    ]
    ok = write(tmp_path / "ok", install("opt").replace("specs", "padded_length = 3839\nspecs"))
    load_manifest(ok)


def test_a_huge_manifest_is_refused_by_its_size(tmp_path: Path) -> None:
    manifest = tmp_path / "reconcile.toml"
    with manifest.open("wb") as stream:
        stream.write(b"version = 1\n")
        stream.truncate(50 * 1000 * 1000)  # 50 MB (sparse): never parsed
    shown = problems(manifest)
    assert shown == [
        f"{manifest}: not read: {manifest} is 50000000 bytes (expected at most "
        f"{MAX_MANIFEST_BYTES} bytes)"
    ]


def test_a_manifest_that_is_a_fifo_or_a_device(tmp_path: Path) -> None:
    fifo = tmp_path / "reconcile.toml"
    os.mkfifo(fifo)
    for manifest in (fifo, Path("/dev/zero")):
        done = validate(manifest)
        assert done.returncode == 1
        assert "Traceback" not in done.stderr
        assert f"error[invalid-manifest]: 1 problem in the manifest\n  {manifest}: not read: " in (
            done.stderr
        )
        assert "is not a regular file" in done.stderr


def test_plan_refuses_what_validate_refuses(tmp_path: Path) -> None:
    manifest = write(tmp_path, install("/"))
    done = subprocess.run(
        [sys.executable, "-m", "reconcile", "-m", str(manifest), "plan"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
        timeout=120,
    )
    assert done.returncode == 1
    assert f"{manifest}:3:8: install.root: install root '/' is a system folder" in done.stderr
    assert "Traceback" not in done.stderr


def test_local_source_archives_that_are_not_regular_files(tmp_path: Path) -> None:
    """A source archive is hashed whole: /dev/zero would never end, a FIFO never open."""
    os.mkfifo(tmp_path / "greetlib-2.1.tar.gz")
    sources = "".join(
        f'[[source]]\nname = "s{index}"\nversion = "1"\nurl = "{url}"\n'
        f'sha256 = "{"0" * 64}"\nmirror = "sources"\n'
        for index, url in enumerate(
            ["greetlib-2.1.tar.gz", "file:///dev/zero", "~no-such-user-h3/a.tar.gz"]
        )
    )
    manifest = write(tmp_path, '[[mirror]]\nname = "sources"\nurl = "sources"\n' + sources)
    done = validate(manifest)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert (
        f"source[0].url: source archive {tmp_path}/greetlib-2.1.tar.gz is a FIFO (named pipe), "
        "not a regular file (expected an archive file)"
    ) in done.stderr
    assert "source[1].url: source archive /dev/zero is a character device" in done.stderr
    assert "source[2].url: source archive '~no-such-user-h3': no-such-user-h3 has no home" in (
        done.stderr
    )
