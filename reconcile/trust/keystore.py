"""Where signing keys live: the GnuPG homes reconcile reads secret keys from, and the private
folder ``reconcile keys generate`` makes them in.

Reading looks in ``--home`` or ``$RECONCILE_SIGNING_HOME`` when given, else in reconcile's own
key folder and then ``$GNUPGHOME`` (or ``~/.gnupg``). Generating never writes into the user's
personal keyring: it uses ``--home``, else ``$RECONCILE_SIGNING_HOME``, else the dedicated
folder ``$XDG_DATA_HOME/reconcile/keys`` (``~/.local/share/reconcile/keys``). Wherever it is, a
home holding a secret key must be private and must not lie inside a mirror, whose files are
published.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path

from reconcile.errors import ReconcileError, TransportError
from reconcile.manifest.model import ManifestFile
from reconcile.transport.file import url_to_path
from reconcile.trust.gnupg import gpg_binary
from reconcile.trust.secret_keys import find_signing_key
from reconcile.trust.sign import GpgSigner
from reconcile.trust.signing_home import SigningHome, check_readable_home
from reconcile.userpath import expand_user

ENV_SIGNING_HOME = "RECONCILE_SIGNING_HOME"
PRIVATE_FOLDER_MODE = 0o700
PRIVATE_FILE_MODE = 0o600

ORIGIN_OPTION = "--home"
ORIGIN_RECONCILE_FOLDER = "reconcile's key folder"
ORIGIN_GNUPG_DEFAULT = "GnuPG's default home"


def _user_home(environ: Mapping[str, str]) -> Path:
    home = environ.get("HOME")
    return Path(home) if home else Path.home()


def reconcile_key_folder(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/reconcile/keys``, or ``~/.local/share/reconcile/keys``."""
    env = os.environ if environ is None else environ
    data_home = env.get("XDG_DATA_HOME", "")
    # The XDG spec says a relative value is invalid and must be ignored.
    if data_home and Path(data_home).is_absolute():
        base = Path(data_home)
    else:
        base = _user_home(env) / ".local" / "share"
    return base / "reconcile" / "keys"


def _explicit(path: Path | str, origin: str) -> SigningHome:
    return SigningHome(path=expand_user(path).absolute(), origin=origin, explicit=True)


def signing_homes(
    home: Path | None = None, environ: Mapping[str, str] | None = None
) -> tuple[SigningHome, ...]:
    """The homes to search for a signing key, in order.

    ``--home`` or ``$RECONCILE_SIGNING_HOME`` alone when given; otherwise reconcile's key
    folder (where ``keys generate`` puts keys) and then ``$GNUPGHOME`` or ``~/.gnupg``, either
    skipped when it does not exist.
    """
    env = os.environ if environ is None else environ
    if home is not None:
        return (_explicit(home, ORIGIN_OPTION),)
    if env.get(ENV_SIGNING_HOME):
        return (_explicit(env[ENV_SIGNING_HOME], f"${ENV_SIGNING_HOME}"),)
    gnupg = (
        SigningHome(path=expand_user(env["GNUPGHOME"]).absolute(), origin="$GNUPGHOME")
        if env.get("GNUPGHOME")
        else SigningHome(path=_user_home(env) / ".gnupg", origin=ORIGIN_GNUPG_DEFAULT)
    )
    return (SigningHome(path=reconcile_key_folder(env), origin=ORIGIN_RECONCILE_FOLDER), gnupg)


def generation_home(
    home: Path | None = None, environ: Mapping[str, str] | None = None
) -> SigningHome:
    """Where ``keys generate`` puts a new key. ``$GNUPGHOME`` is deliberately not used: a
    throw-away CI key does not belong in someone's personal keyring."""
    env = os.environ if environ is None else environ
    if home is not None:
        return _explicit(home, ORIGIN_OPTION)
    if env.get(ENV_SIGNING_HOME):
        return _explicit(env[ENV_SIGNING_HOME], f"${ENV_SIGNING_HOME}")
    return SigningHome(
        path=reconcile_key_folder(env), origin=ORIGIN_RECONCILE_FOLDER, explicit=False
    )


def require_gpg() -> str:
    """The gpg program, checked to exist before anything is created for it."""
    binary = gpg_binary()
    if shutil.which(binary) is None:
        raise ReconcileError(
            f"the gpg program {binary!r} was not found or is not executable: reconcile needs "
            "GnuPG to make, list and export signing keys",
            hint="install it (Debian: apt-get install gnupg) or set RECONCILE_GPG to its path",
            reference="gpg-missing",
        )
    return binary


