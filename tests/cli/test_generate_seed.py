"""``fastvideo generate`` without ``--seed`` picks a random seed (like the studio), says it, and stores it in the
sidecar; passing that seed repeats the video exactly (issue 24)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np

from fastvideo.utils.media import read_video


def _generate(model, out, *extra):
    proc = subprocess.run([sys.executable, "-m", "fastvideo", "generate", "--model", str(model), "--prompt",
                           "a red circle", "--num-frames", "5", "--height", "32", "--width", "32", "--steps", "2",
                           "--quiet", "--output", str(out), *extra], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    video = proc.stdout.split()[0]
    return proc, video, json.loads(open(video[: -len(".mp4")] + ".json").read())


def test_random_seed_by_default_printed_stored_and_repeatable(tiny_t2v, tmp_path):
    runs = [_generate(tiny_t2v, tmp_path / f"out{i}.mp4") for i in range(2)]
    seeds = []
    for proc, _video, sidecar in runs:
        m = re.search(r"^seed (\d+) \(random; pass --seed (\d+) to repeat\)$", proc.stderr, re.M)
        assert m and m.group(1) == m.group(2), proc.stderr
        seed = int(m.group(1))
        assert sidecar["seed"] == seed and f"seed {seed}," in proc.stdout
        assert 0 <= seed < 2**31
        seeds.append(seed)
    assert seeds[0] != seeds[1] and seeds[0] != 1024  # not the old fixed default
    a, b = (read_video(video)[0] for _, video, _ in runs)
    assert not np.array_equal(a, b)  # two runs differ

    proc, video, sidecar = _generate(tiny_t2v, tmp_path / "again.mp4", "--seed", str(seeds[0]))
    assert "random" not in proc.stderr and sidecar["seed"] == seeds[0]
    assert np.array_equal(read_video(video)[0], a)  # and each one is reproducible
