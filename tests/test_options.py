"""Decision options: config defaults, per-call overrides, FunASR's fixed-threshold rule."""

import pytest

from segmenter.profiles.funasr_options import VadOptions


def test_from_config_reads_model_conf_and_ignores_unused_keys():
    options = VadOptions.from_config(
        {"max_end_silence_time": 500, "sil_pdf_ids": [0], "snr_mode": 0}
    )
    assert options.max_end_silence_time == 500 and options.sil_pdf_ids == (0,)


def test_fixed_end_silence_turns_schedule_off():
    assert VadOptions().with_overrides(max_end_silence_time=300).dynamic_silence is False
    assert VadOptions().with_overrides(speech_noise_thres=0.7).dynamic_silence is False
    kept = VadOptions().with_overrides(max_end_silence_time=300, dynamic_silence=True)
    assert kept.dynamic_silence is True
    assert VadOptions().with_overrides(max_single_segment_time=5000).dynamic_silence is True


def test_unknown_option_is_an_error():
    with pytest.raises(TypeError, match="max_silence"):
        VadOptions().with_overrides(max_silence=3)


def test_to_dict_is_json_ready():
    data = VadOptions().to_dict()
    assert data["silence_schedule"][-1] == [None, 100] and data["sil_pdf_ids"] == [0]


def test_every_setting_can_be_overridden_per_call(vad_fp32):
    from .conftest import GOLDEN

    path = GOLDEN / "dev00_clean.flac"
    default = vad_fp32.segments(path)
    assert len(vad_fp32.segments(path, max_end_silence_time=3000)) < len(default)
    assert len(vad_fp32.segments(path, max_single_segment_time=5000)) > len(default)
    assert vad_fp32.segments(path, lookback_time_start_point=0)[0].start > default[0].start
    assert vad_fp32.segments(path) == default  # overrides do not stick
