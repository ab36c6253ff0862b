"""A tiny LTX-2 folder end to end: make-tiny (Diffusers layout), the registry (family, geometry, every component
loads through its mapping), a generation through the runner to an MP4 with an AAC track, and the same folder
through Diffusers' LTX2Pipeline.from_pretrained giving the same frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ltx2_helpers import diffusers_or_skip

import fastvideo.configs.families.ltx2  # noqa: F401  (registers the family)
from fastvideo.configs.registry import resolve_model
from fastvideo.models.loader.component_loader import load_component
from fastvideo.testing.tiny_ltx2 import make_tiny_ltx2
from fastvideo.utils.media import audio_stream

PROMPT = "A red cube rolls slowly across a wooden table."


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_ltx2(tmp_path_factory.mktemp("m") / "tiny-ltx2", seed=1)


def test_registry_describes_the_folder(tiny):
    info = resolve_model(str(tiny))
    assert (info.family, info.tasks, info.pipeline_name) == ("ltx2", ("t2v", "i2v"), "LTX2Pipeline")
    g = info.geometry()
    assert (g.temporal_compression, g.spatial_compression, g.latent_channels, g.patch_size) == (8, 16, 8, (1, 1, 1))
    assert info.sampling_param_cls.__name__ == "LTX2TinySamplingParam"  # the folder name picks the tiny preset
    for name in ("transformer", "vae", "audio_vae", "vocoder", "connectors", "text_encoder"):
        assert isinstance(load_component(str(tiny), name), torch.nn.Module)


def test_generation_writes_mp4_with_audio_equal_to_diffusers(tiny, tmp_path):
    diffusers = diffusers_or_skip()
    from fastvideo.worker.runner import PipelineRunner

    info = resolve_model(str(tiny))
    cfg = info.pipeline_config_cls(dit_precision="fp32", text_encoder_precision="fp32")
    runner = PipelineRunner(info, cfg, device=torch.device("cpu"))
    sp = info.sampling_param_cls(prompt=PROMPT, seed=5, output_path=str(tmp_path / "out"), return_frames=True,
                                 preview=False)
    result = runner.generate(sp)
    assert audio_stream(result["video_path"]) == {"codec": "aac", "sample_rate": 24000, "channels": 2}

    pipe = diffusers.LTX2Pipeline.from_pretrained(str(tiny), dtype=torch.float32)
    with torch.no_grad():
        video, audio = pipe(prompt=PROMPT, height=sp.height, width=sp.width, num_frames=sp.num_frames,
                            frame_rate=float(sp.fps), num_inference_steps=sp.num_inference_steps, stg_scale=0.0,
                            audio_stg_scale=0.0, generator=torch.Generator().manual_seed(5), output_type="np",
                            max_sequence_length=cfg.text_len, return_dict=False)
    ref = (video[0] * 255).round().astype(np.int16)
    assert np.abs(result["frames"].astype(np.int16) - ref).max() <= 1
    assert audio.shape[1] == 2  # stereo


def test_previews_during_denoising(tiny, tmp_path):
    """The tiny folder ships latent->RGB factors (vae/latent_rgb.json); the LTX-2 loop sends a preview per step."""
    from fastvideo import VideoGenerator

    events = []
    gen = VideoGenerator.from_pretrained(str(tiny), dit_precision="fp32")
    try:
        gen.generate_video(PROMPT, seed=1, output_path=str(tmp_path / "o"), callback=events.append)
    finally:
        gen.shutdown()
    previews = [e for e in events if e.get("type") == "preview"]
    assert len(previews) == 4  # the tiny preset's steps
    frames = previews[-1]["frames"]
    assert frames.dtype.name == "uint8" and frames.shape[1:] == (2, 2, 3)  # latent-sized RGB


def test_image_to_video_with_recompressed_first_frame(tiny, tmp_path):
    """An input image picks the folder's i2v task; the first frame is re-encoded at H.264 CRF 33 (the released
    preset) before the VAE encodes it; the MP4 still carries sound."""
    from PIL import Image

    from fastvideo import VideoGenerator
    from fastvideo.configs.pipelines.ltx2 import LTX2TinyConfig

    image = tmp_path / "first.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(image)
    gen = VideoGenerator.from_pretrained(str(tiny), pipeline_config=LTX2TinyConfig(dit_precision="fp32",
                                                                                    image_crf=33))
    try:
        result = gen.generate_video(PROMPT, image_path=str(image), seed=2, output_path=str(tmp_path / "o"))
    finally:
        gen.shutdown()
    assert result["task"] == "i2v" and result["num_frames"] == 9
    assert audio_stream(result["video_path"])["codec"] == "aac"
