"""Names as a terminal, a log or a page shows them: one printable line, whatever a name holds.

A file name may hold any byte but "/" and NUL: newlines (which would forge a line of a log or of
`segmenter status`), other control characters, bidirectional overrides (which reorder what a
reader sees), and bytes that are not UTF-8 (which Python carries as surrogate escapes, and which
a UTF-8 stream refuses to print). `shown` escapes those and leaves every other character alone.
"""

from __future__ import annotations

import unicodedata

ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
HIDDEN = frozenset(("Cc", "Cs", "Zl", "Zp"))  # controls, surrogates, line/paragraph separators
BIDI = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F))


def shown(text: str) -> str:
    """`text` with newlines, control characters, bidi controls and undecodable bytes escaped
    (`\\n`, `\\x1b`, `\\u202e`; a byte that is not UTF-8 as `\\xff`): one printable line."""
    if text.isprintable():
        return text
    return "".join(_escaped(ch) for ch in text)


def _escaped(ch: str) -> str:
    if ch in ESCAPES:
        return ESCAPES[ch]
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's escape of a byte that is not UTF-8
        return f"\\x{code - 0xDC00:02x}"
    if ch in BIDI or unicodedata.category(ch) in HIDDEN:
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return ch
