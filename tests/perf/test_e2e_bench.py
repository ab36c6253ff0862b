"""``fastvideo bench --e2e`` on the CPU with a tiny random-weight model: ours vs Diffusers, step cache, preset."""

from __future__ import annotations

import json


def test_e2e_bench_cli_on_tiny_models(tmp_path, capsys):
    from fastvideo.entrypoints.cli.main import main

    out = tmp_path / "e2e.json"
    rc = main(["bench", "--e2e", "--tiny", "--model-dir", str(tmp_path / "model"), "--height", "32", "--width", "32",
               "--frames", "5", "--steps", "6", "--compare", "diffusers", "--step-cache", "0.5",
               "--preset", "fastwan-dmd-3step", "--json", str(out), "--out-dir", str(tmp_path / "videos")])
    assert rc == 0
    r = json.loads(out.read_text())
    ours, ref = r["contenders"]["ours"], r["contenders"]["diffusers"]
    base = ours["baseline"]
    for row in (base, ref):
        assert row["wall_s"] > 0 and row["stages_s"]["denoising"] > 0 and row["stages_s"]["decoding"] > 0
        assert sum(row["stages_s"].values()) <= row["wall_s"] * 1.01
        assert (tmp_path / "videos" / row["video"].split("/")[-1]).is_file()
    assert r["ratios"]["diffusers_over_ours_wall"] == ref["wall_s"] / base["wall_s"]
    assert ref["options"]["attention_backend"] in ref["options"]["attention_backend_forward_s"]
    cached = ours["step_cache_0.5"]
    assert cached["step_cache"]["skipped_steps"] and 0 < cached["ssim"] <= 1 and cached["psnr_db"] > 0
    preset = ours["preset_fastwan-dmd-3step"]
    assert preset["steps"] == 3
    # reused on a second call (no rewrite)
    assert (tmp_path / "model" / "random_weights.json").is_file()
    text = capsys.readouterr().out
    assert "diffusers_over_ours_wall" in text and "SSIM" in text


def test_e2e_rejects_bad_options(tmp_path):
    from fastvideo.entrypoints.cli.main import main

    assert main(["bench", "--e2e", "--tiny", "--step-cache", "x"]) == 2
    assert main(["bench", "--e2e", "--tiny", "--preset", "nope", "--model-dir", str(tmp_path / "m")]) == 2
