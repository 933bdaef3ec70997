"""The README's CLI synopsis against the argparse parsers, so that neither drifts: every flag
(and positional) of every subcommand appears on that command's lines of the synopsis block,
and every command of the synopsis exists."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from kbench.cli import build_parser

README = Path(__file__).resolve().parent.parent / "README.md"


def synopsis() -> dict[str, str]:
    """``command -> its lines`` from the first code block of the README's "## CLI" section
    (a line ``kbench CMD ...`` starts a command, indented lines continue it)."""
    text = README.read_text()
    section = text[text.index("\n## CLI\n"):]
    block = re.search(r"```\n(.*?)```", section, re.S).group(1)
    commands: dict[str, str] = {}
    current = None
    for line in block.splitlines():
        match = re.match(r"kbench ([a-z][a-z-]*)", line)
        if match:
            current = match.group(1)
            commands[current] = commands.get(current, "") + line + "\n"
        elif current and line.startswith(" "):
            commands[current] += line + "\n"
    return commands


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def documented_names(action: argparse.Action) -> list[str]:
    """What the synopsis must show for one argument: each long option string, or a positional's
    metavar (else its upper-cased name)."""
    if action.option_strings:
        return [s for s in action.option_strings if s.startswith("--") and s != "--help"]
    if isinstance(action, argparse._SubParsersAction):
        return []
    return [action.metavar or action.dest.upper()]


def test_every_command_is_in_the_synopsis_and_nothing_else():
    assert set(synopsis()) == set(subcommands())


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_every_flag_of_a_command_is_in_its_synopsis(command):
    lines = synopsis().get(command, "")
    parser = subcommands()[command]
    missing = [name for action in parser._actions for name in documented_names(action)
               if not re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", lines)]
    assert not missing, f"README synopsis of 'kbench {command}' lacks {', '.join(missing)}"


def test_top_level_flags_are_documented():
    text = README.read_text()
    for action in build_parser()._actions:
        for flag in action.option_strings:
            if flag.startswith("--") and flag != "--help":
                assert f"kbench {flag}" in text


@pytest.mark.parametrize("script", ["scripts/slurm/sweep_array.sbatch", "scripts/slurm/merge.sbatch"])
def test_readme_shows_the_slurm_scripts_as_they_are(script):
    """The job array that the README shows is the file that scripts/slurm_local.sh submits."""
    text = README.read_text()
    match = re.search(rf"^`{re.escape(script)}`:\n\n```bash\n(.*?)^```$", text, re.S | re.M)
    assert match, f"README shows no ```bash block under `{script}`:"
    assert match.group(1) == (README.parent / script).read_text()
