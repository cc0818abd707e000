"""Writes docs/reference/cli.md from segmenter's argparse parsers: every command, its arguments
and options with their values, defaults and help, and the precise profile's defaults per engine.

usage: python docs/gen_cli.py          (rewrites docs/reference/cli.md)
       python docs/gen_cli.py --check  (exit 1 when the committed page differs)

The page is built from the parser objects themselves (`segmenter.cli.build_parser()`), not from
argparse's formatted help, so it reads the same on every Python and terminal width.
tests/test_docs.py fails when the committed page differs from what the parsers give.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from segmenter.cli import build_parser  # noqa: E402 - the checkout's, not an installed copy's
from segmenter.engines import ENGINES  # noqa: E402
from segmenter.profiles import PreciseOptions  # noqa: E402
from segmenter.profiles.funasr_options import VadOptions  # noqa: E402
from segmenter.profiles.precise import PRECISE  # noqa: E402

PAGE = ROOT / "docs" / "reference" / "cli.md"
REGENERATE = "python docs/gen_cli.py"


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser's commands by name, in the order they were added, with their one-line help."""
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices.items())


def command_helps(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Each command's one-line help (what `segmenter --help` lists)."""
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {choice.dest: choice.help or "" for choice in action._choices_actions}


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def shown(action: argparse.Action) -> bool:
    """Options a user may give: not --help, not the refused old spellings."""
    return action.help is not argparse.SUPPRESS and not isinstance(action, argparse._HelpAction)


def value(action: argparse.Action) -> str:
    """What an option takes: its choices, its metavar, or nothing for a flag."""
    if action.nargs == 0:
        return ""
    if action.choices is not None:
        return " \\| ".join(f"`{c}`" for c in action.choices)
    metavar = action.metavar or action.dest.upper()
    return f"`{metavar}`"


def default(action: argparse.Action) -> str:
    """The parser's own default where it has one (most are None: the help says what applies,
    as a job file's value or the engine's may)."""
    if action.default in (None, False, argparse.SUPPRESS) or action.nargs == 0:
        return ""
    return f"`{action.default}`"


def names(action: argparse.Action) -> str:
    """`-o`, `--out`; a flag that can be negated shows both forms."""
    return ", ".join(f"`{s}`" for s in action.option_strings)


def usage(prog: str, parser: argparse.ArgumentParser) -> str:
    """`segmenter run [OPTIONS] [INPUTS ...]`, from the positional arguments."""
    words = [prog, "[OPTIONS]"]
    for action in parser._actions:
        if action.option_strings or not shown(action):
            continue
        name = (action.metavar or action.dest).upper()
        if action.nargs == "?":
            words.append(f"[{name}]")
        elif action.nargs == "*":
            words.append(f"[{name} ...]")
        elif action.nargs == "+":
            words.append(f"{name} [{name} ...]")
        else:
            words.append(name)
    return " ".join(words)


def command_section(name: str, summary: str, parser: argparse.ArgumentParser) -> list[str]:
    """One command: usage, description, arguments, options."""
    lines = [f"## {name}", "", cell(summary) + ".", "", "```", usage(f"segmenter {name}", parser)]
    lines += ["```", ""]
    if parser.description:
        lines += [cell(parser.description), ""]
    positional = [a for a in parser._actions if not a.option_strings and shown(a)]
    if positional:
        lines += ["| argument | description |", "| --- | --- |"]
        lines += [f"| `{(a.metavar or a.dest).upper()}` | {cell(a.help)} |" for a in positional]
        lines.append("")
    options = [a for a in parser._actions if a.option_strings and shown(a)]
    lines += ["| option | value | default | description |", "| --- | --- | --- | --- |"]
    lines += [f"| {names(a)} | {value(a)} | {default(a)} | {cell(a.help or '')} |" for a in options]
    lines.append("")
    if parser.epilog:
        lines += [cell(parser.epilog), ""]
    return lines


def per_engine_defaults() -> list[str]:
    """The precise profile's settings per engine, and the funasr profile's, as the code has
    them (PRECISE.defaults, VadOptions())."""
    lines = ["## Defaults per engine", "", "The precise profile's settings, tuned per engine:", ""]
    lines += ["| setting | " + " | ".join(ENGINES) + " |"]
    lines += ["| --- | " + " | ".join("---:" for _ in ENGINES) + " |"]
    per_engine = {e: PRECISE.defaults({}, e) for e in ENGINES}
    for f in dataclasses.fields(PreciseOptions):
        row = " | ".join(f"{getattr(per_engine[e], f.name)}" for e in ENGINES)
        lines.append(f"| `{f.name}` | {row} |")
    lines += ["", "The funasr profile's settings (the fsmn engine only; FunASR's own):", ""]
    lines += ["| setting | default |", "| --- | ---: |"]
    funasr = VadOptions()
    for f in dataclasses.fields(VadOptions):
        lines.append(f"| `{f.name}` | {cell(repr(getattr(funasr, f.name)))} |")
    return [*lines, ""]


def page() -> str:
    """The whole reference page."""
    parser = build_parser()
    lines = [
        "# Command line",
        "",
        "<!-- Generated by `python docs/gen_cli.py` from segmenter.cli.build_parser(): do not"
        " edit; tests/test_docs.py fails when this page is stale. -->",
        "",
        cell(parser.description or ""),
        "",
        "| command | what it does |",
        "| --- | --- |",
    ]
    helps = command_helps(parser)
    lines += [f"| [`{n}`](#{n}) | {cell(h)} |" for n, h in helps.items()]
    lines += ["", cell(parser.epilog or ""), ""]
    for name, sub in subcommands(parser).items():
        lines += command_section(name, helps[name], sub)
    lines += per_engine_defaults()
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the page is stale")
    text = page()
    if ap.parse_args().check:
        if not PAGE.exists() or PAGE.read_text() != text:
            print(f"{PAGE.relative_to(ROOT)} is stale: run {REGENERATE}", file=sys.stderr)
            return 1
        return 0
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text(text)
    print(PAGE.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
