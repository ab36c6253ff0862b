import json

import pytest

from fastvideo import PipelineConfig, SamplingParam
from fastvideo.configs.pipelines.wan import WanT2V480PConfig, WanT2V720PConfig
from fastvideo.configs.registry import resolve_model
from fastvideo.configs.sample.wan import WAN_NEGATIVE_PROMPT
from fastvideo.errors import ModelNotFoundError


def _folder(tmp_path, index, make_dirs=True):
    (tmp_path / "model_index.json").write_text(json.dumps(index))
    if make_dirs:
        for k, _v in index.items():
            if not k.startswith("_"):
                (tmp_path / k).mkdir(exist_ok=True)
    return tmp_path


WAN_INDEX = {
    "_class_name": "WanPipeline", "_diffusers_version": "0.42.1",
    "scheduler": ["diffusers", "UniPCMultistepScheduler"], "text_encoder": ["transformers", "UMT5EncoderModel"],
    "tokenizer": ["transformers", "T5TokenizerFast"], "transformer": ["diffusers", "WanTransformer3DModel"],
    "vae": ["diffusers", "AutoencoderKLWan"],
}


def test_pipeline_config_json_round_trip_and_validation():
    cfg = WanT2V720PConfig(vae_tiling=True, dit_precision="fp32")
    back = WanT2V720PConfig.from_json(cfg.to_json())
    assert back == cfg and back.flow_shift == 5.0
    with pytest.raises(ValueError, match="dit_precision"):
        PipelineConfig(dit_precision="fp8")
    with pytest.raises(TypeError, match="unknown pipeline option"):
        cfg.update(no_such=1)
    assert cfg.update(text_encoder_cpu_offload=True).text_encoder_cpu_offload


def test_sampling_param_from_pretrained_gives_family_defaults(tmp_path):
    folder = _folder(tmp_path, WAN_INDEX)
    sp = SamplingParam.from_pretrained(str(folder))
    assert (sp.num_frames, sp.height, sp.width, sp.fps, sp.num_inference_steps) == (81, 480, 832, 16, 50)
    assert sp.negative_prompt == WAN_NEGATIVE_PROMPT and sp.flow_shift is None
    sp.update(num_frames=45)
    with pytest.raises(TypeError, match="no field 'frames'"):
        sp.update(frames=3)
    assert SamplingParam.from_dict(sp.to_dict()) == SamplingParam(**sp.to_dict())


def test_registry_resolves_tasks_and_known_ids(tmp_path):
    info = resolve_model(str(_folder(tmp_path, WAN_INDEX)))
    assert info.family == "wan" and info.task == "t2v" and "v2v" in info.tasks
    assert info.pipeline_config_cls is WanT2V480PConfig
    named = tmp_path / "Wan2.1-T2V-14B-Diffusers"
    named.mkdir()
    info = resolve_model(str(_folder(named, WAN_INDEX)))
    assert info.pipeline_config_cls is WanT2V720PConfig
    i2v = dict(WAN_INDEX, _class_name="WanImageToVideoPipeline", image_encoder=["transformers",
               "CLIPVisionModelWithProjection"], image_processor=["transformers", "CLIPImageProcessor"])
    (tmp_path / "i2v").mkdir()
    assert resolve_model(str(_folder(tmp_path / "i2v", i2v))).task == "i2v"


def test_unknown_class_name_names_what_is_known(tmp_path):
    folder = _folder(tmp_path, dict(WAN_INDEX, _class_name="MysteryPipeline"))
    with pytest.raises(ModelNotFoundError, match="MysteryPipeline.*WanImageToVideoPipeline.*WanPipeline"):
        resolve_model(str(folder))


def test_unknown_component_class(tmp_path):
    folder = _folder(tmp_path, dict(WAN_INDEX, vae=["diffusers", "AutoencoderKLMystery"]))
    with pytest.raises(ModelNotFoundError, match="AutoencoderKLMystery"):
        resolve_model(str(folder)).component_class("vae")


def test_model_index_pointing_at_missing_folder(tmp_path):
    folder = _folder(tmp_path, WAN_INDEX, make_dirs=False)
    with pytest.raises(ModelNotFoundError, match=r"lists component '.*' but folder .* is missing"):
        resolve_model(str(folder))


def test_unknown_path_and_official_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTVIDEO_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelNotFoundError, match="Known repos"):
        resolve_model(str(tmp_path / "nothing"))
    with pytest.raises(ModelNotFoundError, match="not downloaded; run: fastvideo download"):
        resolve_model("Wan-AI/Wan2.1-T2V-1.3B-Diffusers")
    official = tmp_path / "official"
    official.mkdir()
    (official / "config.json").write_text(json.dumps({"_class_name": "WanModel"}))
    with pytest.raises(ModelNotFoundError, match="fastvideo convert"):
        resolve_model(str(official))


def test_models_folder_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTVIDEO_MODELS_DIR", str(tmp_path))
    target = tmp_path / "converted_weights" / "my-model"
    target.mkdir(parents=True)
    _folder(target, WAN_INDEX)
    assert resolve_model("my-model").path == target
