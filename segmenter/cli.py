"""Command line: `segment` one file, `run` a batch, `status` and `report` of a batch, `serve` the
web page; model tools (`bench`, `quantize`, `export-onnx`) and `eval` of outputs against
reference RTTMs."""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import sqlite3
import sys
import zlib
from importlib.util import find_spec
from pathlib import Path
from typing import Any, NoReturn

from . import __version__
from .audio import AudioError
from .batch import notes
from .batch.changed import SettingsChanged
from .batch.discovery import check_out
from .batch.diskfull import EXIT_DISK_FULL, DiskFull
from .batch.manifest import (
    LockedError,
    Manifest,
    ManifestDamaged,
    ManifestNewer,
    ManifestUnwritable,
)
from .chunking import ChunkOptions
from .engines import DEFAULT_ENGINE, ENGINES, check_available
from .engines.model import DEFAULT_RUNTIME, PRECISIONS, RUNTIMES, ModelError, resolve_model
from .install import extra_hint
from .names import shown
from .profiles import PreciseOptions, default_profile, get_profile
from .profiles.base import ProfileError
from .profiles.funasr_options import VadOptions
from .profiles.precise import PRECISE
from .settings import (
    DECISION_KEYS,
    FUNASR_KEYS,
    JOB_RULES,
    NUMBERS,
    PRECISE_KEYS,
    PROFILE_NAMES,
    SettingError,
    parse_as,
    read_job,
    renamed_message,
)
from .writers import FORMATS, write_formats

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_DAMAGED = 5  # the manifest is damaged: --rebuild-manifest
EXIT_RUN_FAILED = 6  # a run stopped by an error that is no one file's (OUT unwritable, ...)
EXIT_SETTINGS_CHANGED = 7  # settings differ from the batch's, nobody said redo: nothing done


class Parser(argparse.ArgumentParser):
    """argparse taking whole option names only (no silent prefixes), with one-line errors."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """A usage error: one line naming the problem, exit 2."""
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


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
        help="fixed end silence in ms, 100-60000 (turns FunASR's schedule off)",
    )
    parser.add_argument(
        "--max-single-segment-time",
        type=parse_as("max_single_segment_time"),
        metavar="MS",
        help="FunASR's longest segment in ms, 1000-3600000 (default 60000); every profile's",
    )
    add_funasr_arguments(parser)
    for old, new in (
        ("--max-end-silence", "--max-end-silence-time"),
        ("--max-segment", "--max-single-segment-time"),
    ):
        parser.add_argument(old, action=Renamed, new=new, default=argparse.SUPPRESS)
    add_profile_arguments(parser)


def add_funasr_arguments(parser: argparse.ArgumentParser) -> None:
    """An option under FunASR's own name for each other setting of the funasr profile."""
    helps = {f.name: f.metadata.get("help", "") for f in dataclasses.fields(VadOptions)}
    defaults = VadOptions()
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


def engine_settings(values: dict) -> tuple[str, str, dict[str, Any]]:
    """The engine, the profile and its `--precise-*` settings from command-line or job values
    (popped), checked before any file is touched: the engine's packages, the pair's fit."""
    engine = values.pop("engine", None) or DEFAULT_ENGINE
    try:
        check_available(engine)
    except ModelError as exc:
        raise UsageError(f"--engine {engine}: {exc}") from None
    profile = get_profile(values.pop("profile", None) or default_profile(engine))
    try:
        profile.check_engine(engine)
    except ProfileError as exc:
        raise UsageError(f"--profile {profile.name} --engine {engine}: {exc}") from None
    given = {k: values.pop(k, None) for k in PRECISE_KEYS}
    precise = {k.removeprefix("precise_"): v for k, v in given.items() if v is not None}
    if precise and profile.name != "precise":
        names = ", ".join("--" + k.replace("_", "-") for k in given if given[k] is not None)
        raise UsageError(f"{names}: settings of the precise profile; add --profile precise")
    return engine, profile.name, precise


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
        "--merge-for-asr",
        type=parse_as("merge_for_asr"),
        metavar="SECONDS",
        help="merge neighbours into chunks of at most SECONDS (>= 1), padding included;"
        " longer segments are split",
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
        merge_for_asr_s=values.pop("merge_for_asr", None),
        max_merge_gap_s=values.pop("max_merge_gap_s", None) or 1.0,
        pad_ms=values.pop("pad_ms", None) or 0,
    )
    return names, chunking


