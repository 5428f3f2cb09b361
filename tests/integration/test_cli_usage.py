"""How users type commands: options after the verb, help that explains each verb."""

from __future__ import annotations

import argparse
import contextlib
import io
from pathlib import Path

import pytest
from support import write_manifest

from reconcile.cli.main import build_parser, main
from reconcile.cli.parser import VERBS, named_verb


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


def _verb_paths(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every verb and sub-verb (``cache gc``, ...) with its parser."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(((*path, name), sub))
                found.extend(_verb_paths(sub, (*path, name)))
    return found


def _samples() -> list[list[str]]:
    """For every verb: it alone, with --help, with an unknown option, with each of its
    options (and a value where it takes one), and with the manifest before it."""
    samples: list[list[str]] = [[], ["--help"], ["nosuchverb"], ["-m", "x.toml"]]
    for path, parser in _verb_paths(build_parser()):
        samples += [[*path], [*path, "--help"], [*path, "--no-such-option"]]
        samples.append(["-m", "x.toml", *path, "-m", "y.toml"])
        for action in parser._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    value = [] if action.nargs == 0 else ["1"]
                    samples.append([*path, option, *value, "extra"])
                    samples.append([*path, option, *value])
    return samples


def _outcome(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[object, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            result: object = vars(parser.parse_args(argv))
        except SystemExit as exited:
            result = exited.code
    return result, out.getvalue(), err.getvalue()


def test_the_parser_of_the_named_verb_parses_as_the_whole_parser() -> None:
    """main builds only the parser of the verb the words name: for every verb and sub-verb
    and each of their options, it gives the same arguments, help and errors as the whole."""
    samples = _samples()
    assert len(samples) > 300
    for argv in samples:
        assert _outcome(build_parser(argv), argv) == _outcome(build_parser(), argv), argv


def test_the_verbs_table_names_each_verb_the_parser_has() -> None:
    everything = [path[0] for path, _ in _verb_paths(build_parser()) if len(path) == 1]
    assert [name for names, _ in VERBS for name in names] == everything
    for names, _ in VERBS:
        alone = [path[0] for path, _ in _verb_paths(build_parser([names[0]])) if len(path) == 1]
        assert alone == list(names)
        assert named_verb(["-m", "plan", names[-1], "--json"]) == names[-1]
    assert named_verb(["--manifest", "x.toml"]) is None
    assert named_verb(["-mplan", "nosuchverb"]) is None
