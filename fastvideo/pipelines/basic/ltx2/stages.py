"""The LTX-2 stages: joint video + audio latents through the engine's stage protocol.

What LTX-2 adds to the Wan-shaped stages: two latent streams denoised together (video tokens
``[B, S, 128]``, audio tokens ``[B, S_a, 8 * 16]``), one text context per stream (Gemma 3 -> connectors),
guidance combined in x0 space (text CFG per stream, modality isolation, CFG rescale), and a decode that
gives a waveform next to the frames (``batch.extra["audio"]`` ``[channels, samples]`` float32 in [-1, 1],
``batch.extra["audio_sample_rate"]``).  The math follows Diffusers' ``LTX2Pipeline`` /
``LTX2ImageToVideoPipeline`` (0.42.1).
"""

from __future__ import annotations

import contextlib
import time

import torch

from fastvideo.errors import GenerationCancelled
from fastvideo.pipelines.basic.ltx2.schedule import LTX2Schedule
from fastvideo.pipelines.forward_batch import ForwardBatch
from fastvideo.pipelines.stages.base import PipelineStage, check, check_tensor
from fastvideo.pipelines.stages.image_latent_preparation import image_to_tensor


def _offload(offloader, module):
    return offloader.use(module) if offloader is not None else contextlib.nullcontext()


def _param(module: torch.nn.Module) -> torch.Tensor:
    return next(module.parameters())


# ----------------------------------------------------------------------------- packing


def pack_video(latents: torch.Tensor) -> torch.Tensor:
    """``[B, C, F, H, W]`` -> tokens ``[B, F*H*W, C]`` (patch size 1)."""
    return latents.flatten(2).transpose(1, 2)


def unpack_video(tokens: torch.Tensor, frames: int, height: int, width: int) -> torch.Tensor:
    return tokens.transpose(1, 2).unflatten(2, (frames, height, width))


def pack_audio(latents: torch.Tensor) -> torch.Tensor:
    """``[B, C, L, M]`` -> ``[B, L, C*M]``."""
    return latents.transpose(1, 2).flatten(2, 3)


def unpack_audio(tokens: torch.Tensor, mel_bins: int) -> torch.Tensor:
    return tokens.unflatten(2, (-1, mel_bins)).transpose(1, 2)


def rescale_cfg(guided: torch.Tensor, cond: torch.Tensor, factor: float) -> torch.Tensor:
    """Match the guided prediction's std to the conditional one's, blended by ``factor`` (CFG rescale)."""
    dims = list(range(1, cond.ndim))
    rescaled = guided * (cond.std(dim=dims, keepdim=True) / guided.std(dim=dims, keepdim=True))
    return factor * rescaled + (1 - factor) * guided


def guidance_scales(sp) -> tuple[float, float, float, float, float, float]:
    """(video CFG, audio CFG, video modality, audio modality, video rescale, audio rescale); an audio value
    that is None (or 0) takes the video one, as the reference's ``audio_x or x``."""
    g, m, r = sp.guidance_scale, sp.modality_scale, sp.guidance_rescale
    return (g, sp.audio_guidance_scale or g, m, sp.audio_modality_scale or m, r, sp.audio_guidance_rescale or r)


def uses_cfg(sp) -> bool:
    g, ga = guidance_scales(sp)[:2]
    return g > 1.0 or ga > 1.0


# ----------------------------------------------------------------------------- text


