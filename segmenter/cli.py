"""Command line: `segmenter segment FILE` prints one recording's segments as JSON."""

from __future__ import annotations

import argparse
import json
import sys

from . import __version__
from .audio import AudioError
from .model import ModelError
from .vad import PRECISIONS, Vad, segments_document


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command that runs the model."""
    parser.add_argument("--model", help="model folder or ModelScope id (default: bundled)")
    parser.add_argument("--precision", choices=PRECISIONS, default="int8")
    parser.add_argument(
        "--max-end-silence", type=int, metavar="MS", help="fixed end silence (turns schedule off)"
    )
    parser.add_argument("--max-segment", type=int, metavar="MS", help="maximum segment length")


def decision_overrides(args: argparse.Namespace) -> dict[str, int]:
    """The decision settings given on the command line, by their option names."""
    given = {
        "max_end_silence_time": args.max_end_silence,
        "max_single_segment_time": args.max_segment,
    }
    return {k: v for k, v in given.items() if v is not None}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segmenter", description=__doc__)
    parser.add_argument("--version", action="version", version=f"segmenter {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    segment = commands.add_parser("segment", help="segment one file, JSON to stdout")
    segment.add_argument("file")
    segment.add_argument("--channel", type=int, help="use this channel instead of the mean")
    add_model_arguments(segment)
    segment.set_defaults(func=run_segment)
    return parser


def run_segment(args: argparse.Namespace) -> int:
    vad = Vad.load(args.model, precision=args.precision)
    options = vad.options.with_overrides(**decision_overrides(args))
    result = vad.process_file(args.file, channel=args.channel, **decision_overrides(args))
    json.dump(segments_document(result, vad, options), sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (AudioError, ModelError) as exc:
        print(f"segmenter: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
