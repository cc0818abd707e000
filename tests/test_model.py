"""Model folders: bundled default, strict loading, local folders, ModelScope ids offline."""

import shutil

import pytest
import torch

from segmenter.engines.model import ModelError, bundled_model_dir, resolve_model
from segmenter.vad import Vad


def test_bundled_model_is_the_published_checkpoint():
    files = resolve_model()
    assert files.sha256 == "b3be75be477f0780277f3bae0fe489f48718f585f3a6e45d7dd1fbb1a4255fc5"
    assert files.name == "iic/speech_fsmn_vad_zh-cn-16k-common-pytorch"
    assert (bundled_model_dir() / "LICENSE").is_file()


def test_local_folder_loads_and_extra_weights_are_refused(tmp_path):
    shutil.copytree(bundled_model_dir(), tmp_path / "m")
    assert Vad.load(tmp_path / "m", precision="fp32").model_info["precision"] == "fp32"
    state = torch.load(tmp_path / "m" / "model.pt", weights_only=True)
    state["encoder.extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "m" / "model.pt")
    with pytest.raises(RuntimeError, match="Unexpected key"):
        Vad.load(tmp_path / "m", runtime="torch")


def test_folder_missing_files_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="lacks model.pt"):
        resolve_model(tmp_path)


@pytest.mark.slow
def test_modelscope_id_offline_names_the_id(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError) as err:
        resolve_model("nobody-here/no-such-vad-model")
    message = str(err.value)
    assert "nobody-here/no-such-vad-model" in message and "\n" not in message


def test_int8_is_the_default_and_quantizes_linear_layers(vad_int8):
    assert vad_int8.model_info["precision"] == "int8"
    assert "DynamicQuantizedLinear" in repr(vad_int8.encoder) or "quantized" in repr(
        type(vad_int8.encoder.in_linear1.linear)
    )


def test_quantized_engine_follows_the_platform(monkeypatch):
    """ARM boxes need qnnpack ("NoQEngine" otherwise); with no engine, FP32 and a warning."""
    from segmenter.engines import fsmn_network as network

    assert network.pick_engine("aarch64", ["qnnpack", "none"]) == "qnnpack"
    assert network.pick_engine("aarch64", ["x86", "fbgemm", "none"]) is None
    assert network.pick_engine("x86_64", ["qnnpack", "x86", "fbgemm"]) == "x86"
    assert network.pick_engine("x86_64", ["fbgemm", "none"]) == "fbgemm"
    monkeypatch.setattr(network, "pick_engine", lambda machine, supported: None)
    encoder = network.load_encoder(
        str(bundled_model_dir() / "model.pt"), resolve_model().config["encoder_conf"]
    )
    with pytest.warns(UserWarning, match="no quantized engine"):
        model, precision = network.quantize_int8(encoder)
    assert precision == "fp32" and model is encoder
