"""The command line's shared options, and the output settings assembled from them (or a job
file): the model and decision options every model command takes (each decision option derived
from its options field, rules.py; the decision itself is built by settings.decision_settings),
formats and ASR chunking, and the checks run before any file is touched (the runtime's
packages)."""

from __future__ import annotations

import argparse
import dataclasses
from importlib.util import find_spec

from .chunking import ChunkOptions
from .engines import DEFAULT_ENGINE, ENGINES
from .engines.model import DEFAULT_RUNTIME, PRECISIONS, RUNTIMES
from .errors import UsageError
from .install import extra_hint
from .profiles import PreciseOptions
from .profiles.funasr_options import FunasrOptions
from .profiles.precise import PRECISE
from .rules import field_helps, plain
from .settings import (
    FUNASR_KEYS,
    NUMBERS,
    PRECISE_KEYS,
    PROFILE_NAMES,
    parse_as,
    renamed_message,
)
from .writers import FORMATS

CHANNEL_HELP = "use channel N (0 is the first) instead of the mean of all channels"
OUT_HELP = "a batch's output folder (the one holding manifest.sqlite)"


class Renamed(argparse.Action):
    """An old option spelling: refused with a usage error that names the new option."""

    def __init__(self, option_strings, dest, new: str, **kwargs):
        super().__init__(option_strings, dest, nargs="?", help=argparse.SUPPRESS, **kwargs)
        self.new = new

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        parser.error(renamed_message(option_string, self.new))


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command that runs the model."""
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        help="fsmn (default): FunASR's FSMN-VAD; silero: silero-vad's model on onnxruntime"
        " (bundled, no extra); fusion: both, scores combined. silero and fusion"
        " imply --profile precise, with precise defaults tuned for each engine",
    )
    parser.add_argument(
        "--model", help="FSMN model folder or ModelScope id (default: bundled; not silero's)"
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="FSMN's (default int8); silero-vad's model always runs as shipped (fp32)",
    )
    parser.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default=None,
        help="FSMN's: onnx (default; no torch) or torch (the torch extra); silero-vad's always"
        " runs on onnxruntime",
    )
    parser.add_argument(
        "--max-end-silence-time",
        type=parse_as("max_end_silence_time"),
        metavar="MS",
        help=f"{_span_help('max_end_silence_time')} (turns FunASR's schedule off)",
    )
    parser.add_argument(
        "--max-single-segment-time",
        type=parse_as("max_single_segment_time"),
        metavar="MS",
        help=f"{_span_help('max_single_segment_time')} (default"
        f" {FunasrOptions().max_single_segment_time}); every profile's",
    )
    add_funasr_arguments(parser)
    for old, new in (
        ("--max-end-silence", "--max-end-silence-time"),
        ("--max-segment", "--max-single-segment-time"),
    ):
        parser.add_argument(old, action=Renamed, new=new, default=argparse.SUPPRESS)
    add_profile_arguments(parser)


def _span_help(key: str) -> str:
    """A FunASR time's help and range from its field: 'fixed end silence in ms, 100-60000'."""
    rule = NUMBERS[key]
    return f"{field_helps(FunasrOptions)[key]}, {plain(rule.low)}-{plain(rule.high)}"


def add_funasr_arguments(parser: argparse.ArgumentParser) -> None:
    """An option under FunASR's own name for each other setting of the funasr profile."""
    helps = field_helps(FunasrOptions)
    defaults = FunasrOptions()
    for key in FUNASR_KEYS:
        if key == "max_end_silence_time":  # defined above, with its own help
            continue
        option, default = "--" + key.replace("_", "-"), getattr(defaults, key)
        if key == "dynamic_silence":
            parser.add_argument(
                option, action=argparse.BooleanOptionalAction, help=f"{helps[key]} (default on)"
            )
            continue
        rule = NUMBERS[key]
        parser.add_argument(
            option,
            type=parse_as(key),
            metavar="MS" if rule.unit == "ms" else "VALUE",
            help=f"{helps[key]}; {rule.describe()} (funasr profile; default {default})",
        )


