"""The three Wan2.1 pipelines as stage lists (same modules, different stages).

Wan2.2 (``basic/wan22``) reuses them: the stages read the model's latent geometry and its experts from
the loaded modules, so only what differs is overridden there (the expert schedule, TI2V's conditioning).
"""

from __future__ import annotations

from fastvideo.configs.pipelines.base import torch_dtype
from fastvideo.pipelines.composed import ComposedPipeline
from fastvideo.pipelines.preview import LatentPreviewer
from fastvideo.pipelines.stages.decoding import DecodingStage
from fastvideo.pipelines.stages.denoising import CFGPredictor, DenoisingStage, Expert, ExpertSchedule
from fastvideo.pipelines.stages.image_encoding import ImageEncodingStage
from fastvideo.pipelines.stages.image_latent_preparation import ImageLatentPreparationStage
from fastvideo.pipelines.stages.input_validation import InputValidationStage
from fastvideo.pipelines.stages.latent_preparation import LatentPreparationStage
from fastvideo.pipelines.stages.text_encoding import TextEncodingStage
from fastvideo.pipelines.stages.timestep_preparation import TimestepPreparationStage
from fastvideo.pipelines.stages.video_latent_preparation import VideoLatentPreparationStage


class WanT2VPipeline(ComposedPipeline):
    task = "t2v"

    def dit_dtype(self):
        return torch_dtype(self.config.dit_precision)

    def text_stage(self):
        m, cfg = self.loaded, self.config
        return TextEncodingStage(m["tokenizer"], m["text_encoder"], cfg.text_len, m.device, self.dit_dtype(),
                                 m.offload_for("text_encoder_cpu_offload"))

    def timestep_stage(self):
        return TimestepPreparationStage(self.loaded["scheduler"], self.config.flow_shift, self.loaded.device)

    def validation_stage(self):
        return InputValidationStage(self.loaded.geometry, len(self.loaded.experts))

    def latent_stage(self):
        return LatentPreparationStage(self.loaded.geometry, self.loaded.device)

    def boundary_ratio(self) -> float | None:
        """Where the experts switch (a fraction of the training timesteps); one expert: None."""
        return None

    def denoising_stage(self):
        m, cfg = self.loaded, self.config
        previewer = None
        if cfg.preview_factors and len(cfg.preview_factors) == m.geometry.latent_channels:
            previewer = LatentPreviewer(cfg.preview_factors, cfg.preview_bias or [0.0, 0.0, 0.0])
        experts = [Expert(name, CFGPredictor(module, self.dit_dtype(), cfg.batch_cfg)) for name, module in m.experts]
        num_train = int(m["scheduler"].get("num_train_timesteps", 1000))
        schedule = ExpertSchedule(experts, self.boundary_ratio(), num_train)
        return DenoisingStage(schedule, previewer, m.offload_for("dit_cpu_offload"))

    def decoding_stage(self):
        return DecodingStage(self.loaded["vae"], self.loaded.offload_for("vae_cpu_offload"))

    def create_stages(self):
        return [self.validation_stage(), self.text_stage(), self.timestep_stage(), self.latent_stage(),
                self.denoising_stage(), self.decoding_stage()]


class WanI2VPipeline(WanT2VPipeline):
    task = "i2v"

    #: how the image conditions the DiT (ImageLatentPreparationStage): extra input channels
    condition_mode = "concat"

    def image_latent_stage(self):
        m = self.loaded
        return ImageLatentPreparationStage(m["vae"], m.geometry, m.device, m.offload_for("vae_cpu_offload"),
                                           self.condition_mode)

    def create_stages(self):
        m = self.loaded
        stages = [self.validation_stage(), self.text_stage()]
        _, first = m.experts[0]
        if m.get("image_encoder") is not None and first.arch_config.image_dim:
            stages.append(ImageEncodingStage(m["image_processor"], m["image_encoder"], m.device, self.dit_dtype(),
                                             m.offload_for("image_encoder_cpu_offload")))
        stages += [self.timestep_stage(), self.latent_stage(), self.image_latent_stage(),
                   self.denoising_stage(), self.decoding_stage()]
        return stages


class WanV2VPipeline(WanT2VPipeline):
    task = "v2v"

    def create_stages(self):
        m = self.loaded
        return [self.validation_stage(), self.text_stage(), self.timestep_stage(), self.latent_stage(),
                VideoLatentPreparationStage(m["vae"], m.device, m.offload_for("vae_cpu_offload")),
                self.denoising_stage(), self.decoding_stage()]
