"""Recordings made to hurt the decoder (issue 24): an MP3 that makes ffmpeg print megabytes, a
decoder that stops making progress, headers that claim absurd rates and channel counts. Each
ends in a result or one line, in the memory of a short recording, never a hang."""

import os
import signal
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from segmenter import audio
from segmenter.audio import AudioError, open_audio
from segmenter.segments import Segment
from segmenter.writers import write_clips

from .conftest import SAMPLES, SEGMENTER


def flipped_mp3(tmp_path: Path, seconds: int = 90) -> Path:
    """An MP3 without a length tag (so ffmpeg decodes it) with a byte flipped every 97 bytes:
    ffmpeg prints hundreds of kilobytes of errors about it, more than a pipe holds."""
    clean = tmp_path / "clean.mp3"
    source = SAMPLES / "standup_meeting.wav"
    cmd = ["ffmpeg", "-v", "error", "-stream_loop", "-1", "-i", str(source), "-t", str(seconds)]
    cmd += ["-c:a", "libmp3lame", "-b:a", "64k", "-write_xing", "0", str(clean)]
    subprocess.run(cmd, check=True)
    data = bytearray(clean.read_bytes())
    for i in range(0, len(data), 97):
        data[i] ^= 0xFF
    damaged = tmp_path / "flipped.mp3"
    damaged.write_bytes(bytes(data))
    return damaged


def test_ffmpegs_stderr_is_drained_so_a_chatty_damaged_mp3_cannot_hang_the_run(tmp_path):
    damaged = flipped_mp3(tmp_path)
    chatter = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(damaged), "-f", "s16le", "-"], capture_output=True
    ).stderr
    assert len(chatter) > 200_000  # far more than a pipe's 64 KiB
    try:
        done = subprocess.run(
            [SEGMENTER, "segment", str(damaged)], capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        pytest.fail("segmenter hung on a damaged MP3 (ffmpeg blocked on its stderr)")
    assert done.returncode in (0, 1), done.stderr
    assert done.returncode == 0 or done.stderr.count("\n") == 1


def m4a(tmp_path: Path) -> Path:
    target = tmp_path / "talk.m4a"
    source = SAMPLES / "standup_meeting.wav"
    cmd = ["ffmpeg", "-v", "error", "-stream_loop", "3", "-i", str(source), "-c:a", "aac"]
    subprocess.run([*cmd, str(target)], check=True)
    return target


def test_a_decoder_that_makes_no_progress_is_killed_and_the_file_fails(tmp_path, monkeypatch):
    """ffmpeg stopped for real (SIGSTOP) mid-file: after DECODER_STALL_S without a sample the
    watchdog kills it, and the file fails with that reason."""
    monkeypatch.setattr(audio.ffmpeg, "DECODER_STALL_S", 1.5)
    stream = open_audio(m4a(tmp_path))
    assert isinstance(stream, audio.FfmpegStream)
    blocks = iter(stream)
    next(blocks)
    ffmpeg = stream._proc
    os.kill(ffmpeg.pid, signal.SIGSTOP)
    with pytest.raises(AudioError) as stalled:
        for _ in blocks:
            pass
    message = str(stalled.value)
    assert message.endswith("the decoder (ffmpeg) made no progress for 1.5 s: killed")
    assert "\n" not in message
    assert ffmpeg.poll() == -signal.SIGKILL  # reaped, not left stopped


def sparse_wav(path: Path, rate: int, channels: int, seconds: float) -> Path:
    """A 16-bit WAV whose header claims `rate` and `channels` and whose data is all there but
    sparse (zeros on disk take no room): a header an archive could hold, made cheaply."""
    align = 2 * channels
    data = int(rate * seconds) * align
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * align, align, 16)
    head = b"RIFF" + struct.pack("<I", 36 + data) + b"WAVE" + b"fmt " + struct.pack("<I", 16)
    head += fmt + b"data" + struct.pack("<I", data)
    with open(path, "wb") as fh:
        fh.write(head)
        fh.truncate(len(head) + data)
    return path


