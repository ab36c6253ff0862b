"""Parity cases of the LTX-2 family: each component vs Diffusers' (0.42.1) on the same folder's weights.

``run_parity`` looks a family's cases up as ``fastvideo.parity.family_<family>.CASES`` (Wan's are the
runner's defaults).  Inputs are small and made from the seed; the Diffusers classes are imported only here,
lazily, and only through :func:`fastvideo.parity.reference_diffusers.require_diffusers` first.

* transformer: video tokens of a 2x3x4 latent grid, 5 audio frames, 8 text tokens per stream, a timestep
  -> video_velocity, audio_velocity;
* vae: video [1, 3, t+1, 2s, 2s] -> encode.mean; latents [1, C, 2, 2, 2] -> decode;
* audio_vae: stereo mel [1, 2, 17, mel_bins] -> encode.mean; latents [1, C, 4, mel_bins/4] -> decode;
* vocoder: mel [1, 2, 6, in_channels/2] -> waveform;
* connectors: stacked Gemma states of two left-padded prompts -> video_context, audio_context, mask;
* text_encoder: two prompts, our ``encode_prompts`` vs ``LTX2Pipeline._get_gemma_prompt_embeds`` -> prompt_embeds;
* scheduler: 10 steps of a fixed fake model over 2x3x4 video tokens (mu from the token count) -> timesteps,
  trajectory.
"""

from __future__ import annotations

import copy
import importlib
import types
from pathlib import Path

import torch

from fastvideo.parity.runner import PROMPTS, SCHEDULER_STEPS, _Case, _generator

TEXT_LEN = 16


def _diffusers():
    from fastvideo.parity.reference_diffusers import require_diffusers

    return require_diffusers()


def _from_pretrained(cls, folder: Path, dtype: torch.dtype):
    return cls.from_pretrained(str(folder), dtype=dtype).eval()


class _Transformer(_Case):
    def load(self, ref_lib):
        self.ours = self.load_ours_module()
        self.ref = _from_pretrained(_diffusers().LTX2VideoTransformer3DModel, self.folder, self.dtype)
        c = self.ours.config
        g = _generator(self.seed)
        f, h, w, fa, text = 2, 3, 4, 5, 8
        self.inputs = dict(
            hidden_states=torch.randn(1, f * h * w, c.in_channels, generator=g).to(self.dtype),
            audio_hidden_states=torch.randn(1, fa, c.audio_in_channels, generator=g).to(self.dtype),
            encoder_hidden_states=torch.randn(1, text, c.caption_channels, generator=g).to(self.dtype),
            audio_encoder_hidden_states=torch.randn(1, text, c.caption_channels, generator=g).to(self.dtype),
            timestep=torch.rand(1, generator=g) * 1000.0, num_frames=f, height=h, width=w, audio_num_frames=fa,
            fps=24.0)

    @torch.no_grad()
    def run_ours(self):
        v, a = self.ours(**self.inputs, sigma=self.inputs["timestep"], use_cross_timestep=True)
        return {"video_velocity": v, "audio_velocity": a}

    @torch.no_grad()
    def run_ref(self, ref_lib):
        v, a = self.ref(**self.inputs, sigma=self.inputs["timestep"], use_cross_timestep=True, return_dict=False)
        return {"video_velocity": v, "audio_velocity": a}


class _VideoVAE(_Case):
    def load(self, ref_lib):
        self.ours = self.load_ours_module()
        self.ref = _from_pretrained(_diffusers().AutoencoderKLLTX2Video, self.folder, self.dtype)
        c = self.ours.config
        s, t = c.spatial_compression_ratio, c.temporal_compression_ratio
        g = _generator(self.seed)
        self.inputs = {"video": (torch.rand(1, 3, t + 1, 2 * s, 2 * s, generator=g) * 2 - 1).to(self.dtype),
                       "latents": torch.randn(1, c.latent_channels, 2, 2, 2, generator=g).to(self.dtype)}

    @torch.no_grad()
    def run_ours(self):
        return {"encode.mean": self.ours.encode(self.inputs["video"]), "decode": self.ours.decode(self.inputs["latents"])}

    @torch.no_grad()
    def run_ref(self, ref_lib):
        return {"encode.mean": self.ref.encode(self.inputs["video"]).latent_dist.mean,
                "decode": self.ref.decode(self.inputs["latents"]).sample}


class _AudioVAE(_VideoVAE):
    def load(self, ref_lib):
        self.ours = self.load_ours_module()
        self.ref = _from_pretrained(_diffusers().AutoencoderKLLTX2Audio, self.folder, self.dtype)
        c = self.ours.config
        g = _generator(self.seed)
        self.inputs = {"video": torch.randn(1, c.in_channels, 17, c.mel_bins, generator=g).to(self.dtype),
                       "latents": torch.randn(1, c.latent_channels, 4, c.mel_bins // c.mel_compression_ratio,
                                              generator=g).to(self.dtype)}


class _Vocoder(_Case):
    def load(self, ref_lib):
        _diffusers()
        LTX2Vocoder = importlib.import_module("diffusers.pipelines.ltx2.vocoder").LTX2Vocoder

        self.ours = self.load_ours_module()
        self.ref = _from_pretrained(LTX2Vocoder, self.folder, self.dtype)
        c = self.ours.config
        channels = 2 if c.in_channels % 2 == 0 else 1
        self.inputs = {"mel": torch.randn(1, channels, 6, c.in_channels // channels,
                                          generator=_generator(self.seed)).to(self.dtype)}

    @torch.no_grad()
    def run_ours(self):
        return {"waveform": self.ours(self.inputs["mel"])}

    @torch.no_grad()
    def run_ref(self, ref_lib):
        return {"waveform": self.ref(self.inputs["mel"])}