def decision_overrides(values: dict, profile: str) -> dict[str, Any]:
    """FunASR's decision settings given (popped from values); only funasr reads all of them."""
    given = {k: values.pop(k, None) for k in DECISION_KEYS}
    given = {k: v for k, v in given.items() if v is not None}
    foreign = [k for k in given if k in FUNASR_KEYS]
    if foreign and profile != "funasr":
        names = ", ".join("--" + k.replace("_", "-") for k in foreign)
        raise UsageError(f"{names}: settings of the funasr profile, not of --profile {profile}")
    return given


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


CHANNEL_HELP = "use channel N (0 is the first) instead of the mean of all channels"
OUT_HELP = "a batch's output folder (the one holding manifest.sqlite)"


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
    "exit codes: 0 ok; 1 some files failed; 2 usage error; 3 OUT in use by another run;"
    f" {EXIT_DISK_FULL} OUT's disk is full (free space, run again);"
    f" {EXIT_DAMAGED} OUT's manifest is damaged (run again with --rebuild-manifest);"
    f" {EXIT_RUN_FAILED} the run stopped on an error that is no one file's (OUT or its manifest"
    " cannot be written, ...; what was done is kept);"
    f" {EXIT_SETTINGS_CHANGED} the settings differ from the batch's and nobody said to redo"
    " its files (nothing done: --redo-changed);"
    " 130 stopped by SIGINT (Ctrl-C), 143 by SIGTERM (a rerun goes on)"
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


