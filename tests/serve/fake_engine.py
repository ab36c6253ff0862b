"""A torch-free stand-in for the VideoGenerator API, for fast GUI/protocol tests.

The worker loads it with the hidden option ``--engine fake_engine`` (this folder
on PYTHONPATH).  It follows the engine contract: stage/progress/preview
callbacks, cancellation at step boundaries, InvalidRequest before any work, and
a real MP4 with embedded settings.  Real-model tests use the tiny model instead.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import numpy as np

from fastvideo.configs.sample.base import SamplingParam as _Base
from fastvideo.errors import GenerationCancelled, InvalidRequest  # noqa: F401  (re-exported)
from fastvideo.utils import media

STEP_DELAY = float(os.environ.get("FAKE_ENGINE_STEP_DELAY", "0.05"))


@dataclasses.dataclass
class SamplingParam(_Base):
    num_frames: int = 9
    height: int = 64
    width: int = 96
    fps: int = 8
    num_inference_steps: int = 6
    guidance_scale: float = 4.0
    seed: int = 42

    @classmethod
    def from_pretrained(cls, model_path: str) -> SamplingParam:
        _check_folder(model_path)
        return cls()


def _check_folder(model_path: str) -> None:
    """Like the real registry: a model folder needs a model_index.json."""
    from fastvideo.errors import ModelNotFoundError

    if not Path(model_path).is_dir():
        raise ModelNotFoundError(f"{model_path}: no such model folder")
    if not (Path(model_path) / "model_index.json").is_file():
        raise ModelNotFoundError(f"{model_path}: no model_index.json in this folder (is it a Diffusers-layout model?)")


def model_tasks(model_path: str) -> list[str]:
    return ["t2v", "i2v", "v2v"]


class VideoGenerator:
    def __init__(self, model_path: str, num_gpus: int, options: dict):
        self.model_path = model_path
        self.num_gpus = num_gpus
        self.options = options
        self.closed = False

    @classmethod
    def from_pretrained(cls, model_path: str, num_gpus: int = 1, **options) -> VideoGenerator:
        _check_folder(model_path)
        print("fake engine: loading (a stray print from a library)")
        time.sleep(float(os.environ.get("FAKE_ENGINE_LOAD_DELAY", "0.05")))
        return cls(model_path, num_gpus, options)

    def generate_video(self, prompt=None, sampling_param=None, callback=None, cancel_event=None, **overrides):
        sp = sampling_param or SamplingParam()
        sp.update(**overrides)
        if prompt is not None:
            sp.prompt = prompt
        if not sp.prompt or not sp.prompt.strip():
            raise InvalidRequest("prompt is empty", field="prompt")
        if sp.height % 16 or sp.width % 16:
            raise InvalidRequest(f"height and width must be multiples of 16, got {sp.height}x{sp.width}", field="height")
        cb = callback or (lambda e: None)
        t0 = time.time()
        rng = np.random.default_rng(sp.seed)
        cb({"type": "stage", "name": "text_encoding"})
        time.sleep(STEP_DELAY)
        cb({"type": "stage", "name": "denoising"})
        n = sp.num_inference_steps
        t, h, w = sp.num_frames, sp.height, sp.width
        base = rng.integers(0, 255, size=(t, h // 8, w // 8, 3), dtype=np.uint8)
        for i in range(1, n + 1):
            if cancel_event is not None and cancel_event.is_set():
                raise GenerationCancelled(f"cancelled at step {i - 1}")
            time.sleep(STEP_DELAY)
            el = time.time() - t0
            cb({"type": "progress", "step": i, "total": n, "elapsed": el, "remaining": el / i * (n - i)})
            if sp.preview:
                cb({"type": "preview", "step": i, "total": n,
                    "frames": (base.astype(np.uint32) * i // n).astype(np.uint8)})
        cb({"type": "stage", "name": "decoding"})
        frames = np.repeat(np.repeat(base, 8, axis=1), 8, axis=2)
        settings = {**sp.to_dict(), "model_path": self.model_path}
        settings.pop("extra", None)
        path = None
        if sp.save_video:
            out = Path(sp.output_path)
            out.mkdir(parents=True, exist_ok=True)
            path = str(media.write_video(frames, media.unique_path(out, sp.prompt), fps=sp.fps, metadata=settings))
        return {"video_path": path, "frames": frames if sp.return_frames else None, "seed": sp.seed,
                "size": [w, h], "num_frames": t, "generation_time": time.time() - t0,
                "timings": {"denoising": time.time() - t0}, "peak_memory": 0, "settings": settings}

    def shutdown(self) -> None:
        self.closed = True


def gpu_count() -> int:
    return int(os.environ.get("FAKE_ENGINE_GPUS", "0"))


def devices() -> list[dict]:
    """The fake GPUs (``FAKE_ENGINE_GPUS``): a name and 24 GiB each, like ``torch.cuda.get_device_properties``."""
    return [{"index": i, "name": "Fake GPU", "memory": 24 * 2**30} for i in range(gpu_count())]
