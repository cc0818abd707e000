"""A run whose result-changing settings differ from those the batch's files were done with.

Such a run would redo, and overwrite, every file done with the other settings (the manifest
keeps a hash of them per file). Before any row or output is written it says so in one line:
how many files it would redo, and which settings changed (against the settings the manifest
recorded for the batch's most common other hash; a manifest from before they were recorded
cannot say which). It goes on only if the user said so: `--redo-changed` (job key
`redo_changed = true`), `--force` (redo everything), or a yes to the question it asks at a
terminal. Otherwise (cron, systemd, a script, a no) it stops, writes nothing, and the command
exits with code 7 (cli.EXIT_SETTINGS_CHANGED, the exit-code table's one source).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..engines import DEFAULT_ENGINE
from ..errors import EXIT_SETTINGS_CHANGED, SegmenterError
from ..profiles import DEFAULT_PROFILE
from .manifest import Manifest
from .notes import note

log = logging.getLogger("segmenter.batch.changed")

SHOWN = 4  # settings named in the line, then "and N more"

# asks the user whether to go on, given the line; None where nobody can answer (not a terminal)
Confirm = Callable[[str], bool]


class SettingsChanged(SegmenterError):
    """The run stopped before writing anything: its settings differ from the batch's."""

    exit_code = EXIT_SETTINGS_CHANGED


def check_settings(
    manifest: Manifest,
    config: str,
    settings: dict[str, Any],
    consent: str,
    confirm: Confirm | None,
) -> None:
    """Go on, or raise SettingsChanged, when this run would redo files done with other
    settings; record this run's settings once it goes on. `consent` names the flag that
    already said yes ("" for none)."""
    others = manifest.other_configs(config)
    if others:
        line = describe(manifest, others, settings)
        log.warning("%s", line)
        if consent:
            note(f"{line}: redoing them ({consent})")
        elif confirm is None:
            raise SettingsChanged(f"{line}; nothing done: {HOW}")
        elif not confirm(line):
            raise SettingsChanged(f"nothing done: {HOW}")
        log.info("redoing them with the new settings (%s)", consent or "confirmed at a terminal")
    with manifest.transaction():
        manifest.record_config(config, settings)


HOW = (
    "run again with --redo-changed (job key redo_changed = true) to redo them with these"
    " settings, or with the batch's settings to go on with it"
)


def describe(manifest: Manifest, others: list[tuple[str, int]], settings: dict[str, Any]) -> str:
    """The line: how many files would be redone, and which settings changed."""
    count = sum(n for _, n in others)
    before = manifest.config_settings(others[0][0])
    if before is None:
        what = "which settings changed is not recorded: the batch predates the record"
    else:
        what = ", ".join(changes(before, settings)) or "the same settings, another version"
    return (
        f"settings differ from the batch's: {count} file(s) done with other settings would be"
        f" redone ({what})"
    )


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """'name: old -> new' for each setting that differs, by its command-line/job-file name;
    when the engine or profile changed, the profile's own settings are not listed."""
    (old, old_options), (new, new_options) = named(before), named(after)
    switched = any(old.get(k) != new.get(k) for k in ("engine", "profile"))
    keys = [k for k in new | old if old.get(k) != new.get(k)]
    if switched:
        keys = [k for k in keys if k not in old_options | new_options]
    shown = [f"{k}: {old.get(k, '-')} -> {new.get(k, '-')}" for k in keys[:SHOWN]]
    if len(keys) > SHOWN:
        shown.append(f"and {len(keys) - SHOWN} more")
    return shown


def named(config: dict[str, Any]) -> tuple[dict[str, str], set[str]]:
    """A batch's result config (BatchSettings.result_config) as option names and plain values,
    and which of the names are the profile's own settings."""
    engine = config.get("engine") or [DEFAULT_ENGINE, None]
    profile = config.get("profile", DEFAULT_PROFILE)
    out = {"engine": engine[0], "profile": profile}
    if engine[1]:
        out["silero-vad version"] = engine[1]
    out["model"] = str(config.get("model", ""))[:12]
    for key in ("precision", "runtime", "channel"):
        out[key] = config.get(key)
    clips = config.get("clips")
    out["clips"] = f"pad {clips[0]} ms, rate {clips[1] or 'source'}" if clips else "off"
    out["formats"] = ",".join(config.get("formats") or [])
    out.update(config.get("chunking") or {})  # ChunkOptions' fields are the options' names
    prefix = "precise_" if profile == "precise" else ""
    options = set()
    for key, value in (config.get("options") or {}).items():
        name = key if key == "max_single_segment_time" else prefix + key
        options.add(name)
        out[name] = value
    return {k: _plain(v) for k, v in out.items()}, options


def _plain(value: Any) -> str:
    """A value as a user writes it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)
