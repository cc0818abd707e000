"""Per-recording outputs, each written atomically and durably: three rooms.

- `durable`: staging beside the target, fsync/syncfs, rename; the temporary names; disk full.
- `formats`: the one registry of output formats (name -> suffixes and renderer), the output
  names of a recording (`output_names`), rendering and writing them.
- `clips`: a WAV per segment, cut in one pass with a bounded few files open.

The names below are the ones the rest of the package imports from `segmenter.writers`.
"""

from .clips import CLIP_NAME, clip_name, find_clip, holds_only_clips, write_clips
from .durable import (
    FULL_BELOW,
    SYNCFS_FROM,
    TMP_FILE,
    TMP_FOLDER,
    TMP_PREFIX,
    UMASK,
    WriteError,
    naming,
    nearly_full,
    sync_paths,
    tmp_folder_prefix,
    write_durably,
    write_text,
)
from .formats import (
    CLIPS_SUFFIX,
    FORMATS,
    REGISTRY,
    Format,
    clips_folder,
    document_json,
    name_too_long,
    output_base,
    output_names,
    output_suffixes,
    render_formats,
    rttm_lines,
    write_formats,
)

__all__ = [
    "CLIPS_SUFFIX",
    "CLIP_NAME",
    "FORMATS",
    "FULL_BELOW",
    "REGISTRY",
    "SYNCFS_FROM",
    "TMP_FILE",
    "TMP_FOLDER",
    "TMP_PREFIX",
    "UMASK",
    "Format",
    "WriteError",
    "clip_name",
    "clips_folder",
    "document_json",
    "find_clip",
    "holds_only_clips",
    "name_too_long",
    "naming",
    "nearly_full",
    "output_base",
    "output_names",
    "output_suffixes",
    "render_formats",
    "rttm_lines",
    "sync_paths",
    "tmp_folder_prefix",
    "write_clips",
    "write_durably",
    "write_formats",
    "write_text",
]
