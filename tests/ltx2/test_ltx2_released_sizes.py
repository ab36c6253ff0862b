"""Every key at the released LTX-2.0 sizes: Diffusers' modules and ours, both built on the meta device from
the arch configs' defaults (no memory), map one to one through param_names_mapping with equal shapes."""

from __future__ import annotations

import pytest
import torch
from ltx2_helpers import diffusers_or_skip

from fastvideo.mapping.rules import TensorInfo, build_report, compile_rules
from fastvideo.models.loader.weights import empty_init, target_infos


def _reference(name: str):
    diffusers = diffusers_or_skip()
    from diffusers.pipelines.ltx2.connectors import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

    classes = {"transformer": diffusers.LTX2VideoTransformer3DModel, "vae": diffusers.AutoencoderKLLTX2Video,
               "audio_vae": diffusers.AutoencoderKLLTX2Audio, "vocoder": LTX2Vocoder,
               "connectors": LTX2TextConnectors}
    with torch.device("meta"):
        return classes[name]()


@pytest.mark.parametrize("name", ["transformer", "vae", "audio_vae", "vocoder", "connectors"])
def test_released_sizes_map_key_for_key(name):
    from fastvideo.configs.families.ltx2 import LTX2_COMPONENT_CLASSES
    from fastvideo.conversion.ltx2 import COMPONENTS
    from fastvideo.models.loader.component_loader import build_empty

    ref = _reference(name)
    cc = LTX2_COMPONENT_CLASSES[COMPONENTS[name][0]]
    from fastvideo.configs.registry import import_string

    cfg = import_string(cc.arch_config)()  # the defaults are the released model
    assert {k: v for k, v in dict(ref.config).items() if not k.startswith("_")}.keys() <= set(cfg.to_dict())
    with empty_init():
        ours = build_empty(cc, cfg)
    sources = {k: TensorInfo(tuple(v.shape), "F32") for k, v in ref.state_dict().items()}
    report = build_report(sources, target_infos(ours), compile_rules(cfg.param_names_mapping), name)
    assert report.ok, report.summary()
    n = sum(1 for r in report.rows if r.status == "mapped")
    assert n == len(sources) and n > 10


def test_converter_writes_the_released_vae_geometry():
    """A real (non-tiny) conversion writes the released VAE config: 32x space, 8x time, non-causal decoder (what
    Diffusers' conversion script writes), and the family geometry reads it back so."""
    from fastvideo.configs.models.vaes.ltx2_video import LTX2VideoVAEConfig
    from fastvideo.conversion.ltx2 import RELEASED_OVERRIDES

    cfg = LTX2VideoVAEConfig.from_dict(dict(RELEASED_OVERRIDES["vae"]))
    assert (cfg.spatial_compression_ratio, cfg.temporal_compression_ratio, cfg.decoder_causal) == (32, 8, False)
