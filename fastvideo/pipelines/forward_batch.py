"""ForwardBatch: one request as it travels through the pipeline's stages.

Stages read what earlier stages wrote and add their own results; every field
that a stage produces starts as ``None`` so stage verification can tell what is
there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastvideo.configs.sample.base import SamplingParam


@dataclass
class ForwardBatch:
    sampling: SamplingParam
    task: str = "t2v"  # t2v | i2v | v2v
    callback: Callable[[dict[str, Any]], None] | None = None
    cancel_event: threading.Event | None = None

    # Filled by input validation.
    prompt: str = ""
    negative_prompt: str = ""
    do_cfg: bool = False
    image: Any = None  # uint8 [H, W, 3] numpy (I2V)
    video: Any = None  # uint8 [T, H, W, 3] numpy (V2V)

    # Filled by the encoding stages.
    prompt_embeds: Any = None  # [1, L, text_dim]
    negative_prompt_embeds: Any = None
    image_embeds: Any = None  # [1, 257, image_dim]

    # Filled by timestep / latent preparation.
    timesteps: Any = None
    sigmas: Any = None
    latents: Any = None  # [1, C, T', h, w] float32
    condition: Any = None  # I2V: [1, 4 + C, T', h, w] mask + image latents ("concat"), or given latents ("replace")
    condition_mode: str = "concat"  # concat: extra input channels | replace: given latent frames replace noisy ones
    condition_mask: Any = None  # replace: [1, 1, T', h, w], 1 where denoised, 0 where given
    token_mask: Any = None  # replace: [S] per DiT token, 1 where denoised, 0 where given (timestep t * mask)

    # Filled by denoising / decoding.
    video_out: Any = None  # float [T, H, W, 3] in [0, 1]
    frames: Any = None  # uint8 [T, H, W, 3]

    timings: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def emit(self, event: dict[str, Any]) -> None:
        if self.callback is not None:
            self.callback(event)

    @property
    def cancelled(self) -> bool:
        return self.cancel_event is not None and self.cancel_event.is_set()
