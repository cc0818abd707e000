"""Audio input: formats an archive holds, time base, bad files, and the ffmpeg subprocess."""

import gc
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from segmenter.audio import AudioError, FfmpegStream, _mpg123_muted, open_audio

from .conftest import GOLDEN, SEGMENTER, alive

SOURCE = GOLDEN / "dev01_pink20db.flac"  # 60 s, six segments, pink noise at 20 dB
BLACK_VIDEO = ["-f", "lavfi", "-i", "color=c=black:s=160x120:r=5"]

# name: (extra input, ffmpeg output options from the 16 kHz WAV, boundary tolerance in ms)
FORMATS = {
    "stereo44.mp3": ([], ["-ar", "44100", "-ac", "2", "-c:a", "libmp3lame", "-b:a", "128k"], 30),
    "aac.m4a": ([], ["-c:a", "aac", "-b:a", "96k"], 30),
    "alac.m4a": ([], ["-c:a", "alac"], 10),
    "vorbis.ogg": ([], ["-c:a", "libvorbis", "-q:a", "3"], 30),
    "voice.opus": ([], ["-c:a", "libopus", "-b:a", "32k"], 30),
    "meeting.wma": ([], ["-c:a", "wmav2", "-b:a", "64k"], 60),  # measured 50 ms at 64 kbit/s
    "talk.mp4": (BLACK_VIDEO, ["-shortest", "-c:v", "mpeg4", "-c:a", "aac"], 30),
    "talk.mkv": (BLACK_VIDEO, ["-shortest", "-c:v", "mpeg4", "-c:a", "libvorbis"], 30),
    "talk.webm": (BLACK_VIDEO, ["-shortest", "-c:v", "libvpx", "-c:a", "libopus"], 30),
    "rf64.wav": ([], ["-ar", "48000", "-c:a", "pcm_s24le", "-rf64", "always"], 10),
    "wave64.w64": ([], ["-c:a", "pcm_s16le"], 10),
    "quad.wav": ([], ["-af", "pan=4c|c0=c0|c1=c0|c2=c0|c3=c0", "-c:a", "pcm_s16le"], 10),
    # a telephone channel removes most of the band the model listens to (measured 60 ms)
    "phone8k.wav": ([], ["-ar", "8000", "-af", "highpass=f=300,lowpass=f=3400"], 80),
}
# other rates made with sox's best resampler, so the test file itself is faithful
SOX_RATES = {
    "stereo48.flac": ["-r", "48000", "-c", "2"],
    "stereo44.wav": ["-r", "44100", "-c", "2"],
    "mono22.wav": ["-r", "22050"],
    "stereo96x24.flac": ["-r", "96000", "-c", "2", "-b", "24"],
}


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("formats")
    original = folder / "original.wav"
    sf.write(original, sf.read(SOURCE, dtype="int16")[0], 16000, subtype="PCM_16")
    made = {"original.wav": original}
    for name, (extra, args, _) in FORMATS.items():
        target = folder / name
        cmd = ["ffmpeg", "-v", "error", "-y", *extra, "-i", str(original), *args, str(target)]
        if subprocess.run(cmd).returncode == 0:
            made[name] = target
    for name, args in SOX_RATES.items():
        target = folder / name
        subprocess.run(
            ["sox", str(original), *args, str(target), "rate", "-v", "-b", "99.5"], check=True
        )
        made[name] = target
    return made


def segments(vad, path, **kw):
    return np.array([(s.start, s.end) for s in vad.process_file(path, **kw).segments])


@pytest.mark.parametrize("name", [*FORMATS, *SOX_RATES])
def test_format_gives_the_original_segments(vad_fp32, converted, name):
    if name not in converted:
        pytest.skip(f"this machine's ffmpeg cannot write {name}")
    tolerance = FORMATS[name][2] if name in FORMATS else 10
    ref = segments(vad_fp32, converted["original.wav"])
    got = segments(vad_fp32, converted[name])
    assert got.shape == ref.shape, (name, got, ref)
    assert np.abs(got - ref).max() <= tolerance, (name, np.abs(got - ref).max())


