"""DenoisingStage: the sampling loop with classifier-free guidance.

Each step: the DiT predicts the flow velocity for the conditional (and, with
CFG, the unconditional) context; guidance combines them as
``uncond + g * (cond - uncond)``; the scheduler steps.  After every step the
caller gets a progress event and, when previews are on, small RGB frames of the
current x0 estimate (``x0 = x_t - sigma * v``).  Cancellation is checked at each
step boundary.
"""

from __future__ import annotations

import contextlib
import time

import torch

from fastvideo.distributed import parallel_state as ps
from fastvideo.distributed.communication import all_gather_cat, any_rank
from fastvideo.errors import GenerationCancelled
from fastvideo.pipelines.forward_batch import ForwardBatch
from fastvideo.pipelines.stages.base import PipelineStage, check, check_tensor


class CFGPredictor:
    """Runs the DiT for one step; batches cond and uncond into one forward when allowed.

    Under CFG parallelism (``fastvideo.distributed.parallel_state`` has a CFG group
    of 2 ranks) CFG rank 0 runs the conditional branch and rank 1 the unconditional
    one, each over its own SP group; one all_gather over the CFG group gives every
    rank both predictions, so all ranks hold the same guided prediction.  A request
    without guidance then runs sequence-parallel over the whole world (when the
    heads divide it), so no rank idles.
    """

    def __init__(self, transformer, dtype: torch.dtype, batch_cfg: bool = True):
        self.transformer = transformer
        self.dtype = dtype
        self.batch_cfg = batch_cfg

    def __call__(self, x, t, cond, uncond, image_embeds, guidance_scale: float) -> torch.Tensor:
        x = x.to(self.dtype)
        cfg_world = ps.get_cfg_world_size()
        if uncond is None:
            timestep = t.expand(x.shape[0])
            if cfg_world > 1:
                with ps.use_sp_group(ps.get_full_sp_group() or ps.get_sp_group()):
                    return self.transformer(x, timestep, cond, image_embeds).float()
            return self.transformer(x, timestep, cond, image_embeds).float()
        if cfg_world > 1:
            timestep = t.expand(x.shape[0])
            mine = cond if ps.get_cfg_rank() == 0 else uncond
            pred = self.transformer(x, timestep, mine, image_embeds).float()
            pred_cond, pred_uncond = all_gather_cat(pred[None], ps.get_cfg_group(), dim=0).unbind(0)
        elif self.batch_cfg:
            both = self.transformer(
                torch.cat([x, x]), t.expand(2 * x.shape[0]), torch.cat([cond, uncond]),
                None if image_embeds is None else torch.cat([image_embeds, image_embeds]),
            ).float()
            pred_cond, pred_uncond = both.chunk(2)
        else:
            timestep = t.expand(x.shape[0])
            pred_cond = self.transformer(x, timestep, cond, image_embeds).float()
            pred_uncond = self.transformer(x, timestep, uncond, image_embeds).float()
        return pred_uncond + guidance_scale * (pred_cond - pred_uncond)


class DenoisingStage(PipelineStage):
    name = "denoising"

    def __init__(self, predictor: CFGPredictor, previewer=None, offload=None):
        self.predictor = predictor
        self.previewer = previewer
        self.offload = offload

    def verify_input(self, batch: ForwardBatch) -> None:
        check_tensor(batch.latents, self.name, "latents", ndim=5)
        check_tensor(batch.prompt_embeds, self.name, "prompt_embeds", ndim=3)
        check("scheduler" in batch.extra, self.name, "timesteps must be prepared first")

    def forward(self, batch: ForwardBatch) -> ForwardBatch:
        sp = batch.sampling
        scheduler = batch.extra["scheduler"]
        latents = batch.latents
        total = len(batch.timesteps)
        start = time.perf_counter()
        preview_time = 0.0
        ctx = self.offload.use(self.predictor.transformer) if self.offload else contextlib.nullcontext()
        with ctx, torch.inference_mode():
            for i, t in enumerate(batch.timesteps):
                # Multi-rank: every rank must stop at the same step (or none would finish the
                # next collective), so ranks agree on the flag with one tiny all_reduce.
                if any_rank(batch.cancelled, latents.device):
                    raise GenerationCancelled(f"cancelled before step {i + 1} of {total}")
                x = latents if batch.condition is None else torch.cat([latents, batch.condition], dim=1)
                v = self.predictor(x, t, batch.prompt_embeds, batch.negative_prompt_embeds if batch.do_cfg else None,
                                   batch.image_embeds, sp.guidance_scale)
                sigma = scheduler.sigmas[(scheduler.begin_index or 0) + i]
                if self.previewer is not None and sp.preview and batch.callback is not None:
                    p0 = time.perf_counter()
                    frames = self.previewer.from_flow(latents, v, float(sigma))
                    preview_time += time.perf_counter() - p0
                else:
                    frames = None
                latents = scheduler.step(v, t, latents)
                if latents.device.type == "cuda":
                    torch.cuda.synchronize(latents.device)
                elapsed = time.perf_counter() - start
                batch.emit({"type": "progress", "step": i + 1, "total": total, "elapsed": elapsed,
                            "remaining": elapsed / (i + 1) * (total - i - 1)})
                if frames is not None:
                    batch.emit({"type": "preview", "step": i + 1, "total": total, "frames": frames})
        batch.latents = latents
        batch.extra["preview_time"] = preview_time
        return batch

    def verify_output(self, batch: ForwardBatch) -> None:
        check_tensor(batch.latents, self.name, "latents", ndim=5)
