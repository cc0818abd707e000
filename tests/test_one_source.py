"""Each decision setting is written once: its options field (help and rule in the metadata); the
command line's option, the job file's key and the library's check are derived (issue 27)."""

import argparse
import dataclasses
import re

import pytest

from segmenter import settings
from segmenter.cli import build_parser
from segmenter.profiles import PROFILES, FunasrOptions, PreciseOptions, VadOptions
from segmenter.rules import Flag, Number, SettingError, field_rules


def _options(command: str) -> dict[str, argparse.Action]:
    """The options of a command, by their long flag."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    actions = sub.choices[command]._actions
    return {s: a for a in actions for s in a.option_strings if s.startswith("--")}


def _setting_fields() -> list[tuple[str, dataclasses.Field, str]]:
    """(the setting's name on the command line and in job files, its field, the profile) for
    every field with a rule; the longest segment is one setting under FunASR's name."""
    out = []
    for f in dataclasses.fields(FunasrOptions):
        if "rule" in f.metadata:
            out.append((f.name, f, "funasr"))
    for f in dataclasses.fields(PreciseOptions):
        if "rule" in f.metadata and f.name != "max_single_segment_time":
            out.append((f"precise_{f.name}", f, "precise"))
    return out


@pytest.mark.parametrize("command", ["segment", "run", "serve"])
def test_every_setting_field_has_one_flag_one_key_one_rule_one_help(command):
    options = _options(command)
    fields = _setting_fields()
    assert len(fields) == len(settings.DECISION_KEYS) + len(settings.PRECISE_KEYS) == 31
    for name, f, profile in fields:
        rule, text = f.metadata["rule"], f.metadata["help"]
        flag = "--" + name.replace("_", "-")
        matching = [s for s in options if s == flag]
        assert len(matching) == 1, (command, name)
        action = options[flag]
        assert text in action.help, (name, action.help)  # the field's help, once written
        assert settings.JOB_RULES[name] is rule, name  # the job file's key checks by it
        if isinstance(rule, Number):
            assert settings.NUMBERS[name] is rule, name
            assert action.type.__name__ == name  # parse_as(name): parses by that rule
            low = rule.low if rule.low is not None else 0
            assert action.type(str(int(low) if rule.whole else low)) == low
            if rule.high is not None:
                too_high = str(int(rule.high) + 1)
                with pytest.raises(argparse.ArgumentTypeError, match=re.escape(rule.describe())):
                    action.type(too_high)
        else:
            assert isinstance(rule, Flag)
            assert isinstance(action, argparse.BooleanOptionalAction)
        assert profile in PROFILES


def test_no_decision_flag_or_key_without_a_field():
    """The other way round: every funasr or precise option of the command line is a field."""
    names = {name for name, _, _ in _setting_fields()}
    funasr = set(field_rules(FunasrOptions))
    for flag in _options("run"):
        key = flag[2:].replace("-", "_")
        if key.startswith("precise_"):
            assert key in names, flag
    assert set(settings.DECISION_KEYS) == funasr
    assert set(settings.PRECISE_KEYS) == {n for n in names if n.startswith("precise_")}
    assert {k for k in settings.JOB_RULES if k.startswith("precise_")} == set(settings.PRECISE_KEYS)


def test_profile_names_come_from_the_profiles():
    assert tuple(PROFILES) == settings.PROFILE_NAMES
    assert VadOptions is FunasrOptions  # the old name stays


def test_the_library_checks_by_the_same_rule():
    rule = field_rules(PreciseOptions)["pad_ms"]
    with pytest.raises(SettingError, match=re.escape(rule.describe())):
        PreciseOptions().with_overrides(pad_ms=int(rule.high) + 1)
    rule = field_rules(FunasrOptions)["window_size_ms"]
    with pytest.raises(SettingError, match=re.escape(rule.describe())):
        FunasrOptions().with_overrides(window_size_ms=int(rule.high) + 1)
