"""LatentGeometry: how a model's pixels become latents and tokens (torch-free, plain data).

One small description, read from a model folder's own configs by its family
(``fastvideo/families/<family>.py``: ``latent_geometry(folder)``), used by every
generic part that sizes a request:

* validation (``fastvideo.pipelines.validation``): ``num_frames`` must be ``k * temporal + 1``, height and
  width multiples of ``spatial * patch``;
* latent preparation: the initial noise ``[1, latent_channels, (F - 1) / temporal + 1, H / spatial, W / spatial]``;
* the memory estimate, the benchmark's inputs and the studio's frame / size steps (sent in ``describe``).

Wan2.1: temporal 4, spatial 8, 16 channels, patch (1, 2, 2) -> frames 4n+1, sizes multiples of 16.
Wan2.2 TI2V-5B: temporal 4, spatial 16, 48 channels, patch (1, 2, 2) -> sizes multiples of 32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LatentGeometry:
    temporal_compression: int  #: pixel frames per latent frame (the first frame has a latent frame of its own)
    spatial_compression: int  #: pixels per latent pixel, each side
    latent_channels: int  #: channels of the (VAE) latents the denoiser works on
    patch_size: tuple[int, int, int] = (1, 1, 1)  #: the DiT's (t, h, w) patch over the latents

    def __post_init__(self) -> None:
        object.__setattr__(self, "patch_size", tuple(int(p) for p in self.patch_size))
        values = (self.temporal_compression, self.spatial_compression, self.latent_channels, *self.patch_size)
        if len(self.patch_size) != 3 or not all(isinstance(v, int) and v >= 1 for v in values):
            raise ValueError(f"LatentGeometry needs positive whole numbers and a 3-entry patch_size, got {self}")

    # -- what a request must respect ----------------------------------------------------------------

    @property
    def frame_step(self) -> int:
        """Valid frame counts are ``frame_step * n + 1``."""
        return self.temporal_compression * self.patch_size[0]

    @property
    def height_multiple(self) -> int:
        return self.spatial_compression * self.patch_size[1]

    @property
    def width_multiple(self) -> int:
        return self.spatial_compression * self.patch_size[2]

    def valid_frames(self, n: int) -> bool:
        return n >= 1 and (n - 1) % self.frame_step == 0

    def nearest_frames(self, n: int) -> tuple[int, int]:
        """The valid frame counts just below and above ``n`` (``n`` itself twice when valid)."""
        step = self.frame_step
        below = max(1, ((n - 1) // step) * step + 1)
        return below, below + step if below < n else below

    # -- shapes -------------------------------------------------------------------------------------

    def latent_shape(self, num_frames: int, height: int, width: int, batch: int = 1) -> tuple[int, int, int, int, int]:
        return (batch, self.latent_channels, (num_frames - 1) // self.temporal_compression + 1,
                height // self.spatial_compression, width // self.spatial_compression)

    def token_grid(self, num_frames: int, height: int, width: int) -> tuple[int, int, int]:
        _, _, t, h, w = self.latent_shape(num_frames, height, width)
        pt, ph, pw = self.patch_size
        return -(-t // pt), -(-h // ph), -(-w // pw)

    def tokens(self, num_frames: int, height: int, width: int) -> int:
        t, h, w = self.token_grid(num_frames, height, width)
        return t * h * w

    # -- transport (the studio's describe) ----------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {"temporal_compression": self.temporal_compression, "spatial_compression": self.spatial_compression,
                "latent_channels": self.latent_channels, "patch_size": list(self.patch_size),
                "frame_step": self.frame_step, "height_multiple": self.height_multiple,
                "width_multiple": self.width_multiple}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatentGeometry:
        return cls(int(data["temporal_compression"]), int(data["spatial_compression"]), int(data["latent_channels"]),
                   tuple(data.get("patch_size") or (1, 1, 1)))