def add_profile_arguments(parser: argparse.ArgumentParser) -> None:
    """`--profile`, and a `--precise-*` option for each setting of the precise profile."""
    parser.add_argument(
        "--profile",
        choices=PROFILE_NAMES,
        help="decision: funasr (FunASR's exact segments; the default on the fsmn engine, which"
        " alone it can read) or precise (tight, separate; the default on silero and fusion)",
    )
    for f in dataclasses.fields(PreciseOptions):
        key = f"precise_{f.name}"
        if key in PRECISE_KEYS:  # the longest segment is --max-single-segment-time
            parser.add_argument(
                "--" + key.replace("_", "-"),
                dest=key,
                type=parse_as(key),
                metavar="MS" if f.name.endswith("_ms") else "VALUE",
                help=f"{f.metadata['help']} (precise profile; default {precise_default(f.name)})",
            )


def precise_default(name: str) -> str:
    """A precise setting's default per engine, for help: '0.4' or 'fsmn 0.4, silero 0.5, ...'."""
    values = {e: getattr(PRECISE.defaults({}, e), name) for e in ENGINES}
    if len(set(values.values())) == 1:
        return str(values[DEFAULT_ENGINE])
    return ", ".join(f"{engine} {value}" for engine, value in values.items())


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """Formats and ASR chunking, shared by `segment` and `run`."""
    parser.add_argument(
        "--formats", help=f"comma-separated, of {','.join(FORMATS)} (default: json,rttm)"
    )
    parser.add_argument(
        "--max-segment-s",
        type=parse_as("max_segment_s"),
        metavar="SECONDS",
        help="split longer segments: chunks of at most SECONDS (>= 1), padding included",
    )
    parser.add_argument(
        "--merge-for-asr-s",
        type=parse_as("merge_for_asr_s"),
        metavar="SECONDS",
        help="merge neighbours into chunks of at most SECONDS (>= 1), padding included;"
        " longer segments are split",
    )
    parser.add_argument(  # the old spelling, still taken (scripts and cron lines use it)
        "--merge-for-asr",
        dest="merge_for_asr_s",
        type=parse_as("merge_for_asr_s"),
        help=argparse.SUPPRESS,
    )
    parser.add_argument(
        "--max-merge-gap-s",
        type=parse_as("max_merge_gap_s"),
        metavar="SECONDS",
        help="largest gap merged (default 1)",
    )
    parser.add_argument(
        "--pad-ms",
        type=parse_as("pad_ms"),
        metavar="MS",
        help="pad chunks without overlapping neighbours (within the chunk limit)",
    )


def require_runtime(runtime: str | None) -> None:
    """A runtime whose package is missing is a usage error before any file is touched."""
    if (runtime or DEFAULT_RUNTIME) == "torch":
        require_torch("--runtime torch")
        return
    from .engines.fsmn_onnx import import_onnxruntime, onnx_hint

    try:
        import_onnxruntime()
    except ImportError:
        raise UsageError(onnx_hint()) from None


def require_torch(what: str) -> None:
    """A command or setting that runs torch, refused with the install line where it is missing."""
    if find_spec("torch") is None:
        raise UsageError(extra_hint("torch", what))


def output_settings(values: dict) -> tuple[tuple[str, ...], ChunkOptions]:
    """Formats and chunking from command-line or job values (popped from `values`)."""
    formats = values.pop("formats", None) or "json,rttm"
    names = tuple(f.strip() for f in (formats.split(",") if isinstance(formats, str) else formats))
    unknown = sorted(set(names) - set(FORMATS))
    if unknown:
        raise UsageError(
            f"unknown format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)}"
        )
    chunking = ChunkOptions(
        max_segment_s=values.pop("max_segment_s", None),
        merge_for_asr_s=values.pop("merge_for_asr_s", None),
        max_merge_gap_s=values.pop("max_merge_gap_s", None) or 1.0,
        pad_ms=values.pop("pad_ms", None) or 0,
    )
    return names, chunking
