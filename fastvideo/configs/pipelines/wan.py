"""Wan2.1 pipeline presets."""

from __future__ import annotations

from dataclasses import dataclass, field

# Latent -> RGB factors for Wan2.1's VAE (16 x 3) and bias, from the shared reference.
WAN21_PREVIEW_FACTORS = [
    [-0.1299, -0.1692, 0.2932], [0.0671, 0.0406, 0.0442], [0.3568, 0.2548, 0.1747], [0.0372, 0.2344, 0.1420],
    [0.0313, 0.0189, -0.0328], [0.0296, -0.0956, -0.0665], [-0.3477, -0.4059, -0.2925], [0.0166, 0.1902, 0.1975],
    [-0.0412, 0.0267, -0.1364], [-0.1293, 0.0740, 0.1636], [0.0680, 0.3019, 0.1128], [0.0032, 0.0581, 0.0639],
    [-0.1251, 0.0927, 0.1699], [0.0060, -0.0633, 0.0005], [0.3477, 0.2275, 0.2950], [0.1984, 0.0913, 0.1861],
]
WAN21_PREVIEW_BIAS = [-0.1835, -0.0868, -0.3360]

# Wan's UniPC scheduler settings as the Diffusers repos write them (scheduler_config.json).
# flow_shift 3.0 suits 480p (and the 1.3B model); the 720p 14B models are sampled with 5.0.
WAN_SCHEDULER_CONFIG: dict = {
    "_class_name": "UniPCMultistepScheduler", "_diffusers_version": "0.42.1",
    "num_train_timesteps": 1000, "prediction_type": "flow_prediction", "use_flow_sigmas": True, "flow_shift": 3.0,
    "solver_order": 2, "solver_type": "bh2", "predict_x0": True, "lower_order_final": True,
    "final_sigmas_type": "zero", "timestep_spacing": "linspace", "beta_start": 0.0001, "beta_end": 0.02,
    "beta_schedule": "linear", "trained_betas": None, "thresholding": False, "dynamic_thresholding_ratio": 0.995,
    "sample_max_value": 1.0, "disable_corrector": [], "solver_p": None, "use_karras_sigmas": False,
    "use_exponential_sigmas": False, "use_beta_sigmas": False, "steps_offset": 0, "rescale_betas_zero_snr": False,
}

from fastvideo.configs.pipelines.base import PipelineConfig  # noqa: E402


@dataclass
class WanT2V480PConfig(PipelineConfig):
    flow_shift: float = 3.0
    preview_factors: list[list[float]] | None = field(default_factory=lambda: [r[:] for r in WAN21_PREVIEW_FACTORS])
    preview_bias: list[float] | None = field(default_factory=lambda: WAN21_PREVIEW_BIAS[:])


@dataclass
class WanT2V720PConfig(WanT2V480PConfig):
    flow_shift: float = 5.0


@dataclass
class WanI2V480PConfig(WanT2V480PConfig):
    pass


@dataclass
class WanI2V720PConfig(WanI2V480PConfig):
    flow_shift: float = 5.0


@dataclass
class ShapesT2VConfig(PipelineConfig):
    """The built-in shapes model: its own preview factors ship in ``vae/latent_rgb.json``."""

    flow_shift: float = 3.0
