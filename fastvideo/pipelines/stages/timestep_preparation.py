"""TimestepPreparationStage: a fresh scheduler with this request's shift and steps."""

from __future__ import annotations

from fastvideo.pipelines.forward_batch import ForwardBatch
from fastvideo.pipelines.stages.base import PipelineStage, check, check_tensor


class TimestepPreparationStage(PipelineStage):
    name = "timestep_preparation"

    def __init__(self, scheduler_config: dict, default_shift: float, device):
        self.scheduler_config = dict(scheduler_config)
        self.default_shift = default_shift
        self.device = device

    def make_scheduler(self, shift: float):
        from fastvideo.models.schedulers import SCHEDULERS

        cls = SCHEDULERS[self.scheduler_config["_class_name"]]
        return cls.from_config(self.scheduler_config, **{cls.shift_config_key: shift})

    def forward(self, batch: ForwardBatch) -> ForwardBatch:
        sp = batch.sampling
        shift = sp.flow_shift if sp.flow_shift is not None else self.default_shift
        if sp.sampler is not None:  # a few-step sampler asked for by the request (models/schedulers/dmd.py)
            from fastvideo.models.schedulers.dmd import scheduler_for_request

            scheduler = scheduler_for_request(sp)
        else:
            scheduler = self.make_scheduler(shift)
        scheduler.set_timesteps(sp.num_inference_steps, device=self.device)
        timesteps = scheduler.timesteps
        if batch.task == "v2v":
            timesteps, _ = scheduler.get_timesteps_for_strength(sp.strength)
        batch.extra["scheduler"] = scheduler
        batch.timesteps = timesteps
        batch.sigmas = scheduler.sigmas
        return batch

    def verify_output(self, batch: ForwardBatch) -> None:
        check_tensor(batch.timesteps, self.name, "timesteps", ndim=1)
        check(len(batch.timesteps) >= 1, self.name,
              "no denoising steps to run (strength too low for this step count: raise strength or steps)")
