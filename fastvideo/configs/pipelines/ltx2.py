"""LTX-2 pipeline presets (``LTX2Pipeline`` / ``LTX2ImageToVideoPipeline`` folders).

LTX-2's sigma schedule is not a flow shift: it is ``linspace(1, 1/N, N)`` shifted by a ``mu`` that grows
with the number of video tokens (``scheduler_config.json``: ``use_dynamic_shifting``, exponential time
shift, ``base_shift``/``max_shift`` over ``base_image_seq_len``/``max_image_seq_len``), so ``flow_shift``
is unused by this family.  ``text_len`` is the Gemma prompt length (a multiple of the connectors'
learned registers, 128 for the released model).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastvideo.configs.pipelines.base import PipelineConfig

# The released LTX-2 sigma schedule settings (Diffusers' FlowMatchEulerDiscreteScheduler config keys).
LTX2_SCHEDULER_CONFIG: dict = {
    "_class_name": "FlowMatchEulerDiscreteScheduler", "_diffusers_version": "0.42.1",
    "num_train_timesteps": 1000, "shift": 1.0, "use_dynamic_shifting": True, "time_shift_type": "exponential",
    "base_shift": 0.95, "max_shift": 2.05, "base_image_seq_len": 1024, "max_image_seq_len": 4096,
    "shift_terminal": 0.1, "invert_sigmas": False, "stochastic_sampling": False, "use_karras_sigmas": False,
    "use_exponential_sigmas": False, "use_beta_sigmas": False,
}

# Sigmas of the distilled LTX-2 (8 steps, no guidance), from Lightricks/LTX-2 ltx_pipelines constants.
LTX2_DISTILLED_SIGMAS = (1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875)


@dataclass
class LTX2T2VConfig(PipelineConfig):
    flow_shift: float = 1.0  # unused: the schedule's shift comes from the token count (see module doc)
    text_len: int = 1024
    vae_precision: str = "bf16"
    # Image-to-video: the H.264 CRF the first frame is re-compressed at before encoding (the model was trained
    # on compressed frames; 0 skips it), as ltx-pipelines' DEFAULT_IMAGE_CRF.
    image_crf: int = 33


@dataclass
class LTX2I2VConfig(LTX2T2VConfig):
    pass


@dataclass
class LTX2TinyConfig(LTX2T2VConfig):
    """The tiny random-weight model of ``fastvideo make-tiny --family ltx2`` (tests, smoke runs, the guide)."""

    text_len: int = 16
    vae_precision: str = "fp32"
    image_crf: int = 0
