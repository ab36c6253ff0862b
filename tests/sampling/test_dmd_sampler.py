"""DMD few-step sampler: parity with FastVideo's DmdDenoisingStage math on a tiny model, presets, validation.

The reference below is FastVideo's algorithm written out (fastvideo/pipelines/stages/denoising.py
``DmdDenoisingStage``, ``pred_noise_to_pred_video`` in fastvideo/models/utils.py and
``FlowMatchEulerDiscreteScheduler.add_noise``): a shift-8 Euler scheduler's 1000-step training grid,
sigma by nearest grid timestep (argmin), x0 in float64, re-noise with the seed's generator continued
after the initial latents.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fastvideo import SamplingParam
from fastvideo.pipelines.forward_batch import ForwardBatch


class FastVideoEulerGrid:
    """FastVideo's FlowMatchEulerDiscreteScheduler as constructed (no set_timesteps): the training grid."""

    def __init__(self, shift: float = 8.0, T: int = 1000):
        timesteps = torch.from_numpy(np.linspace(1, T, T, dtype=np.float32)[::-1].copy())
        sigmas = timesteps / T
        sigmas = shift * sigmas / (1 + (shift - 1) * sigmas)
        self.timesteps = sigmas * T
        self.sigmas = sigmas

    def pred_noise_to_pred_video(self, pred_noise, noise_input_latent, timestep):
        dtype = pred_noise.dtype
        sigmas, timesteps = self.sigmas.double(), self.timesteps.double()
        tid = torch.argmin((timesteps.unsqueeze(0) - timestep.double().reshape(-1, 1)).abs(), dim=1)
        return (noise_input_latent.double() - sigmas[tid].reshape(-1, 1, 1, 1, 1) * pred_noise.double()).to(dtype)

    def add_noise(self, clean, noise, timestep):
        tid = torch.argmin((self.timesteps.unsqueeze(0) - timestep.reshape(-1, 1)).abs(), dim=1)
        sigma = self.sigmas[tid].reshape(-1, 1, 1, 1, 1)
        return ((1 - sigma) * clean + sigma * noise).type_as(noise)


def reference_dmd(model, latents, steps, seed, shift=8.0, warp=False):
    """FastVideo's DMD loop (generator: seeded, the initial latents drawn from it first)."""
    grid = FastVideoEulerGrid(shift)
    timesteps = torch.tensor(steps, dtype=torch.long)
    if warp:
        timesteps = torch.cat((grid.timesteps, torch.tensor([0.0])))[1000 - timesteps]
    generator = torch.Generator("cpu").manual_seed(seed)
    torch.randn(latents.shape, generator=generator, dtype=torch.float32)  # the initial latents' draw
    for i, t in enumerate(timesteps):
        noise_latents = latents.clone()
        pred = model(latents, t.reshape(1).float())
        pred_video = grid.pred_noise_to_pred_video(pred, noise_latents, t.reshape(1))
        if i < len(timesteps) - 1:
            noise = torch.randn(latents.shape, dtype=pred_video.dtype, generator=generator)
            latents = grid.add_noise(pred_video, noise, timesteps[i + 1].reshape(1))
        else:
            latents = pred_video
    return latents


def ours(model, latents, steps, seed, shift=8.0, warp=False):
    from fastvideo.models.schedulers.dmd import DMDScheduler

    sched = DMDScheduler(steps, shift=shift, warp=warp, seed=seed)
    sched.set_timesteps(len(steps))
    for t in sched.timesteps:
        latents = sched.step(model(latents, t.reshape(1)), t, latents)
    return latents


@pytest.fixture(scope="module")
def tiny_dit():
    from fastvideo.testing.tiny import build_tiny_modules

    dit = build_tiny_modules(seed=3)["transformer"].eval()
    text = torch.randn(1, 8, 32, generator=torch.Generator().manual_seed(5))

    @torch.no_grad()
    def model(x, t):
        return dit(x, t, text).float()

    return model


