"""Why a recording failed, as the summary, `segmenter status`, the report and the log say it:
without the input's path (the recording's name stands beside the reason), and in plain words
where ffmpeg's own wording says little to someone who has not read ffmpeg's source.

The manifest keeps the reason as it was raised; only what is shown is rewritten.
"""

from __future__ import annotations

import os
import re

# ffmpeg's last line (which AudioError quotes) -> what it means for the recording
FFMPEG_WORDING = (
    (
        # ffmpeg 5.1 sets its filters up from the first decoded frame, or at the end from the
        # stream's header when none decoded: that fails when the header names no channels
        re.compile(r"Error (configuring filter graph|reinitializing filters)"),
        "no audio in it could be decoded: ffmpeg found an audio stream but not one frame of it"
        " decoded",
    ),
    (re.compile(r"partial file|moov atom not found"), "it is cut short (an unfinished copy?)"),
    (
        re.compile(r"Invalid data found when processing input"),
        "its audio data is damaged or is not audio",
    ),
)


def plain_reason(error: str | None, rel: str, path: str | None = None) -> str:
    """`error` without the leading input path (`path`, or any path ending in the recording's
    own name) and with ffmpeg's wording put plainly where this module knows what it means."""
    reason = error or ""
    for prefix in filter(None, (path, path and os.path.abspath(path))):
        reason = reason.removeprefix(f"{prefix}: ")
    name = re.escape(os.path.basename(rel))
    reason = re.sub(rf"^(/[^\n]*/)?{name}: ", "", reason, count=1)
    if "ffmpeg" not in reason:
        return reason
    for wording, meaning in FFMPEG_WORDING:
        if found := wording.search(reason):
            return f"{meaning} (ffmpeg: {found.group(0)})"
    return reason
