"""The decoders fuzzed (issue 24): a few hundred seeded mutations of a sample in each format
(bench/fuzz.py; `python bench/fuzz.py --cases 5000` for a longer run). Each must give a result or
one line, never a traceback or a hang, in bounded memory."""

from bench.fuzz import FORMATS, report, run

CASES = 250
SEED = 24


def test_fuzzed_recordings_give_a_result_or_one_line_never_a_hang_in_bounded_memory(tmp_path):
    formats = list(FORMATS)
    counts = run(CASES, SEED, timeout=60, formats=formats, keep=tmp_path / "kept")
    print(report(counts, SEED, formats))
    assert counts.cases == CASES and not counts.hangs, counts.hangs
    assert not counts.tracebacks, counts.tracebacks[0][1]
    assert not counts.multiline, counts.multiline
    assert counts.peak_rss_mb < 100, counts.peak_case  # a 3 s decode peaks near 35
    assert counts.ffmpeg_peak_rss_mb < 300
    # the mutations reach both sides: files that still decode, and many kinds of damage
    assert sum(counts.results.values()) >= 10 and len(counts.results) == len(formats)
    assert len(counts.errors) >= 5