def run_segment(args: argparse.Namespace) -> int:
    from .vad import Vad, one_core_process  # the engine is imported only where the model runs

    one_core_process()
    values = vars(args).copy()
    formats, chunking = output_settings(values)
    engine, profile, precise = engine_settings(values)
    overrides = decision_overrides(values, profile) | precise
    if not Path(args.file).exists():
        raise UsageError(f"input not found: {args.file}")
    require_runtime(args.runtime)
    if args.formats:
        check_out(args.out or Path("."))
    vad = Vad.load(
        args.model,
        precision=args.precision or "int8",
        runtime=args.runtime or DEFAULT_RUNTIME,
        engine=engine,
    )
    document = vad.document(
        args.file, channel=args.channel, chunking=chunking, profile=profile, **overrides
    )
    if args.formats:
        write_formats((args.out or Path(".")) / Path(args.file).name, document, formats)
    json.dump(document, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


def batch_settings(args: argparse.Namespace):
    """Job file values, then command-line values on top."""
    from .batch.runner import BatchSettings

    values = {}
    if args.job:
        values = read_job(args.job)
        base = args.job.parent
        values["inputs"] = [str(base / p) for p in values.get("inputs", [])]
        if "out" in values:
            values["out"] = base / values["out"]
    given = {k: getattr(args, k) for k in JOB_RULES if getattr(args, k, None) not in (None, [])}
    values.update(given)
    if not values.get("inputs") or not values.get("out"):
        raise UsageError("run needs INPUT... and -o OUT (or a job file that has them)")
    engine, profile, precise = engine_settings(values)
    overrides = decision_overrides(values, profile)
    values["out"] = Path(values["out"])
    values["rebuild_manifest"] = bool(getattr(args, "rebuild_manifest", False))  # not a job key
    formats, chunking = output_settings(values)
    return BatchSettings(
        engine=engine,
        profile=profile,
        overrides=overrides | precise,
        formats=formats,
        chunking=chunking,
        **values,
    )


class UsageError(Exception):
    """Bad settings: exit code 2."""


def run_batch(args: argparse.Namespace) -> int:
    from .batch.discovery import InputError
    from .batch.runner import run

    settings = batch_settings(args)
    require_runtime(settings.runtime)
    try:
        summary, code = run(settings, ask_to_redo if sys.stdin.isatty() else None)
    except SettingsChanged as exc:  # nothing done: said with the date in a cron log
        notes.note(str(exc))
        return EXIT_SETTINGS_CHANGED
    except (InputError, SettingError, UsageError, ManifestUnwritable):
        raise  # refused before anything was touched, or named as it is
    except (OSError, sqlite3.Error, ValueError, TypeError, RuntimeError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        log = settings.out / "segmenter.log"
        where = f" (the traceback is in {log})" if log.is_file() else ""
        raise RunFailed(
            f"the run stopped: {reason}{where}; what was done is kept, and the next run goes"
            " on from there"
        ) from exc
    if summary.disk_full:
        print(f"segmenter: {summary.disk_full}", file=sys.stderr)
    notes.summary(summary.lines())  # --quiet hides the progress bar, never the summary
    return code


def ask_to_redo(line: str) -> bool:
    """At a terminal: the line saying the settings changed, and whether to redo those files."""
    print(f"segmenter: {shown(line)}", file=sys.stderr)
    print("Redo them with these settings? [y/N] ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def require_manifest(out: Path) -> None:
    """Refuse a folder that is not a batch's output."""
    if not (out / "manifest.sqlite").exists():
        raise UsageError(f"{out}: no manifest.sqlite (not a segmenter output folder)")


def run_status(args: argparse.Namespace) -> int:
    require_manifest(args.out)
    manifest = Manifest.open_readonly(args.out)  # also on a full disk or a read-only share
    try:
        state = manifest.status()
    finally:
        manifest.close()
    if args.json:
        print(json.dumps(state, indent=1))
        return EXIT_OK
    c = state["counts"]
    counts = f"{c['done']} done, {c['failed']} failed, {c['pending'] + c['running']} to do"
    print(counts + (f"; {c['gone']} gone (not in the totals)" if c["gone"] else ""))
    print(f"{state['audio_hours']:.3f} h of audio done, {state['speech_hours']:.3f} h of speech")
    for failure in state["failures"]:
        print(f"failed: {shown(failure['file'])}: {shown(failure['error'] or '')}")
    for gone in state["gone"]:
        where = f"{shown(gone['file'])}: {shown(gone['path'])}"
        print(f"gone: {where} is no longer there (moved or deleted)")
    if state["gone"]:
        print("  (their outputs stay until a run of their input with --prune removes them)")
    return EXIT_OK


def run_report(args: argparse.Namespace) -> int:
    from .views.report import write_report

    require_manifest(args.out)
    try:
        print(write_report(args.out, args.output))
    except OSError as exc:  # a WriteError naming the report's path
        if args.output or exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        raise UsageError(
            f"{args.out}: cannot write there ({exc.strerror}); use -o FILE to write the"
            " report elsewhere"
        ) from None
    return EXIT_OK


def serve_logins(auth: str | None, auth_file: Path | None) -> tuple[tuple[str, str], ...]:
    """The (user, password) pairs of --auth and --auth-file; a malformed one is a usage error."""
    given = [("--auth", auth)] if auth is not None else []
    if auth_file is not None:
        try:
            text = auth_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--auth-file {auth_file}: cannot read it ({exc})") from None
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip() and not line.lstrip().startswith("#"):
                given.append((f"--auth-file {auth_file}, line {number}", line.strip()))
        if len(given) == (auth is not None):
            raise UsageError(f"--auth-file {auth_file}: no USER:PASSWORD line in it")
    logins = []
    for where, value in given:
        user, colon, password = value.partition(":")
        if not (user and colon and password):
            raise UsageError(f"{where}: expected USER:PASSWORD, both not empty")
        logins.append((user, password))
    return tuple(logins)


def run_serve(args: argparse.Namespace) -> int:
    logins = serve_logins(args.auth, args.auth_file)
    try:
        from .views.web import ServeSettings, serve
    except ModuleNotFoundError as exc:
        if exc.name not in ("gradio", "uvicorn", "fastapi"):
            raise
        raise UsageError(extra_hint("web", "serve")) from None
    if args.out is not None:
        require_manifest(args.out)
    engine, profile, precise = engine_settings(vars(args).copy())
    page = ("max_end_silence_time", "max_single_segment_time")  # the page's own controls
    funasr = {k: v for k in FUNASR_KEYS if k not in page and (v := getattr(args, k)) is not None}
    settings = ServeSettings(
        engine=engine,
        out=args.out,
        host=args.host,
        port=args.port,
        model=args.model,
        precision=args.precision or "int8",
        runtime=args.runtime or DEFAULT_RUNTIME,
        max_upload_mb=args.max_upload_mb,
        max_end_silence_time=args.max_end_silence_time,
        max_single_segment_time=args.max_single_segment_time,
        profile=profile,
        precise=precise,
        funasr=funasr,
        logins=logins,
    )
    serve(settings)
    return EXIT_OK


def run_bench(args: argparse.Namespace) -> int:
    from .toolkit import benchmark

    rows = benchmark.run(args.file, args.model, args.seconds)
    if args.json:
        print(json.dumps(rows, indent=1))
        return EXIT_OK
    source = args.file or f"bundled clip looped to {args.seconds:g} s"
    print(f"{source}, {rows[0]['audio_s']:.1f} s of audio, one thread\n")
    print(benchmark.format_table(rows))
    return EXIT_OK


def run_quantize(args: argparse.Namespace) -> int:
    require_torch("quantize")
    from .toolkit.evaluation import score_model
    from .toolkit.export import write_int8_folder
    from .vad import Vad

    files = resolve_model(args.model)
    written = write_int8_folder(files, args.out, args.prune)
    print(f"{_size(files.weights)} -> {written}: {_size(written)}")
    if args.eval:
        for label, model, precision in (
            ("fp32", args.model, "fp32"),
            ("int8", args.model, "int8"),
            (f"int8, pruned {args.prune:g}" if args.prune else "written", args.out, "int8"),
        ):
            vad = Vad.load(model, precision=precision, runtime="torch")  # torch INT8 weights
            f1 = score_model(vad, args.eval).f1
            print(f"F1 on {args.eval} ({label}): {f1:.4f}")
    return EXIT_OK


def _size(path: Path) -> str:
    """Size on disk and zipped: pruned zeros only shrink a compressed copy."""
    data = path.read_bytes()
    return (
        f"{path.name} {len(data) / 1e6:.2f} MB ({len(zlib.compress(data, 9)) / 1e6:.2f} MB zipped)"
    )


def run_export(args: argparse.Namespace) -> int:
    require_torch("export-onnx")
    from .toolkit.export import export_onnx, fp32_encoder

    encoder = fp32_encoder(resolve_model(args.model))
    try:
        path = export_onnx(encoder, args.out, int8=args.int8)
    except ImportError as exc:
        raise UsageError(f"{extra_hint('torch', 'export-onnx')} ({exc})") from None
    print(f"{path} {path.stat().st_size / 1e6:.2f} MB")
    return EXIT_OK


def run_eval(args: argparse.Namespace) -> int:
    from .toolkit.evaluation import evaluate, format_table

    if not args.ref_dir.is_dir() or not args.out.is_dir():
        raise UsageError("eval needs two folders: REF_DIR (with .rttm files) and OUT")
    result = evaluate(args.ref_dir, args.out, args.collar)
    if not result["files"] and not result["missing"]:
        raise UsageError(f"{args.ref_dir}: no .rttm files")
    print(json.dumps(result, indent=1) if args.json else format_table(result))
    return EXIT_FAILED if result["missing"] else EXIT_OK


class RunFailed(Exception):
    """A run stopped by an error that is no one file's: EXIT_RUN_FAILED."""


# what an error means for the exit code, the first match winning; each is one line on stderr
ERRORS: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], int], ...] = (
    ((AudioError, ModelError), EXIT_FAILED),
    ((RunFailed, ManifestUnwritable), EXIT_RUN_FAILED),
    ((UsageError, ManifestNewer, OSError, TypeError, ValueError), EXIT_USAGE),  # SettingError too
    (LockedError, EXIT_LOCKED),
    (DiskFull, EXIT_DISK_FULL),
    (ManifestDamaged, EXIT_DAMAGED),
    (SettingsChanged, EXIT_SETTINGS_CHANGED),
)


def main(argv: list[str] | None = None) -> int:
    """Run a command; every error is one line on stderr and an exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:  # Ctrl-C: a batch's files and manifest stay consistent
        print("segmenter: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        code = next((code for kinds, code in ERRORS if isinstance(exc, kinds)), None)
        if code is None:
            raise
        print(f"segmenter: {shown(str(exc))}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
