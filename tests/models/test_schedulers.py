"""Flow-matching schedulers vs Diffusers (test-only dependency)."""

from __future__ import annotations

import types

import pytest
import torch

diffusers = pytest.importorskip("diffusers")
from diffusers import FlowMatchEulerDiscreteScheduler as RefEuler  # noqa: E402
from diffusers import UniPCMultistepScheduler as RefUniPC  # noqa: E402
from diffusers.pipelines.wan.pipeline_wan_video2video import WanVideoToVideoPipeline  # noqa: E402

from fastvideo.models.schedulers import (  # noqa: E402
    SCHEDULERS,
    FlowMatchEulerDiscreteScheduler,
    FlowUniPCMultistepScheduler,
    SchedulerConfigError,
    get_timesteps_for_strength,
    scheduler_from_config,
)

# Wan2.1-T2V-1.3B-Diffusers scheduler/scheduler_config.json (rebuilt, see wan21.md).
WAN_UNIPC_CONFIG = {
    "_class_name": "UniPCMultistepScheduler",
    "_diffusers_version": "0.33.0.dev0",
    "beta_end": 0.02,
    "beta_schedule": "linear",
    "beta_start": 0.0001,
    "disable_corrector": [],
    "dynamic_thresholding_ratio": 0.995,
    "final_sigmas_type": "zero",
    "flow_shift": 3.0,
    "lower_order_final": True,
    "num_train_timesteps": 1000,
    "predict_x0": True,
    "prediction_type": "flow_prediction",
    "rescale_betas_zero_snr": False,
    "sample_max_value": 1.0,
    "solver_order": 2,
    "solver_p": None,
    "solver_type": "bh2",
    "steps_offset": 0,
    "thresholding": False,
    "timestep_spacing": "linspace",
    "trained_betas": None,
    "use_beta_sigmas": False,
    "use_exponential_sigmas": False,
    "use_flow_sigmas": True,
    "use_karras_sigmas": False,
}
WAN_EULER_CONFIG = {
    "_class_name": "FlowMatchEulerDiscreteScheduler",
    "_diffusers_version": "0.32.0.dev0",
    "base_image_seq_len": 256,
    "base_shift": 0.5,
    "invert_sigmas": False,
    "max_image_seq_len": 4096,
    "max_shift": 1.15,
    "num_train_timesteps": 1000,
    "shift": 5.0,
    "shift_terminal": None,
    "use_beta_sigmas": False,
    "use_dynamic_shifting": False,
    "use_exponential_sigmas": False,
    "use_karras_sigmas": False,
}