@pytest.mark.parametrize("steps,shift,warp", [([1000, 757, 522], 8.0, False), ([1000, 750, 500, 250], 5.0, True)])
def test_dmd_matches_fastvideo_math(tiny_dit, steps, shift, warp):
    from fastvideo.pipelines.stages.latent_preparation import initial_noise

    seed = 11
    x = initial_noise(seed, (1, 16, 2, 8, 8))
    ref = reference_dmd(tiny_dit, x.clone(), steps, seed, shift, warp)
    got = ours(tiny_dit, x.clone(), steps, seed, shift, warp)
    assert torch.equal(got, ref), float((got - ref).abs().max())
    # not a degenerate identity: the sampler moved the sample
    assert float((got - x).abs().mean()) > 0.1


def test_warped_timesteps_are_grid_values():
    from fastvideo.models.schedulers.dmd import DMDScheduler

    s = DMDScheduler([1000, 750, 500, 250], shift=5.0, warp=True)
    s.set_timesteps(4)
    # warp moves t onto shift(t / 1000) * 1000: 750 -> ~937.5 at shift 5
    assert s.timesteps[0] == 1000 and abs(float(s.timesteps[1]) - 937.5) < 1.0
    assert abs(float(s.sigmas[1]) - 0.9375) < 1e-3 and float(s.sigmas[-1]) == 0.0
    plain = DMDScheduler([1000, 757, 522])
    plain.set_timesteps(3)
    assert plain.timesteps.tolist() == [1000.0, 757.0, 522.0]
    assert abs(float(plain.sigmas[1]) - 0.757) < 2e-3  # nearest grid sigma


def test_step_count_must_match_the_list():
    from fastvideo.models.schedulers import SchedulerConfigError
    from fastvideo.models.schedulers.dmd import DMDScheduler

    with pytest.raises(SchedulerConfigError, match="num_inference_steps=3"):
        DMDScheduler([1000, 757, 522]).set_timesteps(4)
    with pytest.raises(SchedulerConfigError, match="decreasing"):
        DMDScheduler([500, 757])


def test_validation_messages():
    from fastvideo.pipelines.validation import validate_sampling

    def fields(**kw):
        sp = SamplingParam(prompt="a cat", save_video=False).update(**kw)
        return {e.field: str(e) for e in validate_sampling(sp)}

    assert fields(sampler="dmd", dmd_denoising_steps=[1000, 757, 522], num_inference_steps=3) == {}
    assert "num_inference_steps" in fields(sampler="dmd", dmd_denoising_steps=[1000, 757, 522], num_inference_steps=4)
    assert "sampler" in fields(sampler="lcm")
    assert "dmd_denoising_steps" in fields(sampler="dmd", dmd_denoising_steps=[500, 900], num_inference_steps=2)
    assert "dmd_denoising_steps" in fields(dmd_denoising_steps=[1000])  # without sampler="dmd"
    assert "step_cache_threshold" in fields(step_cache_threshold=-1.0)


def test_pipeline_dmd_request_matches_reference(t2v_generator):
    """The whole T2V pipeline with sampler='dmd': its denoised latents equal FastVideo's loop on the same
    prompt embeddings and initial noise, and no unconditional branch runs (guidance 1)."""
    runner = t2v_generator.executor.runner
    pipe = runner.pipeline("t2v")
    sp = SamplingParam.from_pretrained(str(runner.info.path)).update(
        prompt="a red circle", height=32, width=32, num_frames=5, seed=7, save_video=False,
        sampler="dmd", dmd_denoising_steps=[1000, 757, 522], num_inference_steps=3, guidance_scale=1.0)
    batch = ForwardBatch(sampling=sp)
    for stage in pipe.stages[:4]:  # validation, text, timesteps, latents
        batch = stage(batch)
    assert batch.negative_prompt_embeds is None
    dit = runner.loaded["transformer"]
    x0 = batch.latents.clone()

    @torch.no_grad()
    def model(x, t):
        return dit(x.to(dit.dtype if hasattr(dit, "dtype") else x.dtype), t, batch.prompt_embeds).float()

    ref = reference_dmd(model, x0, [1000, 757, 522], seed=7)
    batch = pipe.stage("denoising")(batch)
    assert torch.equal(batch.latents, ref)