class _Connectors(_Case):
    def load(self, ref_lib):
        _diffusers()
        LTX2TextConnectors = importlib.import_module("diffusers.pipelines.ltx2.connectors").LTX2TextConnectors

        self.ours = self.load_ours_module()
        self.ref = _from_pretrained(LTX2TextConnectors, self.folder, self.dtype)
        c = self.ours.config
        regs = c.video_connector_num_learnable_registers or 4
        seq = 2 * regs
        g = _generator(self.seed)
        self.hidden = (torch.randn(2, seq, c.caption_channels * c.text_proj_in_factor, generator=g) * 3).to(self.dtype)
        self.mask = torch.ones(2, seq, dtype=torch.int64)
        self.mask[0, : seq // 2 + 1] = 0  # left padding
        self.mask[1, :1] = 0

    @torch.no_grad()
    def run_ours(self):
        v, a, m = self.ours(self.hidden, self.mask, padding_side="left")
        return {"video_context": v, "audio_context": a, "mask": m.float()}

    @torch.no_grad()
    def run_ref(self, ref_lib):
        v, a, m = self.ref(self.hidden, self.mask, padding_side="left")
        return {"video_context": v, "audio_context": a, "mask": m.float()}


class _TextEncoder(_Case):
    def load(self, ref_lib):
        from transformers import AutoTokenizer, Gemma3ForConditionalGeneration

        from fastvideo.hub.names import check_component_folder

        _diffusers()
        self.ours = self.load_ours_module()
        self.ref = Gemma3ForConditionalGeneration.from_pretrained(str(self.folder), dtype=self.dtype,
                                                                  trust_remote_code=False,
                                                                  local_files_only=True).eval()
        tok_dir = self.folder.parent / "tokenizer"
        check_component_folder(tok_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(str(tok_dir), trust_remote_code=False, local_files_only=True)

    def run_ours(self):
        from fastvideo.models.encoders.gemma3 import encode_prompts

        embeds, _ = encode_prompts(self.tokenizer, self.ours, PROMPTS, max_length=TEXT_LEN, device="cpu",
                                   dtype=self.dtype)
        return {"prompt_embeds": embeds}

    @torch.no_grad()
    def run_ref(self, ref_lib):
        LTX2Pipeline = _diffusers().LTX2Pipeline

        pipe = types.SimpleNamespace(tokenizer=self.tokenizer, text_encoder=self.ref)
        embeds, _ = LTX2Pipeline._get_gemma_prompt_embeds(pipe, PROMPTS, max_sequence_length=TEXT_LEN,
                                                          device=torch.device("cpu"), dtype=self.dtype)
        return {"prompt_embeds": embeds}


class _Scheduler(_Case):
    """Our LTX-2 sigma schedule and Euler step vs Diffusers' FlowMatchEulerDiscreteScheduler (sigmas + mu)."""

    tokens = 2 * 3 * 4

    def load(self, ref_lib):
        import json

        from fastvideo.pipelines.basic.ltx2.schedule import LTX2Schedule, calculate_shift

        config = json.loads((self.folder / "scheduler_config.json").read_text())
        self.ours = LTX2Schedule(config)
        cls = _diffusers().FlowMatchEulerDiscreteScheduler
        self.ref = cls.from_config({k: v for k, v in config.items() if not k.startswith("_")})
        c = self.ref.config
        self.mu = calculate_shift(self.tokens, c.get("base_image_seq_len", 1024), c.get("max_image_seq_len", 4096),
                                  c.get("base_shift", 0.95), c.get("max_shift", 2.05))
        g = _generator(self.seed)
        self.sample = torch.randn(1, self.tokens, 8, generator=g)
        self.direction = torch.randn(1, self.tokens, 8, generator=g)

    def fake_model(self, x, t):
        return 0.5 * x + float(t) / 1000.0 * self.direction - 0.25 * torch.tanh(x)

    def run_ours(self):
        s = copy.deepcopy(self.ours).set_sigmas(SCHEDULER_STEPS, self.tokens)
        x, out = self.sample.clone(), []
        for i, t in enumerate(s.timesteps):
            x = s.step(self.fake_model(x, t), i, x)
            out.append(x)
        return {"timesteps": s.timesteps.to(torch.float64), "trajectory": torch.stack(out)}

    def run_ref(self, ref_lib):
        import numpy as np

        s = copy.deepcopy(self.ref)
        s.set_timesteps(sigmas=np.linspace(1.0, 1 / SCHEDULER_STEPS, SCHEDULER_STEPS), mu=self.mu, device="cpu")
        x, out = self.sample.clone(), []
        for t in s.timesteps:
            x = s.step(self.fake_model(x, t), t, x, return_dict=False)[0]
            out.append(x)
        return {"timesteps": s.timesteps.to(torch.float64), "trajectory": torch.stack(out)}


CASES = {"transformer": _Transformer, "vae": _VideoVAE, "audio_vae": _AudioVAE, "vocoder": _Vocoder,
         "connectors": _Connectors, "text_encoder": _TextEncoder, "scheduler": _Scheduler}
