"""Command lines as the docs write them, and click's parser run on them without running any command.

The docs use a small synopsis notation: `a|b|c` (one of), `[--opt X]` (optional), `X...` (one or more),
`# comment`, `cmd1 | cmd2 ARG` (alternative sub-commands after a common prefix), and a synopsis wrapped onto
an indented `[...]` line. `expand` turns one synopsis into the concrete argument lists it stands for, and
`parse` resolves each through the real `stackwatch` app (loading the sub-command as the CLI does) and lets
every level's parser take its arguments and run its option callbacks, but never invokes a command.
"""

from __future__ import annotations

import itertools
import re
import shlex
from contextlib import ExitStack
from pathlib import Path

import typer

try:  # typer >= 0.16 carries its own copy of click
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover
    from click.exceptions import UsageError

__all__ = ["UsageError", "expand", "extract", "parse"]

#: example values for placeholders whose option takes a number (any other placeholder is a fine string)
NUMERIC_PLACEHOLDERS = {"N": "2"}
_FENCE = re.compile(r"^\s*```")
_INLINE = re.compile(r"`((?:\S*/)?stackwatch [^`]*)`")
_COMMAND = re.compile(r"^(?:\$\s+)?(?:\S*/)?stackwatch(?:\s|$)")
_COMMENT = re.compile(r"\s+#(?:\s.*)?$")
MAX_VARIANTS = 64


def extract(path: Path) -> list[tuple[int, str, bool]]:
    """(line number, command text, in prose) for every `stackwatch ...` command in a Markdown file: lines of
    fenced code blocks (a `cmd && .venv/bin/stackwatch demo` chain counts too, commented-out lines do not; an
    indented `[...]` line continues the synopsis above it), and inline code spans in prose (where a bare
    command path only names the command: "no process outlives a `stackwatch fleece`")."""
    found: list[tuple[int, str, bool]] = []
    in_code = False
    last = -1  # the line number that the last command found in a code block ends on
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if _FENCE.match(line):
            in_code = not in_code
            continue
        if not in_code:
            found.extend((number, m.group(1).strip(), True) for m in _INLINE.finditer(line))
            continue
        if line[:1].isspace() and line.lstrip().startswith("[") and last == number - 1:
            found[-1] = (found[-1][0], f"{found[-1][1]} {_COMMENT.sub('', line).strip()}", False)
            last = number
            continue
        for piece in line.split("&&"):
            piece = _COMMENT.sub("", piece).strip()
            if _COMMAND.match(piece):
                found.append((number, piece.removeprefix("$").strip(), False))
                last = number
    return found


def _alternatives(text: str) -> list[str]:
    """`stackwatch events count | show ID | purge --older-than 90d` -> one line per sub-command: the words
    before the first alternative's last word are the common prefix."""
    parts = [p.strip() for p in re.split(r"\s\|\s(?![^\[]*\])", text)]
    if len(parts) == 1:
        return parts
    head = parts[0].split()
    prefix = " ".join(head[:-1])
    return [parts[0]] + [f"{prefix} {p}" for p in parts[1:]]


def _tokens(text: str) -> list[list[str] | tuple[list[list[str]], ...]]:
    """Words, with each `[ ... ]` group kept as a tuple of its alternatives (each a word list)."""
    out: list = []
    for match in re.finditer(r"\[([^\]]*)\]|(\S+)", text):
        if match.group(1) is not None:
            out.append(tuple(shlex.split(alt) for alt in re.split(r"\s\|\s", match.group(1))))
        else:
            out.extend(shlex.split(match.group(2)))
    return out


def _word_choices(word: str) -> list[str]:
    word = NUMERIC_PLACEHOLDERS.get(word, word)
    if "|" in word and not word.startswith(("http", "amqp")):
        return [w.removesuffix("...") for w in word.split("|") if w not in ("...", "")]
    return [word.removesuffix("...") if word.endswith("...") and len(word) > 3 else word]


def expand(command: str) -> list[list[str]]:
    """The argument lists (after `stackwatch`) one documented command stands for: without its optional
    groups, and with each alternative of every optional group; every `a|b` word takes each of its values."""
    variants: list[list[str]] = []
    for line in _alternatives(command):
        words = _tokens(_COMMAND.sub("", line, count=1))
        groups = [w for w in words if isinstance(w, tuple)]
        choices = [()] + [(i, alt) for i, group in enumerate(groups) for alt in range(len(group))]
        for choice in choices:
            argv: list[list[str]] = []
            index = 0
            for word in words:
                if isinstance(word, tuple):
                    if choice and choice[0] == index:
                        argv.extend([_word_choices(w) for w in word[choice[1]]])
                    elif choice:  # the other groups: their first alternative, so options combine
                        argv.extend([_word_choices(w) for w in word[0]])
                    index += 1
                else:
                    argv.append(_word_choices(word))
            for product in itertools.islice(itertools.product(*argv), MAX_VARIANTS):
                if list(product) not in variants:
                    variants.append(list(product))
    return variants


def parse(app: typer.Typer, argv: list[str], naming: bool = False) -> list[str]:
    """Resolve `argv` through `app` and parse every level as click would before invoking; the command path.

    A path that ends on a group with nothing after it (`stackwatch devcloud`) names the group and is
    accepted; with `naming`, so is a command with nothing after it (its required arguments left out).
    Raises click's UsageError (no such command or option, bad value, missing argument)."""
    root = typer.main.get_command(app)
    with ExitStack() as stack:
        ctx = stack.enter_context(root.make_context("stackwatch", list(argv), resilient_parsing=False))
        command, path = root, ["stackwatch"]
        while hasattr(command, "resolve_command"):
            protected = ctx._protected_args if hasattr(ctx, "_protected_args") else ctx.protected_args
            rest = [*protected, *ctx.args]
            if not rest:
                break
            name, command, args = command.resolve_command(ctx, rest)
            path.append(name)
            if not args and (naming or hasattr(command, "resolve_command")):
                break  # the group (or, in prose, the command) itself is named
            ctx = stack.enter_context(command.make_context(name, args, parent=ctx))
        return path