# the child's own peak: VmHWM (ru_maxrss keeps, across exec, what the fork from the test process
# inherited, which may be hundreds of MB once torch is loaded)
PEAK_MB = """
def peak_mb():
    with open("/proc/self/status") as status:
        return int(next(l for l in status if l.startswith("VmHWM:")).split()[1]) // 1024
"""
DECODE = (
    PEAK_MB
    + """
import sys
from segmenter.audio import AudioError, open_audio
try:
    with open_audio(sys.argv[1]) as audio:
        print("samples", sum(len(block) for block in audio))
except AudioError as exc:
    print("error", exc)
print(peak_mb())
"""
)


def decode_in_child(path: Path) -> tuple[str, int]:
    """Decode `path` in a fresh process: (what it said, its peak RSS in MB)."""
    done = subprocess.run(
        [sys.executable, "-c", DECODE, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    said, peak = done.stdout.splitlines()
    return said, int(peak)


@pytest.fixture(scope="module")
def baseline_mb(tmp_path_factory) -> int:
    """The peak of decoding a short 16 kHz mono recording: the memory every file must fit."""
    path = tmp_path_factory.mktemp("baseline") / "short.wav"
    sf.write(path, np.zeros(16000 * 5, np.float32), 16000)
    said, peak = decode_in_child(path)
    assert said == "samples 80000"
    return peak


@pytest.mark.parametrize(
    ("rate", "channels", "seconds", "said"),
    [
        (768_000, 64, 2.0, "samples 32000"),  # the most this reads: it is read, in blocks
        (48_000, 1000, 10.0, "error {path}: its header claims 1000 channels"),
        (1 << 30, 1, 0.02, "error {path}: its header claims a sample rate of 1073741824 Hz"),
        (1, 2, 100_000.0, "error {path}: its header claims a sample rate of 1 Hz"),
    ],
    ids=["768kHz x 64", "1000 channels", "2^30 Hz", "1 Hz"],
)
def test_memory_holds_whatever_rate_and_channels_a_header_claims(
    tmp_path, baseline_mb, rate, channels, seconds, said
):
    path = sparse_wav(tmp_path / "claims.wav", rate, channels, seconds)
    got, peak = decode_in_child(path)
    assert got.startswith(said.format(path=path)), got
    print(f"{rate} Hz x {channels}: {got[:60]}; peak {peak} MB against {baseline_mb} MB")
    assert peak - baseline_mb < 40, (peak, baseline_mb)


def test_clips_at_the_source_rate_are_cut_a_block_at_a_time(tmp_path):
    """A clip of a 768 kHz x 64-channel source is written in blocks, never read whole."""
    path = sparse_wav(tmp_path / "wide.wav", 768_000, 64, 3.0)
    script = PEAK_MB + (
        "import sys\nfrom pathlib import Path\n"
        "from segmenter.segments import Segment\nfrom segmenter.writers import write_clips\n"
        "write_clips(Path(sys.argv[1]), Path(sys.argv[2]), [Segment(0, 3000)])\n"
        "print(peak_mb())"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path), str(tmp_path / "clips")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    clip = next((tmp_path / "clips").iterdir())
    assert sf.info(clip).frames == 3 * 768_000 and sf.info(clip).channels == 64
    assert int(done.stdout) < 200, done.stdout  # the clip alone is 295 MB as 16-bit samples


def test_clips_of_a_channel_keep_that_channel(tmp_path):
    """Block-wise clips, one channel picked, equal the source's samples."""
    rng = np.random.default_rng(1)
    stereo = (rng.standard_normal((48000 * 3, 2)) * 0.1).astype(np.float32)
    path = tmp_path / "stereo.wav"
    sf.write(path, stereo, 48000, subtype="PCM_16")
    names = write_clips(path, tmp_path / "clips", [Segment(500, 2500)], channel=1)
    clip, rate = sf.read(tmp_path / "clips" / names[0], dtype="float32")
    source = sf.read(path, dtype="float32")[0][24000:120000, 1]
    assert rate == 48000 and clip.ndim == 1
    np.testing.assert_allclose(clip, source, atol=1 / 32768)
