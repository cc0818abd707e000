"""Speed side by side: every engine x profile of segmenter and the peers, one thread.

The same 10- and 60-minute recordings for all, then the batch figures; one command, one run.

usage: python bench/speed.py [--minutes 10 60] [--repeat 3] [--markdown PATH]
                             [--funasr-python PATH] [--skip-batch] [--only NAME ...]

Each configuration runs in a process of its own with one thread (OMP, MKL and OpenBLAS 1,
onnxruntime intra-op 1, torch 1): it loads its model (timed apart), then processes the recording
`repeat` times from its path, decoding included, and keeps the best wall time; x real time is the
audio's seconds over that time, peak RSS the process's maximum resident set (model, decoder and
all). segmenter runs through its public API, `Vad.load(engine=..., profile=...).segments(path)`;
the peers as their users call them:

- FunASR 1.4.16 `AutoModel(model=<the bundled fsmn-vad folder>).generate(input=path)` (it decodes
  the file itself). FunASR is not a dependency (its requirements bring transformers, umap-learn,
  hydra and more); it runs in the Python of `--funasr-python` (else $FUNASR_PYTHON, else
  bench/data/funasr-venv if it exists, else this one if it imports funasr). Make that venv once:
      python3 -m venv bench/data/funasr-venv
      bench/data/funasr-venv/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
      bench/data/funasr-venv/bin/pip install funasr==1.4.16 kaldi-native-fbank
  (kaldi-native-fbank is FunASR's fbank where torchaudio is missing: its segments are the golden
  ones; where the CPU index is unreachable, install a local CPU torch wheel first).
- silero-vad (the dev extra): `get_speech_timestamps` with its defaults (TorchScript model), and
  `get_speech_timestamps_sequence` with its sequence graph, its fastest loop; the file decoded
  with soundfile (its own read_audio needs torchaudio or torchcodec).
- ten-vad (the dev extra; its library needs Debian's libc++1): a probability per 16 ms hop and the
  post-processing of bench/peers.py.
- webrtcvad (webrtcvad-wheels, the dev extra): aggressiveness 3 on 30 ms frames, the same
  post-processing.

The batch rows time whole `segmenter run` invocations with 2 workers (default engine and profile,
start-up included): 10,000 one-second files (files/s) and 20 ten-minute files (minutes of audio
per second), each made once under bench/data/ from the golden recordings and the 10-minute one.
The recordings: bench/engine.py's maker (../shared/tools/make_devset.py where it exists: a
meeting-like mix of voices, pauses and noise), bench/data/long10.wav and long60.wav.

The machine is shared: each row is one process's best of `repeat`, and the provenance above each
table (bench/pages.py with `--markdown`: date, commit, machine, command) gives the load averages
when the run started and ended. Figures quoted elsewhere come from this table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pages  # bench/pages.py, same folder
import soundfile as sf
from engine import ONE_THREAD, funasr_python, long_recording  # bench/engine.py, same folder

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
MODEL_DIR = ROOT / "segmenter" / "models" / "fsmn-vad"
SEGMENTER = str(Path(sys.executable).parent / "segmenter")
THREADS = {**ONE_THREAD, "OPENBLAS_NUM_THREADS": "1"}


@dataclass(frozen=True)
class Configuration:
    """A row: what runs (`kind`), and what the table calls it."""

    name: str
    kind: str  # "segmenter:ENGINE:PROFILE[:PRECISION]" or a peer's name


def configurations() -> list[Configuration]:
    """Every engine x profile segmenter accepts (FSMN's FunASR-exact FP32 too), then the peers."""
    from segmenter.engines import DEFAULT_ENGINE, ENGINES
    from segmenter.profiles import PROFILES, default_profile

    rows = []
    for engine in ENGINES:
        for profile in PROFILES:
            if engine != "fsmn" and profile == "funasr":  # funasr reads what only FSMN gives
                continue
            default = engine == DEFAULT_ENGINE and profile == default_profile(engine)
            name = f"segmenter {engine} + {profile}{' (default)' if default else ''}"
            rows.append(Configuration(name, f"segmenter:{engine}:{profile}"))
    rows.insert(
        1,
        Configuration("segmenter fsmn + funasr, fp32 (FunASR-exact)", "segmenter:fsmn:funasr:fp32"),
    )
    return rows + [
        Configuration("FunASR AutoModel (fsmn-vad)", "funasr"),
        Configuration("silero-vad get_speech_timestamps (TorchScript)", "silero-vad"),
        Configuration("silero-vad get_speech_timestamps_sequence", "silero-vad-sequence"),
        Configuration("ten-vad + post-processing", "ten-vad"),
        Configuration("webrtcvad (mode 3) + post-processing", "webrtcvad"),
    ]


# -- the children: one configuration in this process ----------------------------------------


def segmenter_runner(kind: str):
    """`path -> segments` of a segmenter configuration, loaded."""
    from segmenter.vad import Vad, one_core_process

    one_core_process()
    _, engine, profile, *precision = kind.split(":")
    vad = Vad.load(engine=engine, profile=profile, precision=(precision or ["int8"])[0], threads=1)
    return lambda path: len(vad.segments(path))


def decoded(path: str) -> np.ndarray:
    """16 kHz mono float32 samples of a recording, as the peers get them."""
    samples, rate = sf.read(path, dtype="float32")
    assert rate == 16000 and samples.ndim == 1, f"{path}: not 16 kHz mono"
    return samples


def silero_runner(kind: str):
    """silero-vad's own loops (torch, one thread)."""
    import silero_vad
    import torch

    torch.set_num_threads(1)
    sequence = kind == "silero-vad-sequence"
    model = (
        silero_vad.load_silero_vad(sequence=sequence) if sequence else silero_vad.load_silero_vad()
    )
    find = (
        silero_vad.get_speech_timestamps_sequence if sequence else silero_vad.get_speech_timestamps
    )
    return lambda path: len(find(torch.from_numpy(decoded(path)), model))


def ten_runner(_: str):
    """ten-vad per 16 ms hop with bench/peers.py's post-processing."""
    from peers import Recording, ten_vad  # bench/peers.py, same folder

    def run(path: str) -> int:
        return len(ten_vad(Recording(Path(path), decoded(path), [])).segments)

    return run


def webrtc_runner(_: str):
    """webrtcvad (mode 3) per 30 ms frame, then bench/peers.py's post-processing."""
    import webrtcvad
    from peers import MIN_SILENCE_MS, MIN_SPEECH_MS, PAD_MS, speech_runs

    from segmenter.chunking import merge_close, pad

    vad = webrtcvad.Vad(3)
    frame = 480  # 30 ms

    def run(path: str) -> int:
        samples = decoded(path)
        pcm = np.round(np.clip(samples, -1.0, 32767 / 32768) * 32768).astype(np.int16).tobytes()
        step = 2 * frame
        speech = np.array(
            [vad.is_speech(pcm[i : i + step], 16000) for i in range(0, len(pcm) - step + 1, step)]
        )
        found = merge_close(speech_runs(speech, 30), sys.maxsize, MIN_SILENCE_MS - 1)
        found = [s for s in found if s.duration >= MIN_SPEECH_MS]
        return len(pad(found, PAD_MS, len(samples) // 16))

    return run


RUNNERS = {"silero-vad": silero_runner, "silero-vad-sequence": silero_runner}
RUNNERS |= {"ten-vad": ten_runner, "webrtcvad": webrtc_runner}


def child(kind: str, audio: str, repeat: int) -> dict:
    """Load, then the best of `repeat` passes over the file; in this process."""
    import resource

    start = time.perf_counter()
    run = segmenter_runner(kind) if kind.startswith("segmenter:") else RUNNERS[kind](kind)
    load = time.perf_counter() - start
    times, segments = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        segments = run(audio)
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"load": load, "best": min(times), "segments": segments, "rss_mb": peak}


# FunASR runs in a Python of its own: this is that child, self-contained
FUNASR_CHILD = r"""
import json, logging, resource, sys, time
import torch
torch.set_num_threads(1)
from funasr import AutoModel
model_dir, audio, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
start = time.perf_counter()
model = AutoModel(model=model_dir, disable_update=True, disable_pbar=True, log_level="ERROR",
                  device="cpu", ncpu=1)
load = time.perf_counter() - start
times = []
for _ in range(repeat):
    start = time.perf_counter()
    found = model.generate(input=audio)[0]["value"]
    times.append(time.perf_counter() - start)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"load": load, "best": min(times), "segments": len(found), "rss_mb": peak}))
"""


def measure(config: Configuration, audio: Path, args: argparse.Namespace) -> dict | str:
    """One configuration in a fresh one-thread process: its figures, or why there are none."""
    env = {**os.environ, **THREADS}
    if config.kind == "funasr":
        python = funasr_python(args.funasr_python)
        if python is None:
            return "not installed (see this script's docstring)"
        cmd = [python, "-c", FUNASR_CHILD, str(MODEL_DIR), str(audio), str(args.repeat)]
    else:
        cmd = [sys.executable, __file__, "--child", config.kind, "--audio", str(audio)]
        cmd += ["--repeat", str(args.repeat)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        return f"failed: {lines[-1][:120]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the batch rows ---------------------------------------------------------------------------

# Runs a command and prints the peak RSS (KiB) of its largest descendant once all have exited
# (a subreaper, so the workers' fork server and its children count too).
PEAK = """
import ctypes, os, resource, subprocess, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
subprocess.run(sys.argv[1:], check=True)
try:
    while True:
        os.wait()
except ChildProcessError:
    pass
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def cut_files(name: str, source: Path, count: int, seconds: float) -> Path:
    """`count` recordings of `seconds` cut from `source` at different places (made once)."""
    folder = DATA / name
    if folder.exists() and len(list(folder.glob("*.wav"))) == count:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    audio = sf.read(source, dtype="int16")[0]
    n = int(seconds * 16000)
    for i in range(count):
        start = (i * 104729 * 16) % (len(audio) - n + 1)
        sf.write(folder / f"{name}_{i:05d}.wav", audio[start : start + n], 16000)
    return folder


def batch_run(inputs: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of `segmenter run` with 2 workers into a fresh folder."""
    out = Path(tempfile.mkdtemp(prefix="segspeed-"))
    cmd = [SEGMENTER, "run", str(inputs), "-o", str(out), "--jobs", "2", "--quiet"]
    cmd += ["--settle-seconds", "0"]
    try:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", PEAK, *cmd], check=True, capture_output=True)
        wall = time.perf_counter() - start
    finally:
        shutil.rmtree(out)
    return wall, int(done.stdout.decode().split()[-1]) / 1024


def batch_rows(source: Path) -> list[str]:
    """The two batch rows of the table (the long files cut from `source`, an hour)."""
    import compileall

    compileall.compile_dir(ROOT / "segmenter", quiet=1)  # as a wheel install has it
    golden = ROOT / "tests" / "data" / "golden" / "dev06_densepink30db.flac"
    tiny = cut_files("speed10000x1s", golden, 10_000, 1)
    long = cut_files("speed20x10min", source, 20, 600)
    rows = []
    wall, peak = batch_run(tiny)
    rows.append(
        f"| `segmenter run`, 10,000 x 1 s, 2 workers | {10_000 / wall:.0f} files/s, all in"
        f" ({wall:.1f} s) | | {peak:.0f} |"
    )
    wall, peak = batch_run(long)
    rows.append(
        f"| `segmenter run`, 20 x 10 min, 2 workers | {200 / wall:.1f} min of audio per s, all"
        f" in ({wall:.1f} s; {200 * 60 / wall:.0f}x real time) | | {peak:.0f} |"
    )
    return rows


# -- the table --------------------------------------------------------------------------------


def table(args: argparse.Namespace) -> None:
    """Run everything and print the tables (rows as they come; pages.py puts the date, commit,
    machine, load before and after and the command above each)."""
    recordings = {m: long_recording(m) for m in args.minutes}
    configs = [c for c in configurations() if not args.only or any(o in c.name for o in args.only)]
    header = ["| configuration |", "| --- |"]
    for minutes in recordings:
        header[0] += f" {minutes} min: x real time | load s | peak RSS MB |"
        header[1] += " ---: | ---: | ---: |"
    print(
        f"One thread per configuration, best of {args.repeat} after loading, decoding included.\n"
    )
    print("\n".join(header), flush=True)
    for config in configs:
        cells = f"| {config.name} |"
        for audio in recordings.values():
            result = measure(config, audio, args)
            if isinstance(result, str):
                cells += f" {result} | | |"
                continue
            speed = sf.info(audio).duration / result["best"]
            cells += f" {speed:.0f}x | {result['load']:.2f} | {result['rss_mb']:.0f} |"
        print(cells, flush=True)
    if not args.skip_batch:
        print("\n| batch | throughput | | peak RSS MB (largest process) |")
        print("| --- | --- | --- | ---: |", flush=True)
        for row in batch_rows(recordings.get(60) or long_recording(60)):
            print(row, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=int, nargs="+", default=[10, 60])
    ap.add_argument("--repeat", type=int, default=3, help="passes per configuration (best)")
    pages.add_argument(ap)
    ap.add_argument("--funasr-python", help="a Python with funasr 1.4.16 (see the docstring)")
    ap.add_argument("--skip-batch", action="store_true", help="no `segmenter run` rows")
    ap.add_argument("--only", nargs="+", help="rows whose name contains one of these")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--audio", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.audio, args.repeat)))
        return
    with pages.page(args.markdown, __doc__):
        table(args)


if __name__ == "__main__":
    main()
