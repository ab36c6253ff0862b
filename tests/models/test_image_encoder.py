"""CLIP vision wrapper: penultimate hidden states as Diffusers' Wan I2V pipeline computes them."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

from fastvideo.configs.models.encoders.clip import CLIPVisionArchConfig
from fastvideo.models.encoders.clip import CLIPVisionEncoder, encode_image

# Shape of an image_encoder/config.json (values shrunk).
HF_CONFIG = {
    "_name_or_path": "laion/CLIP-ViT-H-14",
    "architectures": ["CLIPVisionModelWithProjection"],
    "attention_dropout": 0.0,
    "dropout": 0.0,
    "hidden_act": "gelu",
    "hidden_size": 32,
    "image_size": 32,
    "initializer_factor": 1.0,
    "initializer_range": 0.02,
    "intermediate_size": 64,
    "layer_norm_eps": 1e-05,
    "model_type": "clip_vision_model",
    "num_attention_heads": 4,
    "num_channels": 3,
    "num_hidden_layers": 3,
    "patch_size": 8,
    "projection_dim": 16,
    "torch_dtype": "float32",
    "transformers_version": "4.41.2",
}


@pytest.fixture(scope="module")
def encoder():
    cfg = CLIPVisionArchConfig.from_dict(HF_CONFIG)
    torch.manual_seed(0)
    return CLIPVisionEncoder.from_arch_config(cfg)


@pytest.fixture(scope="module")
def processor():
    return CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})


def images():
    rng = np.random.default_rng(0)
    first = Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8))
    last = Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8))
    return [first, last]


def test_config_and_model(encoder):
    cfg = CLIPVisionArchConfig.from_dict(HF_CONFIG)
    assert cfg.hidden_size == 32 and cfg.extra["dropout"] == 0.0
    assert isinstance(encoder, CLIPVisionModelWithProjection) and not encoder.training
    plain = CLIPVisionModelWithProjection(encoder.config)
    assert list(plain.state_dict()) == list(encoder.state_dict())
    assert CLIPVisionArchConfig.checkpoint_class_names == ("CLIPVisionModelWithProjection",)
    defaults = CLIPVisionArchConfig()  # ViT-H/14 as in Wan2.1 I2V
    assert (defaults.hidden_size, defaults.num_hidden_layers, defaults.patch_size) == (1280, 32, 14)


def test_encode_image_matches_diffusers_i2v(encoder, processor):
    from diffusers.pipelines.wan.pipeline_wan_i2v import WanImageToVideoPipeline

    ours = encode_image(processor, encoder, images(), device="cpu")
    fake_pipe = types.SimpleNamespace(image_processor=processor, image_encoder=encoder)
    with torch.no_grad():
        ref = WanImageToVideoPipeline.encode_image(fake_pipe, images(), torch.device("cpu"))
    # 1 class token + (32 / 8) ** 2 patches
    assert ours.shape == ref.shape == (2, 17, 32)
    assert (ours - ref).abs().max().item() <= 1e-5

    # Independently: the penultimate layer output, i.e. the input of the last encoder layer.
    pixels = processor(images=images(), return_tensors="pt").pixel_values
    captured = {}

    def grab_input(module, args, kwargs):
        captured["h"] = args[0] if args else kwargs["hidden_states"]

    handle = encoder.vision_model.encoder.layers[-1].register_forward_pre_hook(grab_input, with_kwargs=True)
    try:
        with torch.no_grad():
            encoder(pixel_values=pixels)
    finally:
        handle.remove()
    assert (ours - captured["h"]).abs().max().item() <= 1e-5


def test_encode_image_from_pixel_values_and_dtype(encoder, processor):
    pixels = processor(images=images(), return_tensors="pt").pixel_values
    a = encode_image(None, encoder, pixels)
    b = encode_image(processor, encoder, images())
    assert torch.equal(a, b)
    c = encode_image(processor, encoder, images()[0], dtype=torch.bfloat16)
    assert c.shape == (1, 17, 32) and c.dtype == torch.bfloat16
