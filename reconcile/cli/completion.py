"""``reconcile completion bash|zsh|fish``: shell completion scripts, made from the parser.

The scripts are static: every verb, sub-verb and option of the parser as it is, so they
stay right as the parser changes (they are generated, never written by hand). Spec names are
not completed: that would mean reading mirrors on every key press.
"""

from __future__ import annotations

import argparse
from typing import Any

SHELLS = ("bash", "zsh", "fish")


def add_completion_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    completion = subparsers.add_parser(
        "completion",
        help="print a shell completion script",
        description="Print a completion script for bash, zsh or fish. For bash: "
        "'source <(reconcile completion bash)' in ~/.bashrc; zsh: 'source <(reconcile "
        "completion zsh)' in ~/.zshrc; fish: 'reconcile completion fish > "
        "~/.config/fish/completions/reconcile.fish'.",
    )
    completion.add_argument("shell", choices=SHELLS)


def _children(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return sorted(
        option
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") or len(option) == 2
    )


def _tree(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], list[str], list[str]]]:
    """(verb path, sub-verbs, options) for the parser and every parser below it."""
    children = _children(parser)
    rows = [(path, sorted(children), _options(parser))]
    for name, child in sorted(children.items()):
        rows.extend(_tree(child, (*path, name)))
    return rows


def bash_script(parser: argparse.ArgumentParser) -> str:
    cases = []
    for path, verbs, options in _tree(parser):
        key = " ".join(path)
        cases.append(f'        "{key}") words="{" ".join(verbs + options)}" ;;')
    return "\n".join(
        [
            "# bash completion for reconcile (reconcile completion bash)",
            "_reconcile() {",
            '    local cur="${COMP_WORDS[COMP_CWORD]}" path="" word words i',
            "    for ((i = 1; i < COMP_CWORD; i++)); do",
            '        word="${COMP_WORDS[i]}"',
            '        case "$word" in -*) continue ;; esac',
            '        case " $_reconcile_verbs " in *" ${path:+$path }$word "*)'
            ' path="${path:+$path }$word" ;; esac',
            "    done",
            '    case "$path" in',
            *cases,
            '        *) words="" ;;',
            "    esac",
            '    COMPREPLY=($(compgen -W "$words" -- "$cur"))',
            "}",
            '_reconcile_verbs="'
            + " ".join(" ".join(path) for path, _, _ in _tree(parser) if path)
            + '"',
            "complete -o default -F _reconcile reconcile",
            "",
        ]
    )


def zsh_script(parser: argparse.ArgumentParser) -> str:
    return "\n".join(
        [
            "#compdef reconcile",
            "# zsh completion for reconcile (reconcile completion zsh): uses bash's",
            "autoload -U +X bashcompinit && bashcompinit",
            bash_script(parser),
        ]
    )


def fish_script(parser: argparse.ArgumentParser) -> str:
    lines = ["# fish completion for reconcile (reconcile completion fish)"]
    lines.append("complete -c reconcile -f")
    for path, verbs, options in _tree(parser):
        if path:
            condition = " ".join(f"__fish_seen_subcommand_from {word};" for word in path)
            condition = f"-n '{condition.rstrip(';')}'"
        else:
            condition = "-n '__fish_use_subcommand'"
        for verb in verbs:
            lines.append(f"complete -c reconcile {condition} -a {verb}")
        for option in options:
            flag = f"-l {option[2:]}" if option.startswith("--") else f"-s {option[1:]}"
            lines.append(f"complete -c reconcile {condition} {flag}")
    return "\n".join(lines) + "\n"


def completion_script(shell: str, parser: argparse.ArgumentParser) -> str:
    return {"bash": bash_script, "zsh": zsh_script, "fish": fish_script}[shell](parser)
