"""How users type commands: options after the verb, help that explains each verb."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import write_manifest

from reconcile.cli.main import build_parser, main


@pytest.mark.parametrize(
    "argv",
    [
        ["plan", "-m", "{m}"],
        ["plan", "--manifest", "{m}", "--detailed-exitcode"],
        ["validate", "-m", "{m}"],
        ["cache", "list", "-m", "{m}"],
        ["keys", "list", "-m", "{m}"],
    ],
)
def test_manifest_option_after_the_verb(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    manifest = write_manifest(tmp_path)
    code = main([arg.replace("{m}", str(manifest)) for arg in argv])
    captured = capsys.readouterr()
    assert code in (0, 2), captured.err
    assert "usage:" not in captured.err


def test_manifest_after_the_verb_wins_over_the_one_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path)
    missing = tmp_path / "missing.toml"
    assert main(["-m", str(missing), "validate", "-m", str(manifest)]) == 0
    assert main(["-m", str(manifest), "validate", "-m", str(missing)]) == 1
    assert "missing.toml" in capsys.readouterr().err


def test_manifest_before_the_verb_still_works(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path)
    assert main(["-m", str(manifest), "validate"]) == 0


@pytest.mark.parametrize(
    ("path", "words"),
    [
        (["validate"], "every problem is reported at once"),
        (["plan"], "exit codes: 0"),
        (["apply"], "Nothing is committed unless every check"),
        (["cache", "list"], "Reads only"),
        (["keys", "list"], "private keystore"),
    ],
)
def test_every_verb_describes_itself(path: list[str], words: str) -> None:
    parser = build_parser()
    with pytest.raises(SystemExit) as exited:
        parser.parse_args([*path, "--help"])
    assert exited.value.code == 0
    sub = parser
    for word in path:
        sub = next(
            action.choices[word]
            for action in sub._actions
            if hasattr(action, "choices") and isinstance(action.choices, dict)
        )
    assert words in " ".join(sub.format_help().split())


@pytest.mark.parametrize(
    "args",
    [
        ("keys", "export", "team-gpg", "--out", "~nosuchuser-reconcile/k.asc"),
        ("init", "--mirror", "~nosuchuser-reconcile/mirror", "--spec", "x"),
        ("plan", "--out", "~nosuchuser-reconcile/plan.json"),
    ],
)
def test_an_unknown_user_in_a_typed_path_is_not_a_traceback(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    from support import run_subprocess, write_manifest

    manifest = tmp_path / "new.toml" if args[0] == "init" else write_manifest(tmp_path)
    done = run_subprocess(manifest, *args)
    assert "Traceback" not in done.stderr
    # init writes a manifest for a mirror that does not exist yet; the others refuse
    assert done.returncode == (0 if args[0] == "init" else 1), done.stdout + done.stderr
    assert args[0] == "init" or "error[" in done.stderr
