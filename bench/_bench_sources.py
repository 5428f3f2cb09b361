"""The C sources of the benchmark's packages, and compiling them once into templates.

Two kinds of package. A library ``blibNN`` ships ``lib/libblib.so.1`` (a C string naming its
data file) and ``bin/blib-info`` (RPATH to its own ``lib``, a C string with its prefix). An
application ``bappNNN`` ships ``lib/libbapp.so`` and ``bin/bappNNN``, both with an RPATH to
its library's ``lib`` (and to its own), and C strings naming its prefix and config file.

They are compiled once, at template prefixes whose length equals every real prefix of the
same kind (the names have a fixed width and every DAG hash has 32 characters); each package
then gets copies whose template prefixes are rewritten in place to its real ones. So every
package's ELF files differ and name the right prefixes, without compiling 200 times.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import attrs

LIBRARY_SOURCE = r"""
#include <stdio.h>
static const char data_path[] = BLIB_DATA;
const char *blib_data_path(void) { return data_path; }
int blib_print_data(FILE *out) {
    char line[512];
    FILE *in = fopen(data_path, "r");
    if (in == NULL) { fprintf(out, "cannot open %s\n", data_path); return 1; }
    while (fgets(line, sizeof line, in) != NULL) fputs(line, out);
    fclose(in);
    return 0;
}
"""

LIBRARY_INFO_SOURCE = r"""
#include <stdio.h>
const char *blib_data_path(void);
int blib_print_data(FILE *out);
int main(void) {
    printf("blib at %s\n", BLIB_PREFIX);
    printf("data %s\n", blib_data_path());
    return blib_print_data(stdout);
}
"""

APP_LIBRARY_SOURCE = r"""
#include <stdio.h>
const char *blib_data_path(void);
int blib_print_data(FILE *out);
int bapp_run(void) {
    printf("config %s\n", BAPP_CONFIG);
    printf("data %s\n", blib_data_path());
    return blib_print_data(stdout);
}
"""

APP_SOURCE = r"""
#include <stdio.h>
int bapp_run(void);
int main(void) {
    printf("bapp at %s\n", BAPP_PREFIX);
    return bapp_run();
}
"""

LIBRARY_FILE = "lib/libblib.so.1"
LIBRARY_INFO_FILE = "bin/blib-info"
APP_LIBRARY_FILE = "lib/libbapp.so"


@attrs.frozen(kw_only=True)
class Templates:
    """Compiled ELF files (relative path in the prefix -> bytes) at the template prefixes."""

    library_prefix: str
    app_prefix: str
    library_files: dict[str, bytes]
    app_files: dict[str, bytes]  # the executable under the key "bin/<APP>"


APP_EXECUTABLE_KEY = "bin/<APP>"


def c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _gcc(*args: str, cwd: Path) -> None:
    subprocess.run(["gcc", "-O2", "-Wall", "-Werror", *args], cwd=cwd, check=True)


# Fixed names, so that only the prefix differs between packages of a kind.
def library_data_file(prefix: str) -> str:
    return f"{prefix}/share/blib/data.txt"


def app_config_file(prefix: str) -> str:
    return f"{prefix}/etc/bapp.conf"


def compile_templates(*, library_prefix: str, app_prefix: str, app_name: str) -> Templates:
    """Compile the four ELF files at the template prefixes (which are created and removed:
    the application must link against the library where its RPATH says)."""
    library_root, app_root = Path(library_prefix), Path(app_prefix)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            build = Path(scratch)
            for name, text in (
                ("blib.c", LIBRARY_SOURCE),
                ("blib-info.c", LIBRARY_INFO_SOURCE),
                ("bapplib.c", APP_LIBRARY_SOURCE),
                ("bapp.c", APP_SOURCE),
            ):
                (build / name).write_text(text)
            for folder in (library_root / "lib", library_root / "bin"):
                folder.mkdir(parents=True)
            for folder in (app_root / "lib", app_root / "bin"):
                folder.mkdir(parents=True)
            library_lib = f"{library_prefix}/lib"
            data = library_data_file(library_prefix)
            _gcc(
                "-shared",
                "-fPIC",
                "-Wl,-soname,libblib.so.1",
                f"-DBLIB_DATA={c_string(data)}",
                "-o",
                str(library_root / LIBRARY_FILE),
                "blib.c",
                cwd=build,
            )
            (library_root / "lib/libblib.so").symlink_to("libblib.so.1")
            # RPATH (not RUNPATH), as Spack's compiler wrappers produce.
            _gcc(
                f"-DBLIB_PREFIX={c_string(library_prefix)}",
                "-o",
                str(library_root / LIBRARY_INFO_FILE),
                "blib-info.c",
                f"-L{library_lib}",
                "-lblib",
                f"-Wl,-rpath,{library_lib}",
                "-Wl,--disable-new-dtags",
                cwd=build,
            )
            config = app_config_file(app_prefix)
            _gcc(
                "-shared",
                "-fPIC",
                f"-DBAPP_CONFIG={c_string(config)}",
                "-o",
                str(app_root / APP_LIBRARY_FILE),
                "bapplib.c",
                f"-L{library_lib}",
                "-lblib",
                f"-Wl,-rpath,{library_lib}",
                "-Wl,--disable-new-dtags",
                cwd=build,
            )
            _gcc(
                f"-DBAPP_PREFIX={c_string(app_prefix)}",
                "-o",
                str(app_root / "bin" / app_name),
                "bapp.c",
                f"-L{app_prefix}/lib",
                "-lbapp",
                f"-L{library_lib}",
                "-lblib",
                f"-Wl,-rpath,{library_lib}:{app_prefix}/lib",
                "-Wl,--disable-new-dtags",
                cwd=build,
            )
        library_files = {
            relative: (library_root / relative).read_bytes()
            for relative in (LIBRARY_FILE, LIBRARY_INFO_FILE)
        }
        app_files = {
            APP_LIBRARY_FILE: (app_root / APP_LIBRARY_FILE).read_bytes(),
            APP_EXECUTABLE_KEY: (app_root / "bin" / app_name).read_bytes(),
        }
    finally:
        shutil.rmtree(library_root, ignore_errors=True)
        shutil.rmtree(app_root, ignore_errors=True)
    return Templates(
        library_prefix=library_prefix,
        app_prefix=app_prefix,
        library_files=library_files,
        app_files=app_files,
    )


def rewrite_prefixes(data: bytes, replacements: dict[str, str]) -> bytes:
    """``data`` with each template prefix replaced by a real one of the same length."""
    for old, new in replacements.items():
        if len(old) != len(new):
            raise ValueError(f"{new!r} is not as long as the template prefix {old!r}")
        data = data.replace(old.encode(), new.encode())
    return data