class LTX2TextEncodingStage(PipelineStage):
    """Prompt (and negative prompt under CFG) -> Gemma 3 hidden states of every layer -> connectors -> the video
    and audio contexts.  ``batch.prompt_embeds`` holds the video context ``[B, L, C]``; ``batch.extra`` the audio
    context and the mask, each ``[negative; positive]`` under CFG (the order the reference batches them)."""

    name = "text_encoding"

    def __init__(self, tokenizer, text_encoder, connectors, max_length: int, device, offload=None):
        self.tokenizer, self.text_encoder, self.connectors = tokenizer, text_encoder, connectors
        self.max_length, self.device, self.offload = max_length, device, offload

    def forward(self, batch: ForwardBatch) -> ForwardBatch:
        from fastvideo.models.encoders.gemma3 import encode_prompts

        batch.do_cfg = uses_cfg(batch.sampling)
        prompts = [batch.prompt]
        if batch.do_cfg:
            prompts = [batch.negative_prompt or "", batch.prompt]
        with _offload(self.offload, self.text_encoder), torch.inference_mode():
            hidden, mask = encode_prompts(self.tokenizer, self.text_encoder, prompts, self.max_length)
        with _offload(self.offload, self.connectors), torch.inference_mode():
            p = _param(self.connectors)
            video, audio, keep = self.connectors(hidden.to(device=p.device, dtype=p.dtype), mask.to(p.device),
                                                 padding_side=self.tokenizer.padding_side)
        batch.prompt_embeds = video.to(self.device)
        batch.extra["audio_prompt_embeds"] = audio.to(self.device)
        batch.extra["prompt_mask"] = keep.to(self.device)
        return batch

    def verify_output(self, batch: ForwardBatch) -> None:
        check_tensor(batch.prompt_embeds, self.name, "prompt_embeds", ndim=3)
        check_tensor(batch.extra["audio_prompt_embeds"], self.name, "audio_prompt_embeds", ndim=3)


# ----------------------------------------------------------------------------- latents


class LTX2LatentPreparationStage(PipelineStage):
    """Noise for both streams from one CPU generator seeded with the request's seed (video first, then audio,
    as the reference draws them); I2V also encodes the first frame and keeps it clean."""

    name = "latent_preparation"

    def __init__(self, transformer, vae, audio_vae, device, image_crf: int = 0, offload=None):
        self.transformer, self.vae, self.audio_vae = transformer, vae, audio_vae
        self.device, self.image_crf, self.offload = device, image_crf, offload

    def forward(self, batch: ForwardBatch) -> ForwardBatch:
        sp = batch.sampling
        vcfg, acfg = self.vae.config, self.audio_vae.config
        frames = (sp.num_frames - 1) // vcfg.temporal_compression_ratio + 1
        h, w = sp.height // vcfg.spatial_compression_ratio, sp.width // vcfg.spatial_compression_ratio
        channels = self.transformer.config.in_channels
        generator = torch.Generator("cpu").manual_seed(sp.seed)
        mask = None
        if batch.task == "i2v":
            image = _compress_image(batch.image, self.image_crf)
            pixels = image_to_tensor(image, sp.height, sp.width)
            with _offload(self.offload, self.vae), torch.inference_mode():
                p = _param(self.vae)
                clean = self.vae.encode(pixels[:, :, None].to(device=p.device, dtype=p.dtype))
                clean = self.vae.normalize(clean.float()).cpu()
            cond = torch.zeros(1, 1, frames, h, w)
            cond[:, :, 0] = 1.0
            noise = torch.randn((1, channels, frames, h, w), generator=generator)
            latents = clean.repeat(1, 1, frames, 1, 1) * cond + noise * (1 - cond)
            mask = pack_video(cond).squeeze(-1)  # [1, S]: 1 on the clean first-frame tokens
        else:
            latents = torch.randn((1, channels, frames, h, w), generator=generator)
        seconds = sp.num_frames / sp.fps
        per_second = acfg.sample_rate / acfg.mel_hop_length / float(acfg.temporal_compression_ratio)
        audio_frames = round(seconds * per_second)
        mel = acfg.mel_bins // acfg.mel_compression_ratio
        audio = torch.randn((1, acfg.latent_channels, audio_frames, mel), generator=generator)
        batch.latents = pack_video(latents).to(self.device)
        batch.extra.update(audio_latents=pack_audio(audio).to(self.device), latent_grid=(frames, h, w),
                           audio_frames=audio_frames, latent_mel_bins=mel,
                           condition_mask=None if mask is None else mask.to(self.device))
        return batch

    def verify_output(self, batch: ForwardBatch) -> None:
        check_tensor(batch.latents, self.name, "latents", ndim=3)
        check_tensor(batch.extra["audio_latents"], self.name, "audio_latents", ndim=3)


def _compress_image(image, crf: int):
    """The first frame re-encoded as one H.264 frame at ``crf`` (what the model saw in training); 0: as is."""
    if not crf:
        return image
    import numpy as np
    from PIL import Image

    from fastvideo.utils.media import h264_roundtrip

    return Image.fromarray(h264_roundtrip(np.asarray(image.convert("RGB")), crf))


