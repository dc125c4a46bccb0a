"""Every `stackwatch ...` command line in README.md and docs/*.md parses with the real CLI.

Each documented synopsis is expanded into the argument lists it stands for (cliparse.expand) and run
through click's parser for the resolved command path, without running the command: a doc line naming a
command, option or choice that no longer exists, or leaving out a required argument, fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stackwatch.cli.main import app
from tests.docs.cliparse import UsageError, expand, extract, parse

ROOT = Path(__file__).parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CASES = [
    pytest.param(argv, prose, id=f"{path.relative_to(ROOT)}:{line}:{' '.join(argv)}")
    for path in DOCS
    for line, command, prose in extract(path)
    for argv in expand(command)
]


@pytest.mark.parametrize(("argv", "prose"), CASES)
def test_documented_command_parses(argv, prose):
    path = parse(app, argv, naming=prose)
    assert path[0] == "stackwatch" and len(path) >= 2, path


def test_the_readme_documents_the_main_commands():
    readme = [argv for _line, command, _prose in extract(ROOT / "README.md") for argv in expand(command)]
    documented = {parse(app, argv)[1] for argv in readme}
    assert {"serve", "events", "provider", "inventory", "fleece", "worker", "db", "refresh"} <= documented


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["inventory", "vmz"], "No such command 'vmz'"),
        (["serve", "--no-such-option"], "No such option: --no-such-option"),
        (["events", "list", "--format", "yaml"], "'yaml' is not one of"),
        (["provider", "check"], "Missing argument"),
        (["events", "list", "--limit", "N"], "Invalid value for '--limit'"),
    ],
)
def test_a_line_that_does_not_parse_fails(argv, message):
    with pytest.raises(UsageError) as refused:
        parse(app, argv)
    assert message in refused.value.format_message()


def test_prose_may_name_a_command_without_its_arguments():
    assert parse(app, ["fleece"], naming=True) == ["stackwatch", "fleece"]
    with pytest.raises(UsageError):
        parse(app, ["fleece"])  # a command line in a code block must be complete


def test_synopsis_notation_expands_to_concrete_lines(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text(
        "Run `stackwatch serve --config F` or:\n\n```\n"
        "$ stackwatch events count | show ID   # comment\n"
        "python3 -m venv .venv && .venv/bin/stackwatch demo\n"
        "stackwatch events list [--provider P]\n"
        "                       [--format table|json]\n"
        "# stackwatch not-a-command\n```\n"
    )
    commands = [(line, text) for line, text, _prose in extract(doc)]
    assert commands == [
        (1, "stackwatch serve --config F"),
        (4, "stackwatch events count | show ID"),
        (5, ".venv/bin/stackwatch demo"),
        (6, "stackwatch events list [--provider P] [--format table|json]"),
    ]
    assert [prose for _line, _text, prose in extract(doc)] == [True, False, False, False]
    assert expand(commands[1][1]) == [["events", "count"], ["events", "show", "ID"]]
    assert expand(commands[3][1]) == [
        ["events", "list"],
        ["events", "list", "--provider", "P", "--format", "table"],
        ["events", "list", "--provider", "P", "--format", "json"],
    ]
