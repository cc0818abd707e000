"""Command line: `segment` one file, `run` a batch, `status` and `report` of a batch, `serve` the
web page; model tools (`bench`, `quantize`, `export-onnx`) and `eval` of outputs against
reference RTTMs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from . import __version__
from .cli_commands import (
    run_batch,
    run_bench,
    run_eval,
    run_export,
    run_quantize,
    run_report,
    run_segment,
    run_serve,
    run_status,
)
from .cli_options import (
    CHANNEL_HELP,
    OUT_HELP,
    add_model_arguments,
    add_output_arguments,
)
from .errors import (
    EXIT_DAMAGED,
    EXIT_DISK_FULL,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_RUN_FAILED,
    EXIT_SETTINGS_CHANGED,
    EXIT_USAGE,
    SegmenterError,
)
from .names import shown
from .settings import parse_as


class Parser(argparse.ArgumentParser):
    """argparse taking whole option names only (no silent prefixes), with one-line errors."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """A usage error: one line naming the problem, exit 2."""
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Every command and its options."""
    parser = Parser(prog="segmenter", description=__doc__, epilog=EXIT_CODES)
    parser.add_argument("--version", action="version", version=f"segmenter {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    segment = commands.add_parser("segment", help="segment one file, JSON to stdout")
    segment.add_argument("file", help="recording to segment (any format ffmpeg reads)")
    segment.add_argument("--channel", type=parse_as("channel"), metavar="N", help=CHANNEL_HELP)
    segment.add_argument("-o", "--out", type=Path, help="folder for --formats files (default: .)")
    add_model_arguments(segment)
    add_output_arguments(segment)
    segment.set_defaults(func=run_segment)
    add_run_parser(commands)
    status = commands.add_parser("status", help="what a batch's manifest says")
    status.add_argument("out", type=Path, help=OUT_HELP)
    status.add_argument("--json", action="store_true", help="machine-readable")
    status.set_defaults(func=run_status)
    report = commands.add_parser("report", help="write a batch's self-contained report.html")
    report.add_argument("out", type=Path, help=OUT_HELP)
    report.add_argument("-o", "--output", type=Path, help="HTML file (default: OUT/report.html)")
    report.set_defaults(func=run_report)
    add_serve_parser(commands)
    add_tool_parsers(commands)
    return parser


def add_tool_parsers(commands) -> None:
    """The toolkit: measure, shrink and export the model, score outputs."""
    bench = commands.add_parser("bench", help="size, load time, memory and speed on this box")
    bench.add_argument("file", nargs="?", type=Path, help="recording (default: a bundled clip)")
    bench.add_argument("--model", help="model folder or ModelScope id (default: bundled)")
    bench.add_argument(
        "--seconds",
        type=parse_as("seconds"),
        default=600,
        help="length of the default recording in seconds (600)",
    )
    bench.add_argument("--json", action="store_true", help="machine-readable")
    bench.set_defaults(func=run_bench)
    quantize = commands.add_parser("quantize", help="write an INT8 model folder")
    quantize.add_argument("-o", "--out", type=Path, required=True, help="new model folder")
    quantize.add_argument("--model", help="model folder or ModelScope id (default: bundled)")
    quantize.add_argument(
        "--prune",
        type=parse_as("prune_amount"),
        default=0.0,
        metavar="AMOUNT",
        help="L1-prune this share (0 to 0.99) first",
    )
    quantize.add_argument(
        "--eval", type=Path, metavar="DIR", help="recordings + RTTMs: print F1 before/after"
    )
    quantize.set_defaults(func=run_quantize)
    export = commands.add_parser("export-onnx", help="export the FSMN network to ONNX")
    export.add_argument("-o", "--out", type=Path, required=True, help="ONNX file to write")
    export.add_argument("--model", help="model folder or ModelScope id (default: bundled)")
    export.add_argument("--int8", action="store_true", help="dynamic INT8 MatMuls")
    export.set_defaults(func=run_export)
    evaluate = commands.add_parser("eval", help="frame-level P/R/F1 of outputs vs RTTMs")
    evaluate.add_argument("ref_dir", type=Path, help="folder of reference .rttm files")
    evaluate.add_argument("out", type=Path, help="output folder of `run` or `segment`")
    evaluate.add_argument(
        "--collar",
        type=parse_as("collar"),
        default=0.0,
        metavar="SECONDS",
        help="unscored seconds around each reference boundary (default 0)",
    )
    evaluate.add_argument("--json", action="store_true", help="machine-readable")
    evaluate.set_defaults(func=run_eval)


def add_serve_parser(commands) -> None:
    """`serve`: the web page (needs the web extra)."""
    serve = commands.add_parser("serve", help="web page: segment a file, look at a batch")
    serve.add_argument("out", nargs="?", type=Path, help="a batch's output folder (Batch tab)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    serve.add_argument("--port", type=parse_as("port"), default=6006, help="default 6006")
    serve.add_argument(
        "--max-upload-mb",
        type=parse_as("max_upload_mb"),
        default=200.0,
        metavar="MB",
        help="largest upload in MB (default 200)",
    )
    serve.add_argument(
        "--auth",
        metavar="USER:PASSWORD",
        help="ask for this login (visible to other users of this machine in its process list:"
        " --auth-file keeps it out)",
    )
    serve.add_argument(
        "--auth-file",
        type=Path,
        metavar="FILE",
        help="ask for a login: FILE holds USER:PASSWORD lines (blank and # lines skipped)",
    )
    add_model_arguments(serve)
    serve.set_defaults(func=run_serve)


EXIT_CODES = (
    f"exit codes: {EXIT_OK} ok; {EXIT_FAILED} some files failed; {EXIT_USAGE} usage error;"
    f" {EXIT_LOCKED} OUT in use by another run;"
    f" {EXIT_DISK_FULL} OUT's disk is full (free space, run again);"
    f" {EXIT_DAMAGED} OUT's manifest is damaged (run again with --rebuild-manifest);"
    f" {EXIT_RUN_FAILED} the run stopped on an error that is no one file's (OUT or its manifest"
    " cannot be written, ...; what was done is kept);"
    f" {EXIT_SETTINGS_CHANGED} the settings differ from the batch's and nobody said to redo"
    " its files (nothing done: --redo-changed);"
    f" {EXIT_INTERRUPTED} stopped by SIGINT (Ctrl-C), 143 by SIGTERM (a rerun goes on)"
)


def add_run_parser(commands) -> None:
    run = commands.add_parser(
        "run",
        help="segment every recording under the inputs into OUT, resumably",
        description="Settings come from --job FILE (TOML, same names with underscores) and the "
        "command line, which wins.",
        epilog=EXIT_CODES,
    )
    run.add_argument("inputs", nargs="*", help="files or folders (recursive)")
    run.add_argument("-o", "--out", type=Path, help="output folder (manifest, JSON, RTTM, clips)")
    run.add_argument("--job", type=Path, help="TOML job file with the same settings")
    run.add_argument(
        "-j",
        "--jobs",
        type=parse_as("jobs"),
        metavar="N",
        help="worker processes (default: the usable cores, as many as the available memory holds)",
    )
    run.add_argument(
        "--backend", choices=("loky", "dask"), help="loky (this machine, default) or dask"
    )
    run.add_argument(
        "--scheduler",
        help="dask scheduler address, e.g. tcp://host:8786 (default: a local cluster)",
    )
    add_model_arguments(run)
    run.add_argument("--channel", type=parse_as("channel"), metavar="N", help=CHANNEL_HELP)
    add_output_arguments(run)
    run.add_argument("--clips", action="store_true", default=None, help="cut a WAV per segment")
    run.add_argument(
        "--clip-pad-ms",
        type=parse_as("clip_pad_ms"),
        metavar="MS",
        help="padding around each clip in ms (default 0)",
    )
    run.add_argument(
        "--clip-rate",
        type=parse_as("clip_rate"),
        metavar="HZ",
        help="mono clips at this rate (default: the source's rate and channels where"
        " libsndfile reads the source, else 16000 mono)",
    )
    run.add_argument("--include", action="append", help="glob of files to take (repeatable)")
    run.add_argument("--exclude", action="append", help="glob of files to skip (repeatable)")
    run.add_argument(
        "--retry-failed",
        action="store_true",
        default=None,
        help="segment files that failed before again (a rerun skips them otherwise)",
    )
    run.add_argument("--force", action="store_true", default=None, help="redo every file")
    run.add_argument(
        "--redo-changed",
        action="store_true",
        default=None,
        help="redo the files done with other result-changing settings (without it a run whose"
        f" settings differ asks at a terminal, and elsewhere stops with exit code"
        f" {EXIT_SETTINGS_CHANGED} before writing anything)",
    )
    run.add_argument(
        "--prune",
        action="store_true",
        default=None,
        help="remove the outputs and manifest rows of recordings under the inputs whose input"
        " is gone (moved or deleted); without it they are only reported",
    )
    run.add_argument("--quiet", action="store_true", default=None, help="no progress bar")
    run.add_argument("--report", action="store_true", default=None, help="write OUT/report.html")
    run.add_argument(
        "--settle-seconds",
        type=parse_as("settle_seconds"),
        metavar="SECONDS",
        help="skip files changed this recently (default 5)",
    )
    run.add_argument(
        "--stop-grace",
        type=parse_as("stop_grace"),
        metavar="SECONDS",
        help="on SIGTERM/SIGINT the files in flight get this long to finish, the rest stay to"
        " do (default 30; a second signal stops at once)",
    )
    run.add_argument(
        "--rebuild-manifest",
        action="store_true",
        help="set a damaged OUT/manifest.sqlite aside and rebuild it from the JSON outputs on"
        " disk (finished files are kept; failed ones are tried again)",
    )
    run.set_defaults(func=run_batch)


def main(argv: list[str] | None = None) -> int:
    """Run a command; a user's error is one line on stderr and its exit code (SegmenterError);
    anything else is a bug, and shows its traceback (exit 1)."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:  # Ctrl-C: a batch's files and manifest stay consistent
        print("segmenter: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SegmenterError as exc:
        print(f"segmenter: {shown(str(exc))}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
