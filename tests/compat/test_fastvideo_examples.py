"""FastVideo's own Wan example scripts (examples/inference/basic/, copied verbatim into tests/compat/examples/)
run against fastvideo as subprocesses (``python example.py``).

Per script only the model id is replaced by a tiny local folder (the ``tiny_t2v`` / ``tiny_i2v`` fixtures,
copied under a name the registry knows as tiny so the scripts that pass no size get small defaults), the
sizes the script already passes (``num_frames=`` / ``height=`` / ``width=``) are made small by regex, and the
image URL of the I2V scripts is replaced by a local image (there is no network here).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent / "examples"
REPO = Path(__file__).resolve().parents[2]
MODEL_ID = re.compile(r'"(?:Wan-AI|FastVideo)/[A-Za-z0-9_.\-]+"')
SIZE = re.compile(r"\b(num_frames|height|width)(\s*=\s*)\d+")
IMAGE_URL = re.compile(r'"https://[^"]+\.(?:JPG|jpg|png)"')
SMALL = {"num_frames": "5", "height": "32", "width": "48"}


@pytest.fixture(scope="module")
def models(tiny_t2v, tiny_i2v, tmp_path_factory):
    root = tmp_path_factory.mktemp("compat-models")
    t2v = shutil.copytree(tiny_t2v, root / "tiny-wan-t2v")  # TinyT2VSamplingParam: 128x128, 17 frames, 10 steps
    i2v = shutil.copytree(tiny_i2v, root / "tiny-wan-i2v")
    from PIL import Image

    image = root / "cat.png"
    Image.new("RGB", (48, 32), (200, 120, 40)).save(image)
    from fastvideo.testing.tiny_wan22 import make_tiny_wan22

    # The Wan2.2 scripts run on tiny Wan2.2 A14B folders (two experts, boundary_ratio).
    moe = {task: make_tiny_wan22(root / task, task) for task in ("t2v-moe", "i2v-moe")}
    return {"t2v": t2v, "i2v": i2v, "image": image, "t2v_moe": moe["t2v-moe"], "i2v_moe": moe["i2v-moe"]}


def run_example(name: str, model: Path, tmp_path: Path, image: Path | None = None,
                timeout: float = 420) -> subprocess.CompletedProcess:
    text = (EXAMPLES / name).read_text()
    text, n = MODEL_ID.subn(repr(str(model)), text)
    assert n >= 1, f"{name}: no model id to replace"
    text = SIZE.sub(lambda m: m.group(1) + m.group(2) + SMALL[m.group(1)], text)
    if image is not None:
        text = IMAGE_URL.sub(repr(str(image)), text)
    script = tmp_path / name
    script.write_text(text)
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, script.name], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=timeout)


def videos(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.mp4"))


def test_examples_are_verbatim_copies_with_a_source_header():
    for path in sorted(EXAMPLES.glob("*.py")):
        head = path.read_text().splitlines()[:3]
        assert head[0].startswith("# Source: hao-ai-lab/FastVideo examples/inference/basic/" + path.name)
        assert "at commit " in head[0]


def test_basic_wan21_t2v(models, tmp_path):
    proc = run_example("basic.py", models["t2v"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert len(videos(tmp_path / "video_samples")) == 2  # two prompts, one model load


def test_basic_wan2_2_t2v_two_processes(models, tmp_path):
    """num_gpus=2 (gloo workers on a CPU machine), dit_cpu_offload and pin_cpu_memory (a no-op without CUDA)."""
    proc = run_example("basic_wan2_2.py", models["t2v_moe"], tmp_path, timeout=540)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert len(videos(tmp_path / "video_samples_wan2_2_14B_t2v")) == 2


def test_basic_wan2_2_i2v(models, tmp_path):
    proc = run_example("basic_wan2_2_i2v.py", models["i2v_moe"], tmp_path, image=models["image"])
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert len(videos(tmp_path / "video_samples_wan2_2_14B_i2v")) == 1


def test_basic_mps_pipeline_config(models, tmp_path):
    """PipelineConfig.from_pretrained, text_encoder_precisions=["fp16"], pipeline_config=, disable_autocast."""
    proc = run_example("basic_mps.py", models["t2v"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert len(videos(tmp_path / "outputs")) == 2


@pytest.mark.parametrize(("name", "option", "message"), [
    ("basic_dmd.py", "VSA_sparsity", "VSA_sparsity=0.8 is not supported"),
])
def test_examples_for_missing_features_fail_clearly(models, tmp_path, name, option, message):
    proc = run_example(name, models["t2v"], tmp_path, timeout=120)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "UnsupportedOptionError" in last and option in last and message in last, last
    assert not list(tmp_path.rglob("*.mp4"))