def test_presets_called_for(tmp_path):
    from fastvideo.configs.sample.presets import get_preset, presets_for, presets_for_lora, presets_for_model

    model = tmp_path / "FastWan"
    model.mkdir()
    (model / "model_index.json").write_text(json.dumps({"_class_name": "WanDMDPipeline"}))
    assert presets_for_model(model) == ["fastwan-dmd-3step"]
    plain = tmp_path / "wan"
    plain.mkdir()
    (plain / "model_index.json").write_text(json.dumps({"_class_name": "WanPipeline"}))
    assert presets_for_model(plain) == [] and presets_for_model(tmp_path / "missing") == []

    from fastvideo.models.loader.checkpoint import save_safetensors

    tagged = tmp_path / "anything.safetensors"
    save_safetensors(tagged, {"a.lora_A.weight": torch.zeros(1, 1)},
                     metadata={"fastvideo_sampling_preset": "step-distill-8step"})
    assert presets_for_lora(tagged) == ["step-distill-8step"]
    assert presets_for_lora(tmp_path / "Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors")[0] \
        == "step-distill-4step"
    assert presets_for_lora(tmp_path / "watercolor_style.safetensors") == []
    got = [p.name for p in presets_for(plain, loras=[(str(tmp_path / "CausVid_14B.safetensors"), 0.7)])]
    assert got == ["step-distill-4step", "step-distill-8step"]
    sp = get_preset("fastwan-dmd-3step").apply(SamplingParam(prompt="x"))
    assert (sp.sampler, sp.num_inference_steps, sp.guidance_scale) == ("dmd", 3, 1.0)


def test_fastwan_folder_resolves_to_dmd_defaults(tiny_t2v, tmp_path):
    import shutil

    from fastvideo.configs.registry import resolve_model

    folder = tmp_path / "FastWan2.1-T2V-1.3B-Diffusers"
    shutil.copytree(tiny_t2v, folder)
    index = json.loads((folder / "model_index.json").read_text())
    index["_class_name"] = "WanDMDPipeline"
    (folder / "model_index.json").write_text(json.dumps(index))
    sp = resolve_model(str(folder)).sampling_param_cls()
    assert (sp.sampler, sp.dmd_denoising_steps, sp.num_inference_steps, sp.guidance_scale) == \
        ("dmd", [1000, 757, 522], 3, 1.0)


def test_generate_cli_preset_and_step_cache(tiny_t2v, tmp_path, capsys):
    from fastvideo.entrypoints.cli.main import main

    args = ["generate", "--model", str(tiny_t2v), "--prompt", "a red circle", "--height", "32", "--width", "32",
            "--num-frames", "5", "--seed", "1", "--quiet"]
    assert main(args + ["--preset", "nope"]) == 2 and "fastwan-dmd-3step" in capsys.readouterr().err
    assert main(args + ["--preset", "fastwan-dmd-3step", "--output", str(tmp_path / "a.mp4")]) == 0
    sidecar = json.loads((tmp_path / "a.json").read_text())
    assert (sidecar["sampler"], sidecar["num_inference_steps"], sidecar["guidance_scale"]) == ("dmd", 3, 1.0)
    assert main(args + ["--steps", "8", "--step-cache", "0.5", "--output", str(tmp_path / "b.mp4")]) == 0
    assert "step cache 0.5: DiT ran on" in capsys.readouterr().out
    assert main(args + ["--dmd-steps", "1000,500", "--sampler", "dmd", "--output", str(tmp_path / "c.mp4")]) == 0
    assert json.loads((tmp_path / "c.json").read_text())["num_inference_steps"] == 2
