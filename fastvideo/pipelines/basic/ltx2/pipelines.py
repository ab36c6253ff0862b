"""The LTX-2 pipelines as stage lists: text-to-video-with-audio and image-to-video-with-audio."""

from __future__ import annotations

from fastvideo.configs.pipelines.base import torch_dtype
from fastvideo.pipelines.basic.ltx2.stages import (
    LTX2DecodingStage,
    LTX2DenoisingStage,
    LTX2LatentPreparationStage,
    LTX2TextEncodingStage,
    LTX2TimestepStage,
)
from fastvideo.pipelines.composed import ComposedPipeline
from fastvideo.pipelines.preview import LatentPreviewer
from fastvideo.pipelines.stages.input_validation import InputValidationStage


class LTX2T2VPipeline(ComposedPipeline):
    task = "t2v"

    def create_stages(self):
        m, cfg = self.loaded, self.config
        if (cfg.sp_size or 1) > 1:
            raise ValueError(f"LTX-2 does not run sequence-parallel yet (sp_size={cfg.sp_size}): its audio stream and "
                             "the audio<->video attention are not sharded; use sp_size=1 (one GPU per generation)")
        dtype = torch_dtype(cfg.dit_precision)
        previewer = None
        channels = m["transformer"].config.in_channels
        if cfg.preview_factors and len(cfg.preview_factors) == channels:
            previewer = LatentPreviewer(cfg.preview_factors, cfg.preview_bias or [0.0, 0.0, 0.0])
        vae_offload = m.offload_for("vae_cpu_offload")
        return [
            InputValidationStage(m.geometry),
            LTX2TextEncodingStage(m["tokenizer"], m["text_encoder"], m["connectors"], cfg.text_len, m.device,
                                  m.offload_for("text_encoder_cpu_offload")),
            LTX2LatentPreparationStage(m["transformer"], m["vae"], m["audio_vae"], m.device,
                                       cfg.image_crf, vae_offload),
            LTX2TimestepStage(m["scheduler"], m.device),
            LTX2DenoisingStage(m["transformer"], dtype, m.offload_for("dit_cpu_offload"), previewer),
            LTX2DecodingStage(m["vae"], m["audio_vae"], m["vocoder"], vae_offload),
        ]


class LTX2I2VPipeline(LTX2T2VPipeline):
    task = "i2v"
