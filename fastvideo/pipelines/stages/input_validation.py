"""InputValidationStage: reject a bad request before any model work, load inputs."""

from __future__ import annotations

import numpy as np

from fastvideo.configs.geometry import LatentGeometry
from fastvideo.errors import InvalidRequest
from fastvideo.pipelines.forward_batch import ForwardBatch
from fastvideo.pipelines.stages.base import PipelineStage
from fastvideo.pipelines.validation import check_sampling


class InputValidationStage(PipelineStage):
    """``geometry``: the model's latent geometry (frame count and size rules); ``experts``: how many
    denoisers it switches between (``guidance_scale_2`` / ``boundary_ratio`` need more than one)."""

    name = "input_validation"

    def __init__(self, geometry: LatentGeometry, experts: int = 1):
        self.geometry = geometry
        self.experts = experts

    def forward(self, batch: ForwardBatch) -> ForwardBatch:
        sp = batch.sampling
        check_sampling(sp, batch.task, self.geometry)
        if self.experts < 2:
            for name in ("guidance_scale_2", "boundary_ratio"):
                if getattr(sp, name, None) is not None:
                    raise InvalidRequest(f"{name} is for models with several denoising experts (Wan2.2 A14B); "
                                         f"this model has one: leave {name} unset", name)
        batch.prompt = sp.prompt.strip()
        batch.negative_prompt = sp.negative_prompt or ""
        batch.do_cfg = sp.guidance_scale > 1.0
        if batch.task == "i2v":
            batch.image = load_image(sp.image_path)
        if batch.task == "v2v":
            batch.video = load_video(sp.video_path, sp.num_frames, self.geometry)
        return batch


def load_image(path: str):
    """The image as an RGB PIL image (what the reference's processors take)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise InvalidRequest(f"cannot read image {path}: {exc}", "image_path") from None


def load_video(path: str, num_frames: int, geometry: LatentGeometry) -> np.ndarray:
    """The first ``num_frames`` frames as uint8 ``[T, H, W, 3]``."""
    from fastvideo.utils.media import MediaError, read_video

    try:
        frames, _ = read_video(path, max_frames=num_frames)
    except MediaError as exc:
        raise InvalidRequest(f"cannot read video {path}: {exc}", "video_path") from None
    if len(frames) < num_frames:
        usable = geometry.nearest_frames(len(frames))[0]
        raise InvalidRequest(
            f"video {path} has {len(frames)} frames but {num_frames} were asked for: use num_frames={usable} "
            "or a longer video", "num_frames")
    return frames