# --- keeping secret keys out of mirrors -------------------------------------------------


def is_within(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies below it (both resolved, symlinks followed)."""
    resolved, container = expand_user(path).resolve(), expand_user(folder).resolve()
    return resolved == container or container in resolved.parents


def local_mirror_folders(manifest_file: ManifestFile) -> Iterator[tuple[str, Path]]:
    """``(name, folder)`` of every mirror of the manifest that is on a local filesystem."""
    for mirror in manifest_file.manifest.mirrors:
        url = manifest_file.mirror_url(mirror)
        if not url.startswith("file:"):
            continue
        try:
            yield mirror.name, url_to_path(url)
        except TransportError:
            continue  # a file URL naming a host: the manifest checks already refuse it


def _looks_like_mirror(folder: Path) -> bool:
    """A Spack binary cache root, layout v2 (``build_cache/``) or v3 (``v3/layout.json``)."""
    return (folder / "build_cache").is_dir() or (folder / "v3" / "layout.json").is_file()


def refuse_inside_mirror(path: Path, *, manifest_file: ManifestFile | None, what: str) -> None:
    """Refuse ``path`` (a home or a file that holds a secret key) inside a declared local
    mirror, or inside any folder that is a binary cache: a mirror's files get published."""
    resolved = expand_user(path).resolve()
    if manifest_file is not None:
        for name, folder in local_mirror_folders(manifest_file):
            if is_within(resolved, folder):
                raise ReconcileError(
                    f"{what} {path} is inside mirror '{name}' ({folder}): expected a private "
                    "place, because everything in a mirror may be published",
                    hint="choose a folder outside every mirror, for example the default "
                    f"{reconcile_key_folder()}",
                    reference="secret-in-mirror",
                )
    for folder in (resolved, *resolved.parents):
        if _looks_like_mirror(folder):
            raise ReconcileError(
                f"{what} {path} is inside {folder}, which holds a binary cache: expected a "
                "private place, because everything in a mirror may be published",
                hint="choose a folder outside every mirror, for example the default "
                f"{reconcile_key_folder()}",
                reference="secret-in-mirror",
            )


# --- private homes --------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def prepare_private_home(home: SigningHome) -> bool:
    """Make ``home`` a private folder (0700) if it does not exist; refuse an existing one that
    others can read. Returns whether it was created."""
    path = home.path
    if path.exists():
        check_readable_home(home)
        loose = _mode(path) & 0o077
        if loose:
            raise ReconcileError(
                f"the signing key home {home.describe()} has mode {_mode(path):04o}: expected "
                "a private folder (0700), because it will hold a secret key",
                hint=f"chmod 700 {path}, or choose another folder with --home",
                reference="signing-home-not-private",
            )
        return False
    try:
        path.mkdir(mode=PRIVATE_FOLDER_MODE, parents=True)
        path.chmod(PRIVATE_FOLDER_MODE)  # mkdir's mode is masked by the umask
    except OSError as exc:
        raise ReconcileError(
            f"cannot create the signing key home {home.describe()}: {exc.strerror or exc}",
            hint="choose a writable folder with --home",
            reference="signing-home-unwritable",
        ) from None
    return True


def tighten_private_home(path: Path) -> None:
    """Folders 0700 and files 0600 under ``path``: gpg leaves ``pubring.kbx`` 0644. Sockets
    and symbolic links are left alone."""
    for folder, subfolders, files in os.walk(path):
        Path(folder).chmod(PRIVATE_FOLDER_MODE)
        for name in files:
            file = Path(folder) / name
            if stat.S_ISREG(file.lstat().st_mode):
                file.chmod(PRIVATE_FILE_MODE)
        subfolders[:] = [s for s in subfolders if not (Path(folder) / s).is_symlink()]


# --- signing -----------------------------------------------------------------------------------


def signer_from_keystore(
    fingerprint: str, *, home: Path | None = None, environ: Mapping[str, str] | None = None
) -> GpgSigner:
    """A signer for the secret key ``fingerprint`` (or a [[key]]-style selector), found in
    the signing homes: ``home``, else ``$RECONCILE_SIGNING_HOME``, else reconcile's key folder
    and ``$GNUPGHOME`` or ``~/.gnupg``."""
    require_gpg()
    found = find_signing_key(fingerprint, homes=signing_homes(home, environ))
    return GpgSigner(gnupghome=found.home.path, fingerprint=found.key.fingerprint)
