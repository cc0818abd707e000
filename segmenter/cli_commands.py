"""What each command does with its parsed arguments (`cli.build_parser` routes to them): each
returns its exit code; a user's error is raised as a SegmenterError (errors.py)."""

from __future__ import annotations

import argparse
import errno
import functools
import json
import sqlite3
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

from .batch import notes
from .batch.changed import SettingsChanged
from .batch.discovery import check_out
from .batch.manifest import (
    Manifest,
    ManifestUnwritable,
)
from .cli_options import output_settings, require_runtime, require_torch
from .engines.model import DEFAULT_RUNTIME, resolve_model
from .errors import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_SETTINGS_CHANGED,
    RunFailed,
    SegmenterError,
    UsageError,
)
from .install import extra_hint
from .names import shown
from .settings import (
    DECISION_VALUE_KEYS,
    JOB_RULES,
    SettingError,
    decision_settings,
    read_job,
)
from .writers import write_formats


def own_files(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A command whose OSError (a file or folder it was given that cannot be read or written:
    `quantize -o /read-only/m`) is the user's to fix: one line and exit 2, as a UsageError. A
    bug's TypeError or ValueError keeps its traceback (cli.main)."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except SegmenterError:
            raise
        except OSError as exc:
            raise UsageError(str(exc)) from exc

    return run


@own_files
def run_segment(args: argparse.Namespace) -> int:
    from .vad import Vad, one_core_process  # the engine is imported only where the model runs

    one_core_process()
    values = vars(args).copy()
    formats, chunking = output_settings(values)
    decision = decision_settings(values)
    if not Path(args.file).exists():
        raise UsageError(f"input not found: {args.file}")
    require_runtime(args.runtime)
    if args.formats:
        check_out(args.out or Path("."))
    vad = Vad.load(
        args.model,
        precision=args.precision or "int8",
        runtime=args.runtime or DEFAULT_RUNTIME,
        settings=decision,
    )
    document = vad.document(args.file, channel=args.channel, chunking=chunking)
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
    decision = decision_settings(values)
    values = {k: v for k, v in values.items() if k not in DECISION_VALUE_KEYS}
    values["out"] = Path(values["out"])
    values["rebuild_manifest"] = bool(getattr(args, "rebuild_manifest", False))  # not a job key
    formats, chunking = output_settings(values)
    return BatchSettings(decision=decision, formats=formats, chunking=chunking, **values)


@own_files
def run_batch(args: argparse.Namespace) -> int:
    from .batch.discovery import InputError
    from .batch.runner import run

    settings = batch_settings(args)
    require_runtime(settings.runtime)
    try:
        summary, code = run(settings, ask_to_redo if sys.stdin.isatty() else None)
        if settings.report:  # here, not in batch/: the batch never imports a view
            from .views.report import write_report

            write_report(settings.out)
    except SettingsChanged as exc:  # nothing done: said with the date in a cron log
        notes.note(str(exc))
        return EXIT_SETTINGS_CHANGED
    except (InputError, SettingError, UsageError, ManifestUnwritable):
        raise  # refused before anything was touched, or named as it is
    except (OSError, sqlite3.Error, ValueError, RuntimeError) as exc:  # a TypeError is a bug
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


@own_files
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


@own_files
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


@own_files
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
    settings = ServeSettings(
        decision=decision_settings(vars(args)),
        out=args.out,
        host=args.host,
        port=args.port,
        model=args.model,
        precision=args.precision or "int8",
        runtime=args.runtime or DEFAULT_RUNTIME,
        max_upload_mb=args.max_upload_mb,
        logins=logins,
    )
    serve(settings)
    return EXIT_OK


@own_files
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


@own_files
def run_quantize(args: argparse.Namespace) -> int:
    require_torch("quantize")
    from .engines.export import write_int8_folder
    from .toolkit.evaluation import score_model
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


@own_files
def run_export(args: argparse.Namespace) -> int:
    require_torch("export-onnx")
    from .engines.export import export_onnx, fp32_encoder

    encoder = fp32_encoder(resolve_model(args.model))
    try:
        path = export_onnx(encoder, args.out, int8=args.int8)
    except ImportError as exc:
        raise UsageError(f"{extra_hint('torch', 'export-onnx')} ({exc})") from None
    print(f"{path} {path.stat().st_size / 1e6:.2f} MB")
    return EXIT_OK


@own_files
def run_eval(args: argparse.Namespace) -> int:
    from .toolkit.evaluation import evaluate, format_table

    if not args.ref_dir.is_dir() or not args.out.is_dir():
        raise UsageError("eval needs two folders: REF_DIR (with .rttm files) and OUT")
    result = evaluate(args.ref_dir, args.out, args.collar)
    if not result["files"] and not result["missing"]:
        raise UsageError(f"{args.ref_dir}: no .rttm files")
    print(json.dumps(result, indent=1) if args.json else format_table(result))
    return EXIT_FAILED if result["missing"] else EXIT_OK
