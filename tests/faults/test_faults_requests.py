"""Faults in generation requests (issue 20, items 4-5).

* NaN / Inf numbers are refused up front (CLI: exit 2 before any model loads; API: ``InvalidRequest``
  naming the field), never a NaN sidecar or a traceback after the whole run;
* a user script that starts several ranks without an ``if __name__ == "__main__":`` guard works: the
  ranks run in fresh interpreters that never re-run the script.
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fastvideo.configs.sample.base import SamplingParam
from fastvideo.configs.sample.wan import TinyT2VSamplingParam
from fastvideo.entrypoints.cli.main import main
from fastvideo.errors import InvalidRequest
from fastvideo.pipelines.validation import check_sampling, validate_sampling

pytestmark = pytest.mark.timeout(180)


def _cli() -> list[str]:
    exe = Path(sys.executable).with_name("fastvideo")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "fastvideo.entrypoints.cli.main"]


# ----------------------------------------------------------------------------- 4. NaN / Inf


@pytest.mark.parametrize("option,value,field", [
    ("--guidance-scale", "nan", "guidance-scale"),
    ("--guidance-scale", "inf", "guidance-scale"),
    ("--flow-shift", "nan", "flow-shift"),
    ("--strength", "inf", "strength"),
    ("--flow-shift", "-inf", "flow-shift"),
])
def test_cli_refuses_non_finite_numbers_before_loading(tiny_t2v, tmp_path, capsys, option, value, field):
    out = tmp_path / "out"
    start = time.monotonic()
    with pytest.raises(SystemExit) as exc:
        main(["generate", "--model", str(tiny_t2v), "--prompt", "a boat", "--num-frames", "5", "--height", "48",
              "--width", "48", "--steps", "1", "--output", str(out), f"{option}={value}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: must be a finite number, got {value!r}" in err and field in err
    assert not out.exists()  # nothing written, not even the folder
    assert time.monotonic() - start < 2.0  # no model was loaded


def test_cli_non_finite_real_process_fast_and_no_traceback(tiny_t2v, tmp_path):
    out = tmp_path / "out"
    start = time.monotonic()
    res = subprocess.run(_cli() + ["generate", "--model", str(tiny_t2v), "--prompt", "a boat", "--output", str(out),
                                   "--guidance-scale", "nan"], capture_output=True, text=True, timeout=60)
    took = time.monotonic() - start
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert "--guidance-scale: must be a finite number, got 'nan'" in res.stderr
    assert not out.exists()
    assert took < 20, took  # argument parsing only: no torch model load
    print(f"refused in {took:.1f} s")


@pytest.mark.parametrize("field", ["guidance_scale", "flow_shift", "strength"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_validation_names_each_non_finite_field(tmp_path, field, value):
    sp = TinyT2VSamplingParam().update(prompt="a boat", output_path=str(tmp_path / "out"), **{field: value})
    errors = validate_sampling(sp, "t2v", check_output=False)
    assert [e.field for e in errors] == [field]  # reported once, as non-finite (also for t2v's unused strength)
    assert f"{field} must be a finite number" in str(errors[0])
    with pytest.raises(InvalidRequest, match=f"{field} must be a finite number"):
        check_sampling(sp, "v2v" if field == "strength" else "t2v")


def test_validation_covers_float_fields_of_subclasses_and_extra():
    from dataclasses import dataclass

    @dataclass
    class MySP(SamplingParam):
        cfg_rescale: float = 0.7

    sp = MySP(prompt="x", cfg_rescale=math.nan, extra={"eta": math.inf, "label": "ok"})
    fields = {e.field for e in validate_sampling(sp, check_output=False)}
    assert fields == {"cfg_rescale", "extra['eta']"}
    assert validate_sampling(MySP(prompt="x"), check_output=False) == []


# ----------------------------------------------------------------------------- 5. no __main__ guard


def test_multi_rank_script_without_main_guard(tiny_t2v, tmp_path):
    out = tmp_path / "videos"
    script = tmp_path / "no_guard.py"
    script.write_text(textwrap.dedent(f"""
        # no `if __name__ == "__main__":` on purpose: the ranks must not run this again
        from fastvideo import VideoGenerator

        print("script body ran", flush=True)
        gen = VideoGenerator.from_pretrained({str(tiny_t2v)!r}, num_gpus=2)
        res = gen.generate_video("a boat", height=48, width=48, num_frames=5, num_inference_steps=2,
                                 output_path={str(out)!r})
        gen.shutdown()
        print("VIDEO", res["video_path"], flush=True)
    """))
    start = time.monotonic()
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=150, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("script body ran") == 1  # only the parent ran the script
    video = Path(res.stdout.split("VIDEO", 1)[1].strip())
    assert video.is_file() and video.parent == out and video.stat().st_size > 0
    print(f"2 CPU ranks, no guard: {time.monotonic() - start:.1f} s")
