"""ASR-ready chunks from FunASR's segments: split long ones, merge short ones, pad the edges.

Whisper reads 30 s windows. The limit is the smaller of `max_segment_s` and `merge_for_asr_s`,
and it holds for the finished chunk, padding included: a segment longer than the limit minus
twice `pad_ms` is cut at the least speech-like frame of its allowed range (the network's
per-frame speech score says where); neighbours closer than `max_merge_gap_s` are merged while
they fit the same length; `pad_ms` then widens each chunk without overlapping a neighbour or
leaving the file. The defaults change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .segments import Segment
from .settings import SettingError, check

MIN_SPEECH_MS = 1000  # what the padding must leave of a chunk's limit


@dataclass(frozen=True)
class ChunkOptions:
    """How to chunk for ASR; every chunk is at most `limit_ms` long, padding included."""

    max_segment_s: float | None = None
    merge_for_asr_s: float | None = None
    max_merge_gap_s: float = 1.0
    pad_ms: int = 0

    def __post_init__(self) -> None:
        """Refuse values that would loop forever, overlap, or give chunks longer than asked."""
        for name in ("max_segment_s", "merge_for_asr_s"):
            if getattr(self, name) is not None:
                check(name, getattr(self, name))
        check("max_merge_gap_s", self.max_merge_gap_s)
        check("pad_ms", self.pad_ms)
        if self.limit_ms is not None and self.limit_ms - 2 * self.pad_ms < MIN_SPEECH_MS:
            raise SettingError(
                f"pad_ms {self.pad_ms} (--pad-ms) leaves less than {MIN_SPEECH_MS / 1000:g} s of"
                f" speech in chunks of at most {self.limit_ms / 1000:g} s (padding counts toward"
                " the limit)"
            )

    @property
    def active(self) -> bool:
        """Whether chunking changes anything."""
        return bool(self.max_segment_s or self.merge_for_asr_s or self.pad_ms)

    @property
    def limit_ms(self) -> int | None:
        """The longest chunk allowed, padding included; None when there is no limit."""
        limits = [s for s in (self.max_segment_s, self.merge_for_asr_s) if s is not None]
        return round(min(limits) * 1000) if limits else None


def asr_chunks(
    segments: list[Segment],
    speech_scores: np.ndarray | None,
    duration_ms: int,
    options: ChunkOptions,
    frame_ms: int = 10,
) -> list[Segment]:
    """Split and merge to the limit less the padding, then pad, as `options` ask."""
    chunks = list(segments)
    if options.limit_ms is not None:
        longest = options.limit_ms - 2 * options.pad_ms
        chunks = [p for s in chunks for p in split_long(s, speech_scores, longest, frame_ms)]
        if options.merge_for_asr_s is not None:
            gap = round(options.max_merge_gap_s * 1000)
            chunks = merge_close(chunks, longest, gap)
    if options.pad_ms:
        chunks = pad(chunks, options.pad_ms, duration_ms)
    return chunks


def split_long(
    segment: Segment, speech_scores: np.ndarray | None, limit_ms: int, frame_ms: int = 10
) -> list[Segment]:
    """Pieces of at most limit_ms, each cut in the second half of its allowed range, where the
    speech score is lowest (or at the limit without scores)."""
    if limit_ms < 2 * frame_ms:
        raise ValueError(f"limit_ms must be at least {2 * frame_ms}, got {limit_ms}")
    pieces, start = [], segment.start
    while segment.end - start > limit_ms:
        first, last = (start + limit_ms // 2) // frame_ms, (start + limit_ms) // frame_ms
        window = np.zeros(0) if speech_scores is None else speech_scores[first:last]
        cut = (first + int(np.argmin(window))) * frame_ms if len(window) else start + limit_ms
        pieces.append(Segment(start, cut))
        start = cut
    return [*pieces, Segment(start, segment.end)]


def merge_close(segments: list[Segment], longest_ms: int, gap_ms: int) -> list[Segment]:
    """Neighbours joined while the gap is short and the chunk stays within longest_ms."""
    merged: list[Segment] = []
    for seg in segments:
        last = merged[-1] if merged else None
        if last and seg.start - last.end <= gap_ms and seg.end - last.start <= longest_ms:
            merged[-1] = Segment(last.start, seg.end)
        else:
            merged.append(seg)
    return merged


def pad(segments: list[Segment], pad_ms: int, duration_ms: int) -> list[Segment]:
    """Each chunk widened by pad_ms, stopping halfway to a neighbour and at the file's ends."""
    padded = []
    for i, seg in enumerate(segments):
        low = 0 if i == 0 else (segments[i - 1].end + seg.start) // 2
        high = duration_ms if i == len(segments) - 1 else (seg.end + segments[i + 1].start) // 2
        padded.append(Segment(max(low, seg.start - pad_ms), min(high, seg.end + pad_ms)))
    return padded
