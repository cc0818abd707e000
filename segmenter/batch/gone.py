"""Recordings of a batch whose inputs are no longer there (moved, renamed or deleted).

A run judges only the recordings whose input path (as the manifest recorded it) lies under
the inputs it is given, a file given as an input being its own root: a run of one of a batch's
several folders leaves the other folders' recordings as they are. Of those, a recording the
walk did not find and whose input path no longer exists is `gone`. Its outputs stay where
they are and its row stays in the manifest, counted apart from the totals (its hours are no
longer in the done hours, so a renamed file is not counted twice); the run says how many there
are, `segmenter status` lists them, and only a run given `--prune` removes their outputs and
rows. A file that is still there but no longer taken (a new `--exclude`, a hidden name) is not
gone; a gone recording found again unchanged is done again without being redone.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from ..names import shown
from ..writers import holds_only_clips, output_base, tmp_folder_prefix
from .manifest import Manifest

log = logging.getLogger("segmenter.batch.gone")


def find_gone(manifest: Manifest, inputs: list[str]) -> list[str]:
    """The names (under OUT) of the recordings under `inputs` that are gone, marked so in the
    manifest; the ones an earlier run found gone are among them. Needs this run's walk in the
    manifest (`Manifest.plan`)."""
    roots = [os.path.abspath(item) for item in inputs]
    gone = [rel for rel, path in manifest.unfound() if _under(path, roots) and _missing(path)]
    manifest.mark_gone(gone)
    for rel in gone:
        log.warning(
            "%s: gone: its input is no longer there (moved or deleted); its outputs stay,"
            " counted apart, until a run with --prune",
            rel,
        )
    return gone


def _under(path: str, roots: list[str]) -> bool:
    """Whether `path` is one of the roots or lies below one of them."""
    path = os.path.abspath(path)
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def _missing(path: str) -> bool:
    """Whether nothing is at `path` any more (a folder that cannot be read is no proof)."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return False


def prune(out: Path, manifest: Manifest, gone: list[str]) -> int:
    """Remove the outputs and then the rows of the `gone` recordings; the outputs removed.

    A recording's outputs are those its row lists (files, and its clips folder), each checked
    to lie inside OUT and to be what the row says it is (a file; a folder holding only clips),
    so that another recording's outputs in the way (the outputs of an input folder named
    `x.wav.clips` or `x.wav.json`) are never removed; a folder left empty is removed too.
    Outputs go before the row, so a run killed in between leaves a gone row that the next
    `--prune` finishes.
    """
    removed = 0
    for rel in gone:
        (row,) = manifest.files(rel)
        for name in row.outputs:
            removed += _remove(out, name)
        with manifest.transaction():
            manifest.forget(rel)
        log.warning("%s: pruned: its outputs and manifest row are removed", rel)
    return removed


def _remove(out: Path, name: str) -> int:
    """Remove one output (a file, or a clips folder named with a trailing "/"), if it is still
    there, inside OUT, and what its name says; 1 if it was removed."""
    try:
        path = output_base(out, name.rstrip("/"))
    except ValueError:  # a name that would leave OUT ("..", absolute)
        log.warning("%s: not removed: not a name inside %s", shown(repr(name)), out)
        return 0
    inside = os.path.realpath(out).rstrip(os.sep) + os.sep
    if not os.path.realpath(path).startswith(inside):
        log.warning("%s: not removed: it lies outside %s", path, out)
        return 0
    folder = path.is_dir() and not path.is_symlink()
    if folder != name.endswith("/") or (folder and not holds_only_clips(path)):
        if path.exists() or path.is_symlink():
            log.warning("%s: not removed: it holds or is another recording's outputs", path)
        return 0
    try:
        if folder:
            doomed = Path(tempfile.mkdtemp(prefix=tmp_folder_prefix(), dir=path.parent))
            os.replace(path, doomed / path.name)  # one rename: a reader sees all of it or none
            shutil.rmtree(doomed)
        else:
            path.unlink()
    except FileNotFoundError:
        return 0
    _remove_empty_folders(out, path.parent)
    return 1


def _remove_empty_folders(out: Path, folder: Path) -> None:
    """Remove `folder` and its parents while they are empty, up to OUT (kept)."""
    while folder != out and out in folder.parents:
        try:
            folder.rmdir()
        except OSError:  # not empty (or not ours to remove): stop there
            return
        folder = folder.parent
