"""DenoisingStage: the sampling loop with classifier-free guidance, over one or several experts.

Shape of the loop (``DenoisingStage.forward``)::

    for each step i, timestep t:
        expert = self.experts.at(t)                      # which denoiser runs (ExpertSchedule)
        (the previous expert leaves the device, this one arrives: ``placement``)
        x, timestep = model_input(latents, t, batch)     # the DiT's input and its (per-token) timestep
        v = expert.predictor(x, timestep, ...)           # cond (+ uncond, guided with the expert's scale)
        latents = scheduler.step(v, t, latents)
        progress event (with the expert's name), preview
    latents = finish_latents(latents, batch)             # given latent frames put back

* **Experts** (``ExpertSchedule``): a model states its denoisers high noise first (``ModelInfo.experts``);
  the schedule hands expert ``k`` the timesteps ``t`` with ``boundaries[k] <= t`` (below the previous one).
  Wan2.1 has one expert; Wan2.2 A14B two, switched at ``boundary_ratio * 1000`` (``transformer`` above,
  ``transformer_2`` below).  Expert ``k`` guides with ``guidance_scales(sp)[k]`` (``guidance_scale``,
  then ``guidance_scale_2``, which defaults to ``guidance_scale``).
* **Placement** (the offload hook): ``placement(module)`` is a context manager entered when an expert starts
  its run of steps and left when the next expert takes over (or the loop ends); by default the
  ``Offloader``'s ``use`` when ``dit_cpu_offload`` is on (only the expert in use is on the device), else a
  no-op.  Pass another callable to place experts differently.
* **Conditioning** (``batch.condition`` with ``batch.condition_mode``): ``"concat"`` (Wan I2V: mask and image
  latents added as channels) or ``"replace"`` (Wan2.2 TI2V: the given latent frames replace the noisy ones
  where ``batch.condition_mask`` is 0; those tokens get timestep 0, so the timestep is per token).

After every step the caller gets a progress event and, when previews are on, small RGB frames of the
current x0 estimate (``x0 = x_t - sigma * v``).  Cancellation is checked at each step boundary.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from fastvideo.distributed import parallel_state as ps
from fastvideo.distributed.communication import all_gather_cat, any_rank
from fastvideo.errors import GenerationCancelled
from fastvideo.pipelines.forward_batch import ForwardBatch
from fastvideo.pipelines.stages.base import PipelineStage, check, check_tensor
from fastvideo.pipelines.step_cache import StepCache


def batch_timestep(t: torch.Tensor, n: int) -> torch.Tensor:
    """``t`` (a scalar, or ``[S]`` per token) for a batch of ``n``: ``[n]`` or ``[n, S]`` (an expand: stride 0).
    A one-element ``t`` is a scalar."""
    if t.numel() == 1:
        return t.reshape(()).expand(n)
    return t[None].expand(n, *t.shape)


class CFGPredictor:
    """Runs the DiT for one step; batches cond and uncond into one forward when allowed.

    Under CFG parallelism (``fastvideo.distributed.parallel_state`` has a CFG group
    of 2 ranks) CFG rank 0 runs the conditional branch and rank 1 the unconditional
    one, each over its own SP group; one all_gather over the CFG group gives every
    rank both predictions, so all ranks hold the same guided prediction.  A request
    without guidance then runs sequence-parallel over the whole world (when the
    heads divide it), so no rank idles.

    ``t`` is the step's timestep: a scalar, or ``[S]`` (one per token, see ``batch_timestep``).
    """

    def __init__(self, transformer, dtype: torch.dtype, batch_cfg: bool = True):
        self.transformer = transformer
        self.dtype = dtype
        self.batch_cfg = batch_cfg

    def __call__(self, x, t, cond, uncond, image_embeds, guidance_scale: float) -> torch.Tensor:
        x = x.to(self.dtype)
        cfg_world = ps.get_cfg_world_size()
        if uncond is None:
            timestep = batch_timestep(t, x.shape[0])
            if cfg_world > 1:
                with ps.use_sp_group(ps.get_full_sp_group() or ps.get_sp_group()):
                    return self.transformer(x, timestep, cond, image_embeds).float()
            return self.transformer(x, timestep, cond, image_embeds).float()
        if cfg_world > 1:
            timestep = batch_timestep(t, x.shape[0])
            mine = cond if ps.get_cfg_rank() == 0 else uncond
            pred = self.transformer(x, timestep, mine, image_embeds).float()
            pred_cond, pred_uncond = all_gather_cat(pred[None], ps.get_cfg_group(), dim=0).unbind(0)
        elif self.batch_cfg:
            both = self.transformer(
                torch.cat([x, x]), batch_timestep(t, 2 * x.shape[0]), torch.cat([cond, uncond]),
                None if image_embeds is None else torch.cat([image_embeds, image_embeds]),
            ).float()
            pred_cond, pred_uncond = both.chunk(2)
        else:
            timestep = batch_timestep(t, x.shape[0])
            pred_cond = self.transformer(x, timestep, cond, image_embeds).float()
            pred_uncond = self.transformer(x, timestep, uncond, image_embeds).float()
        return pred_uncond + guidance_scale * (pred_cond - pred_uncond)


@dataclass(frozen=True)
class Expert:
    """One denoiser: its component name (shown in progress events) and the predictor that runs it."""

    name: str
    predictor: CFGPredictor

    @property
    def module(self):
        return self.predictor.transformer


class ExpertSchedule:
    """Which expert denoises which timesteps.

    ``experts`` high noise first; ``boundary_ratio`` (one expert: ignored) puts the switch at
    ``boundary_ratio * num_train_timesteps``: expert 0 for ``t >= boundary``, expert 1 below (Diffusers' and
    the official Wan2.2 rule).  A request may override the ratio (``SamplingParam.boundary_ratio``).
    """

    def __init__(self, experts: Sequence[Expert], boundary_ratio: float | None = None,
                 num_train_timesteps: int = 1000):
        if not experts:
            raise ValueError("a denoising stage needs at least one expert")
        if len(experts) > 2:
            raise ValueError(f"{len(experts)} experts: only one boundary (two experts) is implemented")
        if len(experts) == 2 and boundary_ratio is None:
            raise ValueError("two experts need a boundary_ratio (model_index.json) to switch between them")
        self.experts = tuple(experts)
        self.boundary_ratio = boundary_ratio
        self.num_train_timesteps = num_train_timesteps

    def __len__(self) -> int:
        return len(self.experts)

    def index_at(self, t: torch.Tensor | float, boundary_ratio: float | None = None) -> int:
        if len(self.experts) == 1:
            return 0
        ratio = self.boundary_ratio if boundary_ratio is None else boundary_ratio
        return 0 if float(t) >= ratio * self.num_train_timesteps else 1


def guidance_scales(sp, n: int) -> list[float]:
    """Per expert: ``guidance_scale`` for the first, ``guidance_scale_2`` (default: ``guidance_scale``) after."""
    second = sp.guidance_scale_2 if getattr(sp, "guidance_scale_2", None) is not None else sp.guidance_scale
    return [sp.guidance_scale, *([second] * (n - 1))]


def model_input(latents: torch.Tensor, t: torch.Tensor, batch: ForwardBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """The DiT's input and timestep for this step (see the module docstring: conditioning)."""
    if batch.condition is None:
        return latents, t
    if batch.condition_mode == "concat":
        return torch.cat([latents, batch.condition], dim=1), t
    mask = batch.condition_mask  # [1, 1, T', h, w]: 1 where denoised, 0 where given
    return (1 - mask) * batch.condition + mask * latents, batch.token_mask * t