def fake_velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A smooth, deterministic stand-in for the DiT: v = f(x, t)."""
    s = float(t) / 1000.0
    return torch.sin(3.0 * x) + 0.5 * x - s * torch.cos(x) + 0.1 * s


def start_sample() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, 4, 3, 6, 6, generator=g)


def run_pair(ref, ours, steps: int, x: torch.Tensor | None = None) -> tuple[float, torch.Tensor]:
    ref.set_timesteps(steps)
    ours.set_timesteps(steps)
    assert torch.equal(ref.timesteps.to(torch.float32), ours.timesteps)
    assert ours.timesteps.dtype == torch.float32
    assert torch.equal(ref.sigmas, ours.sigmas)
    a = start_sample() if x is None else x.clone()
    b = a.clone()
    worst = 0.0
    for t_ref, t_ours in zip(ref.timesteps, ours.timesteps):
        a = ref.step(fake_velocity(a, t_ref), t_ref, a, return_dict=False)[0]
        b = ours.step(fake_velocity(b, t_ours), t_ours, b)
        worst = max(worst, (a - b).abs().max().item())
    assert torch.isfinite(b).all()
    return worst, b


VARIANTS = [
    {},
    {"flow_shift": 5.0},
    {"solver_order": 1},
    {"solver_order": 3},
    {"final_sigmas_type": "sigma_min"},
    {"final_sigmas_type": "sigma_min", "solver_type": "bh1"},
    {"final_sigmas_type": "sigma_min", "lower_order_final": False},
    {"disable_corrector": [0, 2]},
    {"solver_type": "midpoint"},
]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: ",".join(f"{k}={v[k]}" for k in v) or "wan")
def test_unipc_trajectory_matches_diffusers(variant):
    cfg = {**WAN_UNIPC_CONFIG, **variant}
    worst, _ = run_pair(RefUniPC.from_config(cfg), scheduler_from_config(cfg), 10)
    assert worst <= 1e-5, worst


def test_unipc_wan_default_50_steps():
    ours = FlowUniPCMultistepScheduler.from_config(WAN_UNIPC_CONFIG)
    ours.set_timesteps(50)
    ts = ours.timesteps.tolist()
    assert ts[:3] == [999.0, 993.0, 986.0]
    assert ts[-1] == 60.0
    assert len(ts) == 50 and float(ours.sigmas[-1]) == 0.0 and len(ours.sigmas) == 51
    worst, _ = run_pair(RefUniPC.from_config(WAN_UNIPC_CONFIG), ours, 50)
    assert worst <= 1e-5, worst


def test_unipc_state_is_fresh_per_generation():
    ours = scheduler_from_config(WAN_UNIPC_CONFIG)
    ref = RefUniPC.from_config(WAN_UNIPC_CONFIG)
    _, first = run_pair(ref, ours, 6)
    _, second = run_pair(ref, ours, 6)  # set_timesteps again: same result
    assert torch.equal(first, second)
    ours.reset()
    x = start_sample()
    for t in ours.timesteps:  # reset() alone also restarts
        x = ours.step(fake_velocity(x, t), t, x)
    assert torch.equal(x, first)


@pytest.mark.parametrize("shift,steps", [(1.0, 10), (3.0, 10), (5.0, 10), (3.0, 50)])
def test_euler_trajectory_matches_diffusers(shift, steps):
    worst, _ = run_pair(RefEuler(shift=shift), FlowMatchEulerDiscreteScheduler(shift=shift), steps)
    assert worst <= 1e-5, worst


def test_euler_from_wan_config_and_step_rule():
    ours = scheduler_from_config(WAN_EULER_CONFIG)
    assert isinstance(ours, FlowMatchEulerDiscreteScheduler) and ours.shift == 5.0
    ours.set_timesteps(4)
    x = start_sample()
    v = torch.ones_like(x)
    out = ours.step(v, ours.timesteps[0], x)
    expected = x + (ours.sigmas[1] - ours.sigmas[0]) * v
    assert torch.equal(out, expected)
    worst, _ = run_pair(RefEuler.from_config(WAN_EULER_CONFIG), scheduler_from_config(WAN_EULER_CONFIG), 10)
    assert worst <= 1e-5


def test_class_name_map():
    assert SCHEDULERS["UniPCMultistepScheduler"] is FlowUniPCMultistepScheduler
    assert SCHEDULERS["FlowMatchEulerDiscreteScheduler"] is FlowMatchEulerDiscreteScheduler
    with pytest.raises(SchedulerConfigError, match="DDIMScheduler"):
        scheduler_from_config({"_class_name": "DDIMScheduler"})


@pytest.mark.parametrize("strength", [1.0, 0.8, 0.55, 0.3, 0.01, 0.0])
@pytest.mark.parametrize("kind", ["unipc", "euler"])
def test_strength_matches_wan_video2video(kind, strength):
    steps = 20
    if kind == "unipc":
        ref, ours = RefUniPC.from_config(WAN_UNIPC_CONFIG), FlowUniPCMultistepScheduler.from_config(WAN_UNIPC_CONFIG)
    else:
        ref, ours = RefEuler(shift=3.0), FlowMatchEulerDiscreteScheduler(shift=3.0)
    ref.set_timesteps(steps)
    ours.set_timesteps(steps)
    fake_pipe = types.SimpleNamespace(scheduler=ref)
    ref_ts, ref_n = WanVideoToVideoPipeline.get_timesteps(fake_pipe, steps, ref.timesteps, strength, "cpu")
    ts, n = ours.get_timesteps_for_strength(strength)
    assert n == ref_n and torch.equal(ts, ref_ts.to(torch.float32))
    ts2, n2 = get_timesteps_for_strength(ours.timesteps, steps, strength)
    assert n2 == n and torch.equal(ts2, ts)
    if n == 0:
        return
    # Noise the clean latents at the first kept timestep, then denoise the rest, as the V2V pipeline does.
    x0, noise = start_sample(), torch.randn(2, 4, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    latent_t = ref_ts[:1].repeat(2)
    if hasattr(ref, "add_noise"):
        a = ref.add_noise(x0, noise, latent_t)
    else:
        a = ref.scale_noise(x0, latent_t, noise)
    b = ours.scale_noise(x0, ts[:1].repeat(2), noise)
    assert torch.equal(a, b)
    assert torch.equal(ours.add_noise(x0, noise, ts[:1]), b)
    for t_ref, t_ours in zip(ref_ts, ts):
        a = ref.step(fake_velocity(a, t_ref), t_ref, a, return_dict=False)[0]
        b = ours.step(fake_velocity(b, t_ours), t_ours, b)
    assert (a - b).abs().max().item() <= 1e-5


def test_scale_noise_is_flow_interpolation():
    ours = FlowMatchEulerDiscreteScheduler(shift=3.0)
    ours.set_timesteps(10)
    x0, noise = torch.zeros(1, 2, 3), torch.ones(1, 2, 3)
    t = ours.timesteps[4]
    out = ours.scale_noise(x0, t, noise)
    assert torch.allclose(out, torch.full_like(out, float(ours.sigmas[4])))
    explicit = ours.scale_noise(x0, None, noise, sigma=torch.tensor([0.25]))
    assert torch.allclose(explicit, torch.full_like(explicit, 0.25))


@pytest.mark.parametrize(
    "bad",
    [
        {"prediction_type": "epsilon"},
        {"use_flow_sigmas": False},
        {"predict_x0": False},
        {"thresholding": True},
        {"use_karras_sigmas": True},
        {"use_dynamic_shifting": True},
        {"solver_type": "bh3"},
        {"final_sigmas_type": "something"},
        {"solver_type": "bh1"},  # with final_sigmas_type zero Diffusers yields NaN
        {"lower_order_final": False},  # with final sigma 0 Diffusers yields inf
        {"solver_order": 0},
        {"timestep_spacing": "karras"},
        {"a_new_option": 1},
    ],
    ids=lambda d: next(iter(d)),
)
def test_unipc_rejects_unsupported_config(bad):
    with pytest.raises(SchedulerConfigError):
        scheduler_from_config({**WAN_UNIPC_CONFIG, **bad})


def test_unipc_requires_flow_settings():
    with pytest.raises(SchedulerConfigError, match="prediction_type"):
        FlowUniPCMultistepScheduler.from_config({"_class_name": "UniPCMultistepScheduler", "flow_shift": 3.0})


@pytest.mark.parametrize(
    "bad",
    [{"use_dynamic_shifting": True}, {"invert_sigmas": True}, {"stochastic_sampling": True}, {"shift": 0.0},
     {"use_beta_sigmas": True}, {"mystery": 2}],
    ids=lambda d: next(iter(d)),
)
def test_euler_rejects_unsupported_config(bad):
    with pytest.raises(SchedulerConfigError):
        scheduler_from_config({**WAN_EULER_CONFIG, **bad})


def test_step_before_set_timesteps_and_past_end():
    s = FlowUniPCMultistepScheduler.from_config(WAN_UNIPC_CONFIG)
    with pytest.raises(RuntimeError, match="set_timesteps"):
        s.step(torch.zeros(1), 999.0, torch.zeros(1))
    s.set_timesteps(1)
    x = s.step(torch.zeros(1, 1, 1), s.timesteps[0], torch.ones(1, 1, 1))
    with pytest.raises(RuntimeError, match="past the last"):
        s.step(torch.zeros(1, 1, 1), s.timesteps[0], x)
    with pytest.raises(ValueError, match="strength"):
        s.get_timesteps_for_strength(1.5)