# ----------------------------------------------------------------------------- timesteps


class LTX2TimestepStage(PipelineStage):
    name = "timestep_preparation"

    def __init__(self, scheduler_config: dict, device):
        self.scheduler_config = scheduler_config
        self.device = device

    def forward(self, batch: ForwardBatch) -> ForwardBatch:
        sp = batch.sampling
        f, h, w = batch.extra["latent_grid"]
        steps = len(sp.sigmas) if sp.sigmas else sp.num_inference_steps
        schedule = LTX2Schedule(self.scheduler_config).set_sigmas(steps, f * h * w, sp.sigmas, self.device)
        batch.extra["scheduler"] = schedule
        batch.timesteps, batch.sigmas = schedule.timesteps, schedule.sigmas
        return batch

    def verify_input(self, batch: ForwardBatch) -> None:
        check("latent_grid" in batch.extra, self.name, "latents must be prepared first")

    def verify_output(self, batch: ForwardBatch) -> None:
        check_tensor(batch.timesteps, self.name, "timesteps", ndim=1)


# ----------------------------------------------------------------------------- denoising


class LTX2DenoisingStage(PipelineStage):
    """The joint loop.  Per step: one DiT pass over [uncond; cond] (text CFG), one with the audio<->video
    attention off when modality guidance is on; each stream's x0 = x - sigma * v; guided
    ``x0_c + (g - 1)(x0_c - x0_u) + (m - 1)(x0_c - x0_iso)``, rescaled, back to a velocity, one Euler step.
    I2V: the first latent frame's tokens are clean (timestep 0) and never stepped."""

    name = "denoising"

    def __init__(self, transformer, dtype: torch.dtype, offload=None, previewer=None):
        self.transformer, self.dtype, self.offload, self.previewer = transformer, dtype, offload, previewer

    def verify_input(self, batch: ForwardBatch) -> None:
        check_tensor(batch.latents, self.name, "latents", ndim=3)
        check("scheduler" in batch.extra, self.name, "timesteps must be prepared first")

    def forward(self, batch: ForwardBatch) -> ForwardBatch:
        sp = batch.sampling
        g, ga, m, ma, r, ra = guidance_scales(sp)
        do_cfg = g > 1.0 or ga > 1.0
        do_mod = m > 1.0 or ma > 1.0
        check(do_cfg == batch.do_cfg, self.name, "the text stage and the guidance scales disagree about CFG")
        schedule: LTX2Schedule = batch.extra["scheduler"]
        dit = self.transformer
        f, h, w = batch.extra["latent_grid"]
        mask = batch.extra.get("condition_mask")
        x, a = batch.latents, batch.extra["audio_latents"]
        ctx, actx, keep = batch.prompt_embeds, batch.extra["audio_prompt_embeds"], batch.extra["prompt_mask"]
        fps = sp.fps / sp.motion_speed
        vc, ac = dit.coords(1, f, h, w, batch.extra["audio_frames"], fps, x.device)
        total = len(schedule.timesteps)
        start = time.perf_counter()
        with _offload(self.offload, dit), torch.inference_mode():
            for i, t in enumerate(schedule.timesteps):
                if batch.cancelled:
                    raise GenerationCancelled(f"cancelled before step {i + 1} of {total}")
                sigma = schedule.sigmas[i]
                n = 2 if do_cfg else 1
                tt = t.expand(n)
                vt = tt[:, None] * (1 - mask) if mask is not None else tt
                pv, pa = dit(torch.cat([x] * n).to(self.dtype), torch.cat([a] * n).to(self.dtype), ctx, actx,
                             vt, tt if mask is not None else None, sigma=tt, encoder_attention_mask=keep,
                             audio_encoder_attention_mask=keep, video_coords=vc.repeat(n, 1, 1, 1),
                             audio_coords=ac.repeat(n, 1, 1, 1), fps=fps, use_cross_timestep=True)
                x0 = x - pv.float() * sigma
                a0 = a - pa.float() * sigma
                if do_cfg:
                    (x0_u, x0), (a0_u, a0) = x0.chunk(2), a0.chunk(2)
                    dx, da = (g - 1) * (x0 - x0_u), (ga - 1) * (a0 - a0_u)
                else:
                    dx = da = 0
                if do_mod:
                    t1 = tt[:1]
                    vt1 = vt[:1]
                    iv, ia = dit(x.to(self.dtype), a.to(self.dtype), ctx[-1:], actx[-1:], vt1,
                                 t1 if mask is not None else None, sigma=t1, encoder_attention_mask=keep[-1:],
                                 audio_encoder_attention_mask=keep[-1:], video_coords=vc, audio_coords=ac, fps=fps,
                                 isolate_modalities=True, use_cross_timestep=True)
                    dx = dx + (m - 1) * (x0 - (x - iv.float() * sigma))
                    da = da + (ma - 1) * (a0 - (a - ia.float() * sigma))
                x0g, a0g = x0 + dx, a0 + da
                x0g = rescale_cfg(x0g, x0, r) if r > 0 else x0g
                a0g = rescale_cfg(a0g, a0, ra) if ra > 0 else a0g
                v = (x - x0g) / sigma
                va = (a - a0g) / sigma
                if mask is not None:  # I2V: only the noisy frames step
                    grid_v, grid_x = unpack_video(v, f, h, w), unpack_video(x, f, h, w)
                    stepped = schedule.step(grid_v[:, :, 1:], i, grid_x[:, :, 1:])
                    x = pack_video(torch.cat([grid_x[:, :, :1], stepped], dim=2))
                else:
                    x = schedule.step(v, i, x)
                a = schedule.step(va, i, a)
                elapsed = time.perf_counter() - start
                batch.emit({"type": "progress", "step": i + 1, "total": total, "elapsed": elapsed,
                            "remaining": elapsed / (i + 1) * (total - i - 1)})
                if self.previewer is not None and sp.preview and batch.callback is not None:
                    frames = self.previewer(unpack_video(x0g, f, h, w))
                    batch.emit({"type": "preview", "step": i + 1, "total": total, "frames": frames})
        batch.latents = x
        batch.extra["audio_latents"] = a
        return batch

    def verify_output(self, batch: ForwardBatch) -> None:
        check_tensor(batch.latents, self.name, "latents", ndim=3)
        check_tensor(batch.extra["audio_latents"], self.name, "audio_latents", ndim=3)


