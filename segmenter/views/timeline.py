"""A recording's speech on a time axis, as inline SVG: the report's strips, the page's waveform.

Both are plain markup (no script, no external file), so a report stays one self-contained file
and the web page shows them as HTML. Spans are (start, end) in seconds.
"""

from __future__ import annotations

import html
import os

import numpy as np

from ..audio import SAMPLE_RATE, open_audio

WIDTH = 1000  # viewBox units across a timeline
PEAK_HOP = SAMPLE_RATE // 100  # envelope resolution: 10 ms
TICK_STEPS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
SPEECH = "#9cc3f0"
WAVE = "#24405c"


def _num(x: float) -> str:
    """A coordinate with one decimal at most: SVG size grows with every digit."""
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _runs(duration: float, spans: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Spans as runs of whole viewBox units, (start, end), at least one unit wide; runs that
    touch once rounded are joined (a unit is under a pixel where a strip is shown)."""
    if duration <= 0 or not spans:
        return np.zeros(0, int), np.zeros(0, int)
    edges = np.rint(np.asarray(spans, float) * (WIDTH / duration)).astype(int)
    starts = np.clip(edges[:, 0], 0, WIDTH - 1)
    ends = np.clip(np.maximum(edges[:, 1], starts + 1), 1, WIDTH)
    fresh = np.ones(len(starts), bool)
    fresh[1:] = starts[1:] > np.maximum.accumulate(ends)[:-1]
    first = np.flatnonzero(fresh)
    return starts[first], np.maximum.reduceat(ends, first)


def strip_svg(duration: float, spans: list[tuple[float, float]], title: str = "") -> str:
    """A one-line timeline: the recording as a bar, its speech drawn over it (CSS sets its size).

    One stroked path with relative moves: about 8 bytes per segment, for reports of 10,000 files.
    """
    starts, ends = _runs(duration, spans)
    path = ""
    if len(starts):
        gaps = (starts[1:] - ends[:-1]).tolist()
        widths = (ends - starts).tolist()
        moves = "".join(f"m{g} 0h{w}" for g, w in zip(gaps, widths[1:], strict=True))
        path = f"M{starts[0]} .5h{widths[0]}{moves}"
    tip = f"<title>{html.escape(title)}</title>" if title else ""
    return (
        f'<svg class="strip" viewBox="0 0 {WIDTH} 1" preserveAspectRatio="none" role="img">'
        f'{tip}<path fill="none" stroke="{SPEECH}" d="{path}"/></svg>'
    )


def tick_step(duration: float, most: int = 10) -> float:
    """The smallest round step that puts at most `most` ticks on the axis."""
    return next((s for s in TICK_STEPS if duration / s <= most), TICK_STEPS[-1])


def clock(seconds: float) -> str:
    """12.5 s, 4:05 or 1:02:03: short recordings in seconds, long ones as a clock."""
    if seconds < 60:
        return f"{seconds:.3g} s" if seconds < 10 else f"{seconds:.0f} s"
    whole = round(seconds)
    h, m, s = whole // 3600, whole // 60 % 60, whole % 60
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def waveform_svg(
    duration: float, spans: list[tuple[float, float]], envelope: np.ndarray | None = None
) -> str:
    """A wide timeline: speech shaded and numbered, the waveform over it, a time axis below.

    `envelope` is (columns, 2) minimum and maximum per column in [-1, 1] (see `envelope`);
    without it the timeline shows speech and the axis only.
    """
    top, mid, half = 14, 64, 48  # segment numbers, waveform centre and half height
    parts = [
        f'<svg class="waveform" viewBox="0 0 {WIDTH} 134" role="img" '
        f'style="width:100%;height:auto;font:11px sans-serif">',
        f'<rect x="0" y="{top}" width="{WIDTH}" height="{2 * half + 4}" fill="#f3f5f8"/>',
    ]
    scale = WIDTH / duration if duration > 0 else 0.0
    for i, (start, end) in enumerate(spans, 1):
        x, w = start * scale, max((end - start) * scale, 0.5)
        parts.append(
            f'<rect class="speech" x="{_num(x)}" y="{top}" width="{_num(w)}" '
            f'height="{2 * half + 4}" fill="{SPEECH}"><title>{i}: {start:.2f}-{end:.2f} s'
            f"</title></rect>"
        )
        if w >= 14:
            parts.append(f'<text x="{_num(x + w / 2)}" y="11" text-anchor="middle">{i}</text>')
    if envelope is not None and len(envelope):
        step = WIDTH / len(envelope)
        upper = " ".join(
            f"{_num(i * step)},{_num(mid - hi * half)}" for i, hi in enumerate(envelope[:, 1])
        )
        lower = " ".join(
            f"{_num(i * step)},{_num(mid - lo * half)}"
            for i, lo in reversed(list(enumerate(envelope[:, 0])))
        )
        parts.append(f'<polygon fill="{WAVE}" points="{upper} {lower}"/>')
    parts.append(_axis(duration, scale, 2 * mid - top + 4))
    parts.append("</svg>")
    return "".join(parts)


def _axis(duration: float, scale: float, y: int) -> str:
    """A line with ticks at round times, labelled."""
    marks = [f'<line x1="0" y1="{y}" x2="{WIDTH}" y2="{y}" stroke="#555"/>']
    if duration <= 0:
        return "".join(marks)
    step = tick_step(duration)
    for k in range(int(duration / step) + 1):
        x = k * step * scale
        anchor = "start" if k == 0 else "end" if x > WIDTH - 20 else "middle"
        marks.append(f'<line x1="{_num(x)}" y1="{y}" x2="{_num(x)}" y2="{y + 4}" stroke="#555"/>')
        marks.append(
            f'<text x="{_num(x)}" y="{y + 15}" text-anchor="{anchor}">{clock(k * step)}</text>'
        )
    return "".join(marks)


def envelope(
    path: str | os.PathLike, columns: int = WIDTH, channel: int | None = None
) -> np.ndarray:
    """Minimum and maximum of the 16 kHz mono signal in `columns` equal stretches, block by block.

    Peaks are kept per 10 ms while decoding, so memory is 8 bytes per 10 ms of audio.
    """
    lows, highs, carry = [], [], np.zeros(0, np.float32)
    with open_audio(path, channel=channel) as audio:
        for block in audio:
            data = np.concatenate([carry, block])
            whole = len(data) // PEAK_HOP * PEAK_HOP
            frames = data[:whole].reshape(-1, PEAK_HOP)
            lows.append(frames.min(axis=1))
            highs.append(frames.max(axis=1))
            carry = data[whole:]
    if len(carry):
        lows.append(carry.min(keepdims=True))
        highs.append(carry.max(keepdims=True))
    low, high = np.concatenate(lows), np.concatenate(highs)
    edges = np.linspace(0, len(low), min(columns, len(low)) + 1).astype(int)[:-1]
    columns = np.stack([np.minimum.reduceat(low, edges), np.maximum.reduceat(high, edges)], 1)
    return np.clip(columns, -1.0, 1.0)