def test_amr_needs_an_encoder_this_machine_lacks():
    encoders = subprocess.run(
        ["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True
    )
    if "amr_nb" in encoders.stdout or "amrnb" in encoders.stdout:
        pytest.fail("an AMR encoder exists now: add amr to FORMATS")
    pytest.skip("no AMR encoder in Debian's ffmpeg; AMR files are read through ffmpeg like M4A")


def test_info_reports_source_format(converted):
    with open_audio(converted["stereo44.mp3"]) as audio:
        assert (audio.info.sample_rate, audio.info.channels) == (44100, 2)
        assert audio.info.format.startswith("MP3") and abs(audio.info.duration - 60) < 0.01
    with open_audio(converted["aac.m4a"]) as audio:
        assert audio.info.format.endswith("aac") and audio.info.duration == pytest.approx(
            60, abs=0.05
        )


def test_channel_pick(tmp_path):
    speech = sf.read(SOURCE, dtype="float32")[0][: 16000 * 20]
    noise = np.random.default_rng(0).standard_normal(len(speech)).astype(np.float32) * 0.001
    path = tmp_path / "two_mics.flac"
    sf.write(path, np.stack([noise, speech], axis=1), 16000)
    first = list(open_audio(path, channel=0))
    second = np.concatenate(list(open_audio(path, channel=1)))
    np.testing.assert_allclose(second, speech, atol=1e-4)
    assert np.abs(np.concatenate(first)).max() < 0.01
    with pytest.raises(AudioError, match="no channel 2: it has channels 0 and 1 \\(they count"):
        open_audio(path, channel=2)


def test_resampling_does_not_depend_on_block_size(converted):
    def decoded(seconds):
        with open_audio(converted["stereo44.wav"], block_seconds=seconds) as audio:
            return np.concatenate(list(audio))

    whole = decoded(100)
    assert abs(len(whole) - 60 * 16000) <= 1
    for seconds in (0.01, 0.37, 3.3):
        np.testing.assert_array_equal(decoded(seconds), whole)


# -- bad input ---------------------------------------------------------------------------------


@pytest.fixture
def wav_bytes(tmp_path):
    path = tmp_path / "ok.wav"
    sf.write(path, np.zeros(16000 * 2, np.float32) + 0.01, 16000, subtype="PCM_16")
    return path.read_bytes()


BAD = {
    "empty.wav": (lambda b: b"", "empty file \\(0 bytes\\)"),
    "cut.wav": (lambda b: b[: len(b) // 2], "truncated WAV: data chunk declares 64000 bytes"),
    "header.wav": (lambda b: b[:30], "truncated WAV header"),
    "random.wav": (lambda b: np.random.default_rng(1).bytes(5000), "not a recognised audio format"),
    "notes.wav": (lambda b: b"minutes of the meeting\n" * 40, "not audio \\(a text file\\)"),
    "codec.wav": (lambda b: b[:20] + b"\x34\x12" + b[22:], "unsupported audio codec"),
}


@pytest.mark.parametrize("name", BAD)
def test_bad_file_gives_its_error(tmp_path, wav_bytes, name):
    make, message = BAD[name]
    path = tmp_path / name
    path.write_bytes(make(wav_bytes))
    with pytest.raises(AudioError, match=message) as err, open_audio(path) as audio:
        list(audio)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_zero_samples(tmp_path):
    sf.write(tmp_path / "zero.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match="no audio samples"):
        open_audio(tmp_path / "zero.wav")


def test_directory_fifo_and_missing_file(tmp_path):
    (tmp_path / "x.wav").mkdir()
    with pytest.raises(AudioError, match="is a directory"):
        open_audio(tmp_path / "x.wav")
    os.mkfifo(tmp_path / "pipe.wav")  # opening it would block forever
    with pytest.raises(AudioError, match="not a regular file"):
        open_audio(tmp_path / "pipe.wav")
    with pytest.raises(AudioError, match="no such file"):
        open_audio(tmp_path / "gone.wav")


def test_no_read_permission(wav_bytes):
    """Root reads anything, so the reader runs as `nobody` on a file only root may read."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to drop root")
    folder = Path(tempfile.mkdtemp(dir="/tmp"))
    folder.chmod(0o755)
    path = folder / "private.wav"
    path.write_bytes(wav_bytes)
    path.chmod(0o600)
    probe = f"from segmenter.audio import open_audio\nopen_audio({str(path)!r})"
    drop = (
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.getuid() == 0 else []
    )
    if subprocess.run([*drop, sys.executable, "-c", "import segmenter"]).returncode != 0:
        shutil.rmtree(folder)
        pytest.skip("this interpreter cannot run as nobody (its folders are private)")
    out = subprocess.run([*drop, sys.executable, "-c", probe], capture_output=True, text=True)
    shutil.rmtree(folder)
    assert "AudioError" in out.stderr and "permission denied" in out.stderr


def test_file_cut_while_being_read(tmp_path):
    path = tmp_path / "shrinking.flac"
    sf.write(path, np.random.default_rng(2).standard_normal(16000 * 30) * 0.1, 16000)
    with (
        pytest.raises(AudioError, match="changed while being read"),
        open_audio(path, block_seconds=1) as audio,
    ):
        for i, _ in enumerate(audio):
            if i == 2:
                os.truncate(path, 20000)


def test_ffmpeg_missing(converted, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(AudioError, match="ffmpeg is missing: install ffmpeg"):
        open_audio(converted["aac.m4a"])


# -- the ffmpeg subprocess never outlives its reader --------------------------------------------


def test_ffmpeg_failing_halfway(converted):
    stream = open_audio(converted["aac.m4a"], block_seconds=1)
    assert isinstance(stream, FfmpegStream)
    blocks = iter(stream)
    next(blocks)
    stream._proc.kill()
    with pytest.raises(AudioError, match="ffmpeg failed while decoding"):
        list(blocks)


def test_ffmpeg_killed_on_early_stop_and_garbage_collection(converted):
    with open_audio(converted["aac.m4a"], block_seconds=1) as stream:
        for _ in stream:
            pid = stream._proc.pid
            break
    assert not alive(pid)
    stream = open_audio(converted["aac.m4a"], block_seconds=1)
    blocks = iter(stream)
    next(blocks)
    pid = stream._proc.pid
    del stream, blocks
    gc.collect()
    assert not alive(pid)


def test_ffmpeg_killed_at_interpreter_exit(converted):
    probe = (
        "from segmenter.audio import open_audio\n"
        f"s = open_audio({str(converted['aac.m4a'])!r}, block_seconds=1)\n"
        "b = iter(s); next(b); print(s._proc.pid, flush=True)\n"
        "import builtins; builtins.keep = (s, b)\n"  # still referenced when Python exits
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    pid = int(out.stdout)
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)


# -- memory ------------------------------------------------------------------------------------

RSS_PROBE = """
import resource, sys
import numpy as np
import soundfile as sf
from segmenter.audio import open_audio
path, seconds = sys.argv[1], int(sys.argv[2])
tone = (0.1 * np.sin(np.arange(48000 * 10) * 0.01)).astype(np.float32)
block = np.stack([tone, tone[::-1]], axis=1)
with sf.SoundFile(path, "w", 48000, 2, "PCM_16", format="FLAC") as out:
    for _ in range(seconds // 10):
        out.write(block)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
samples = 0
with open_audio(path) as audio:
    for decoded in audio:
        samples += len(decoded)
assert abs(samples - seconds * 16000) <= 16, samples
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def peak_rss_mb(path, seconds):
    out = subprocess.run(
        [sys.executable, "-c", RSS_PROBE, str(path), str(seconds)],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout)


@pytest.mark.slow
def test_three_hour_flac_reads_in_flat_memory(tmp_path):
    short = peak_rss_mb(tmp_path / "3min.flac", 180)
    long = peak_rss_mb(tmp_path / "3h.flac", 3 * 3600)
    assert long - short < 30, (short, long)


# -- truncated files: never a repeated block, the duration is what decodes ----------------------

SAMPLE_MP3 = Path(__file__).parents[1] / "samples" / "mandarin_review.mp3"  # 60 s, Xing header


def test_truncated_mp3_fails_instead_of_repeating_its_last_block(tmp_path):
    """libsndfile's block reader repeats its last buffer past the end of a cut MP3."""
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(SAMPLE_MP3.read_bytes()[:240000])
    with (
        pytest.raises(AudioError, match=r"ends at 29\.9\d s of the 60\.0\d s") as error,
        open_audio(cut) as audio,
    ):
        list(audio)
    assert "\n" not in str(error.value)


def test_truncated_m4a_gives_the_duration_that_decodes(tmp_path):
    """ffmpeg's probed duration is the container's claim; the document has what decoded."""
    whole, cut = tmp_path / "whole.m4a", tmp_path / "cut.m4a"
    cmd = ["ffmpeg", "-v", "error", "-i", str(SAMPLE_MP3), "-c:a", "aac", "-b:a", "64k"]
    subprocess.run([*cmd, "-movflags", "+faststart", str(whole)], check=True)
    cut.write_bytes(whole.read_bytes()[:250000])
    with open_audio(cut) as audio:
        decoded = sum(len(block) for block in audio) / 16000
        assert audio.info.duration == decoded
    assert 25 < decoded < 35


def test_libmpg123_chatter_stays_off_the_terminal(tmp_path):
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(SAMPLE_MP3.read_bytes()[:240000])  # libmpg123: "Warning: Xing stream size"
    done = subprocess.run(
        [SEGMENTER, "segment", str(cut)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert done.stderr.startswith("segmenter: ") and done.stderr.count("\n") == 1, done.stderr


def test_muting_libmpg123_keeps_everything_else_on_stderr(capfd):
    with _mpg123_muted():
        os.write(2, b"Warning: Xing stream size off by more than 1%\n")
        os.write(2, b"something else went wrong\n")
    assert capfd.readouterr().err == "something else went wrong\n"


def untagged_mp3(tmp_path, *quality) -> Path:
    """The sample re-encoded without the Xing/Info tag that gives an MP3's length."""
    target = tmp_path / f"untagged{len(quality)}.mp3"
    cmd = ["ffmpeg", "-v", "error", "-i", str(SAMPLE_MP3), "-c:a", "libmp3lame", *quality]
    subprocess.run([*cmd, "-write_xing", "0", str(target)], check=True)
    return target


def test_vbr_mp3_without_a_length_tag_is_read_to_its_end(tmp_path):
    """libsndfile guesses such a file's length from its first frame (16.5 s of 60 here)."""
    with open_audio(untagged_mp3(tmp_path, "-q:a", "6")) as audio:
        decoded = sum(len(block) for block in audio) / 16000
        assert abs(decoded - 60.0) < 0.1 and audio.info.duration == decoded


def test_mp3_without_a_length_tag_nor_ffmpeg_is_read_as_far_as_it_goes(tmp_path, monkeypatch):
    path = untagged_mp3(tmp_path, "-b:a", "64k")  # CBR: libsndfile's guess is a frame long
    monkeypatch.setenv("PATH", "/nonexistent")
    with open_audio(path) as audio:
        decoded = sum(len(block) for block in audio) / 16000
        assert abs(decoded - 60.0) < 0.1 and audio.info.duration == decoded