# ----------------------------------------------------------------------------- decoding


class LTX2DecodingStage(PipelineStage):
    """Video tokens -> frames (denormalise, VAE decode); audio tokens -> denormalise -> mel (audio VAE) ->
    waveform (vocoder)."""

    name = "decoding"

    def __init__(self, vae, audio_vae, vocoder, offload=None):
        self.vae, self.audio_vae, self.vocoder, self.offload = vae, audio_vae, vocoder, offload

    def forward(self, batch: ForwardBatch) -> ForwardBatch:
        f, h, w = batch.extra["latent_grid"]
        with _offload(self.offload, self.vae), torch.inference_mode():
            p = _param(self.vae)
            z = unpack_video(batch.latents, f, h, w).to(device=p.device, dtype=p.dtype)
            video = self.vae.decode(self.vae.denormalize(z))
        with _offload(self.offload, self.audio_vae), torch.inference_mode():
            p = _param(self.audio_vae)
            tokens = batch.extra["audio_latents"].to(device=p.device, dtype=p.dtype)
            tokens = tokens * self.audio_vae.latents_std.to(tokens) + self.audio_vae.latents_mean.to(tokens)
            mel_spec = self.audio_vae.decode(unpack_audio(tokens, batch.extra["latent_mel_bins"]))
        with _offload(self.offload, self.vocoder), torch.inference_mode():
            p = _param(self.vocoder)
            wave = self.vocoder(mel_spec.to(device=p.device, dtype=p.dtype))
        frames = (video[0].float() / 2 + 0.5).clamp(0, 1).permute(1, 2, 3, 0).cpu()  # [T, H, W, 3]
        batch.video_out = frames
        batch.frames = (frames * 255).round().to(torch.uint8).numpy()
        batch.extra["audio"] = wave[0].float().cpu().numpy()
        batch.extra["audio_sample_rate"] = int(self.vocoder.config.output_sampling_rate)
        return batch

    def verify_output(self, batch: ForwardBatch) -> None:
        sp = batch.sampling
        check_tensor(batch.video_out, self.name, "video", shape=(sp.num_frames, sp.height, sp.width, 3))