def finish_latents(latents: torch.Tensor, batch: ForwardBatch) -> torch.Tensor:
    """The final latents: given frames put back (``replace`` conditioning), else unchanged."""
    if batch.condition is not None and batch.condition_mode == "replace":
        return (1 - batch.condition_mask) * batch.condition + batch.condition_mask * latents
    return latents


class DenoisingStage(PipelineStage):
    name = "denoising"

    def __init__(self, experts: ExpertSchedule | CFGPredictor, previewer=None, offload=None,
                 placement: Callable[[torch.nn.Module], contextlib.AbstractContextManager] | None = None):
        if isinstance(experts, CFGPredictor):  # one expert (the call shape before Wan2.2)
            experts = ExpertSchedule([Expert("transformer", experts)])
        self.experts = experts
        self.previewer = previewer
        self.offload = offload
        if placement is None:
            placement = offload.use if offload is not None else (lambda module: contextlib.nullcontext())
        self.placement = placement

    @property
    def predictor(self) -> CFGPredictor:
        """The first (or only) expert's predictor."""
        return self.experts.experts[0].predictor

    def verify_input(self, batch: ForwardBatch) -> None:
        check_tensor(batch.latents, self.name, "latents", ndim=5)
        check_tensor(batch.prompt_embeds, self.name, "prompt_embeds", ndim=3)
        check("scheduler" in batch.extra, self.name, "timesteps must be prepared first")

    def forward(self, batch: ForwardBatch) -> ForwardBatch:
        sp = batch.sampling
        scheduler = batch.extra["scheduler"]
        latents = batch.latents
        total = len(batch.timesteps)
        scales = guidance_scales(sp, len(self.experts))
        uncond = batch.negative_prompt_embeds if batch.do_cfg else None
        start = time.perf_counter()
        preview_time = 0.0
        current, placed = None, contextlib.ExitStack()
        cache = StepCache(getattr(sp, "step_cache_threshold", 0.0), total)  # threshold 0: every step runs
        with placed, torch.inference_mode():
            for i, t in enumerate(batch.timesteps):
                # Multi-rank: every rank must stop at the same step (or none would finish the
                # next collective), so ranks agree on the flag with one tiny all_reduce.
                if any_rank(batch.cancelled, latents.device):
                    raise GenerationCancelled(f"cancelled before step {i + 1} of {total}")
                k = self.experts.index_at(t, getattr(sp, "boundary_ratio", None))
                expert = self.experts.experts[k]
                if k != current:  # the previous expert leaves the device before this one arrives
                    with torch.inference_mode(False):  # weights moved here stay normal tensors
                        placed.close()
                        placed.enter_context(self.placement(expert.module))
                    current = k
                x, timestep = model_input(latents, t, batch)
                v = cache.predict(expert.predictor, k, i, x, timestep, batch.prompt_embeds, uncond,
                                  batch.image_embeds, scales[k])
                sigma = scheduler.sigmas[(scheduler.begin_index or 0) + i]
                frames = None
                if self.previewer is not None and sp.preview and batch.callback is not None:
                    p0 = time.perf_counter()
                    frames = self.previewer.from_flow(x[:, :latents.shape[1]], v, float(sigma))
                    preview_time += time.perf_counter() - p0
                latents = scheduler.step(v, t, latents)
                if latents.device.type == "cuda":
                    torch.cuda.synchronize(latents.device)
                elapsed = time.perf_counter() - start
                batch.emit({"type": "progress", "step": i + 1, "total": total, "elapsed": elapsed,
                            "remaining": elapsed / (i + 1) * (total - i - 1), "expert": expert.name,
                            "expert_index": k, "experts": len(self.experts)})
                if frames is not None:
                    batch.emit({"type": "preview", "step": i + 1, "total": total, "frames": frames})
        batch.latents = finish_latents(latents, batch)
        batch.extra["preview_time"] = preview_time
        batch.extra["step_cache"] = cache.stats()
        return batch

    def verify_output(self, batch: ForwardBatch) -> None:
        check_tensor(batch.latents, self.name, "latents", ndim=5)
