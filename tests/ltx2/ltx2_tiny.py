"""A tiny Diffusers LTX2Pipeline (random weights, real layout) and our modules built from it, for the tests."""

from __future__ import annotations

import types

import torch
from ltx2_helpers import ours_from, perturbed

from fastvideo.configs.models.audio.ltx2_vocoder import LTX2VocoderConfig
from fastvideo.configs.models.dits.ltx2 import LTX2VideoConfig
from fastvideo.configs.models.encoders.gemma3 import Gemma3TextEncoderConfig
from fastvideo.configs.models.encoders.ltx2_connectors import LTX2TextConnectorsConfig
from fastvideo.configs.models.vaes.ltx2_audio import LTX2AudioVAEConfig
from fastvideo.configs.models.vaes.ltx2_video import LTX2VideoVAEConfig
from fastvideo.configs.pipelines.ltx2 import LTX2_SCHEDULER_CONFIG

DIT = dict(in_channels=8, out_channels=8, num_attention_heads=2, attention_head_dim=8, cross_attention_dim=16,
           vae_scale_factors=(8, 16, 16), audio_in_channels=8, audio_out_channels=8, audio_num_attention_heads=2,
           audio_attention_head_dim=4, audio_cross_attention_dim=8, num_layers=2, caption_channels=16)
CONNECTORS = dict(caption_channels=16, text_proj_in_factor=3, video_connector_num_attention_heads=2,
                  video_connector_attention_head_dim=8, video_connector_num_layers=1,
                  video_connector_num_learnable_registers=4, audio_connector_num_attention_heads=2,
                  audio_connector_attention_head_dim=8, audio_connector_num_layers=1,
                  audio_connector_num_learnable_registers=4)
VAE = dict(latent_channels=8, block_out_channels=(8, 16, 32, 32), decoder_block_out_channels=(8, 16, 32),
           layers_per_block=(1, 1, 1, 1, 1), decoder_layers_per_block=(1, 1, 1, 1), patch_size=2, decoder_causal=False,
           spatial_compression_ratio=16, temporal_compression_ratio=8)
AUDIO_VAE = dict(base_channels=8, ch_mult=(1, 2, 4), num_res_blocks=1, latent_channels=2, mel_bins=16, resolution=16)
VOCODER = dict(in_channels=2 * 16, hidden_channels=16, out_channels=2, upsample_kernel_sizes=[4, 4],
               upsample_factors=[2, 2], resnet_kernel_sizes=[3, 5], resnet_dilations=[[1, 3], [1, 2]],
               output_sampling_rate=24000)
GEMMA_TEXT = dict(vocab_size=700, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                  num_key_value_heads=1, head_dim=8, max_position_embeddings=128, sliding_window=4)
GEMMA_VISION = dict(hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2, image_size=8,
                    patch_size=4)
TEXT_LEN = 16


def diffusers_pipeline(tokenizer_dir, seed: int = 0, image_to_video: bool = False):
    import diffusers
    from diffusers.pipelines.ltx2.connectors import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder
    from transformers import AutoTokenizer, Gemma3Config, Gemma3ForConditionalGeneration

    torch.manual_seed(seed)
    text_encoder = Gemma3ForConditionalGeneration(Gemma3Config(text_config=GEMMA_TEXT, vision_config=GEMMA_VISION,
                                                               mm_tokens_per_image=4)).eval()
    vae = perturbed(diffusers.AutoencoderKLLTX2Video(**VAE), seed + 1)
    audio_vae = perturbed(diffusers.AutoencoderKLLTX2Audio(**AUDIO_VAE), seed + 2)
    with torch.no_grad():
        for m in (vae, audio_vae):
            m.latents_mean.normal_(0, 0.3)
            m.latents_std.uniform_(0.5, 1.5)
    scheduler_cfg = {k: v for k, v in LTX2_SCHEDULER_CONFIG.items() if not k.startswith("_")}
    cls = diffusers.LTX2ImageToVideoPipeline if image_to_video else diffusers.LTX2Pipeline
    return cls(
        scheduler=diffusers.FlowMatchEulerDiscreteScheduler(**scheduler_cfg),
        vae=vae, audio_vae=audio_vae, text_encoder=text_encoder,
        tokenizer=AutoTokenizer.from_pretrained(tokenizer_dir),
        connectors=perturbed(LTX2TextConnectors(**CONNECTORS), seed + 3),
        transformer=perturbed(diffusers.LTX2VideoTransformer3DModel(**DIT), seed + 4),
        vocoder=perturbed(LTX2Vocoder(**VOCODER), seed + 5),
    )


def our_modules(pipe) -> dict:
    from fastvideo.models.audio.ltx2_vocoder import LTX2Vocoder
    from fastvideo.models.dits.ltx2 import LTX2VideoTransformer3DModel
    from fastvideo.models.encoders.gemma3 import Gemma3TextEncoder
    from fastvideo.models.encoders.ltx2_connectors import LTX2TextConnectors
    from fastvideo.models.vaes.ltx2_audio import AutoencoderKLLTX2Audio
    from fastvideo.models.vaes.ltx2_video import AutoencoderKLLTX2Video

    te = pipe.text_encoder
    return {
        "transformer": ours_from(pipe.transformer, LTX2VideoConfig, LTX2VideoTransformer3DModel),
        "vae": ours_from(pipe.vae, LTX2VideoVAEConfig, AutoencoderKLLTX2Video),
        "audio_vae": ours_from(pipe.audio_vae, LTX2AudioVAEConfig, AutoencoderKLLTX2Audio),
        "vocoder": ours_from(pipe.vocoder, LTX2VocoderConfig, LTX2Vocoder),
        "connectors": ours_from(pipe.connectors, LTX2TextConnectorsConfig, LTX2TextConnectors),
        "text_encoder": ours_from(types.SimpleNamespace(config=te.config.to_dict()), Gemma3TextEncoderConfig,
                                  Gemma3TextEncoder, state_dict=te.state_dict(), strict=False),
        "tokenizer": pipe.tokenizer,
        "scheduler": dict(LTX2_SCHEDULER_CONFIG),
    }
