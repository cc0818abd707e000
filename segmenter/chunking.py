"""ASR-ready chunks from FunASR's segments: split long ones, merge short ones, pad the edges.

Whisper reads 30 s windows. A segment longer than `max_segment_s` is cut at the least
speech-like frame of its allowed range (the network's per-frame speech score says where);
neighbours closer than `max_merge_gap_s` are merged into chunks of at most `merge_for_asr_s`;
`pad_ms` widens each chunk without overlapping a neighbour or leaving the file. The defaults
change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .segments import Segment


@dataclass(frozen=True)
class ChunkOptions:
    max_segment_s: float | None = None
    merge_for_asr_s: float | None = None
    max_merge_gap_s: float = 1.0
    pad_ms: int = 0

    @property
    def active(self) -> bool:
        return bool(self.max_segment_s or self.merge_for_asr_s or self.pad_ms)


def asr_chunks(
    segments: list[Segment],
    speech_scores: np.ndarray | None,
    duration_ms: int,
    options: ChunkOptions,
    frame_ms: int = 10,
) -> list[Segment]:
    """Split, then merge, then pad, as `options` ask."""
    chunks = list(segments)
    if options.max_segment_s:
        limit = int(options.max_segment_s * 1000)
        chunks = [p for s in chunks for p in split_long(s, speech_scores, limit, frame_ms)]
    if options.merge_for_asr_s:
        gap = int(options.max_merge_gap_s * 1000)
        chunks = merge_close(chunks, int(options.merge_for_asr_s * 1000), gap)
    if options.pad_ms:
        chunks = pad(chunks, options.pad_ms, duration_ms)
    return chunks


def split_long(
    segment: Segment, speech_scores: np.ndarray | None, limit_ms: int, frame_ms: int = 10
) -> list[Segment]:
    """Pieces of at most limit_ms, each cut in the second half of its allowed range, where the
    speech score is lowest (or at the limit without scores)."""
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
