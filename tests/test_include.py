"""--include and --exclude match in any case, as the extensions do, and an include pattern that
takes no file says so in the summary."""

from segmenter.batch.discovery import discover

from .test_batch import rows, run
from .test_gone import recording


def test_patterns_match_in_any_case_like_the_extensions(tmp_path):
    root = tmp_path / "in"
    for name in ("a.mp3", "b.MP3", "c.wav", "TMP/d.MP3", "tmp/e.mp3"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    found = discover([root], include=["*.MP3"], exclude=["*/tmp/*"], settle_seconds=0)
    assert [s.rel for s in found.sources] == ["a.mp3", "b.MP3"]
    lower = discover([root], include=["*.mp3"], settle_seconds=0)
    assert [s.rel for s in lower.sources] == ["TMP/d.MP3", "a.mp3", "b.MP3", "tmp/e.mp3"]


def test_an_include_pattern_that_takes_no_file_gets_a_hint(tmp_path):
    root, out = tmp_path / "in", tmp_path / "out"
    recording(root / "Talk.WAV")
    done = run(root, "-o", out, "--jobs", "1", "--include", "*.wav", "--include", "*.flac")
    assert done.returncode == 0, done.stderr
    assert "files: 1 done" in done.stdout and list(rows(out)) == ["Talk.WAV"]
    hint = "hint: --include '*.flac' matched no file under the inputs (a pattern matches"
    assert hint in done.stdout and "'*.wav'" not in done.stdout
    assert "--include '*.flac' matched no file" in (out / "segmenter.log").read_text()
