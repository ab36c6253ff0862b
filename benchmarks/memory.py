"""Memory modes under emulated small GPUs: one guided denoising step, resident vs block streaming vs fp8.

One process, one GPU, random bf16 weights built from the architecture configs (no hub access needed).  Each
case measures, in the same run:

* ``resident``: the whole DiT on the GPU, CFG batched (B = 2), no memory cap: the baseline;
* ``resident, CFG as two passes``: the same weights, two B = 1 forwards (the streamed runs' CFG);
* ``block_stream``: the blocks in pinned CPU memory streamed through device slots
  (fastvideo.pipelines.streaming), CFG as two passes, the FFN and head in 8192-token chunks, under a
  ``torch.cuda.set_per_process_memory_fraction`` cap emulating a smaller card; the number of slots is chosen
  from the cap: a first step with 2 slots measures the activation peak, the rest of the cap becomes slots;
* ``block_stream`` with fp8 weights (e4m3, per-channel scales, bf16 compute) under its cap;

and reports the step time (median of ``--steps`` after ``--warmup``), the peak allocated GPU memory, the peak
host RSS, whether it fit the cap, and the ratio to the resident baseline of the same run; plus the DiT
output's relative L2 of fp8 against bf16 (same input, first forward).

Cases (``--cases``; each fits one 10-minute command on an H100):

* ``14b-720p``: Wan2.1-14B, 720x1280x81; block_stream bf16 at 12 GB, fp8 at 16 GB (Wan2.2-A14B's experts have
  this architecture: with one expert in flight at a time its step is this one);
* ``1.3b-480p``: Wan2.1-1.3B, 480x832x81 at 4 GB;
* ``5b-720p``: Wan2.2-TI2V-5B's DiT (48 latent channels, 16x VAE), 704x1280x121 at 8 GB.

    python benchmarks/memory.py --cases 14b-720p --json docs/benchmarks/runs/memory-14b.json
    python benchmarks/memory.py --cases 1.3b-480p 5b-720p --json docs/benchmarks/runs/memory-small.json

writes the JSON (after every run, so a cut-short command keeps what it measured) and a markdown table next to
it (``.md``), with the GPU named.  ``--tiny`` runs a tiny architecture (CPU or GPU, seconds) to check the script.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastvideo.configs.models.dits.wan import WanVideoConfig  # noqa: E402
from fastvideo.layers.chunking import chunk_dit  # noqa: E402
from fastvideo.layers.quant import quantize_linears_fp8  # noqa: E402
from fastvideo.models.dits.wan import WanTransformer3DModel  # noqa: E402
from fastvideo.perf.bench import environment, write_json  # noqa: E402
from fastvideo.pipelines.memory_modes import (  # noqa: E402
    FFN_CHUNK_TOKENS,
    growable_segments,
    peak_host_bytes,
    peak_host_reset,
)
from fastvideo.pipelines.streaming import BlockStreamer, block_nbytes, choose_slots  # noqa: E402

GB = 10**9  # card sizes are sold in GB
CASES: dict[str, dict[str, Any]] = {
    "14b-720p": dict(arch=dict(num_attention_heads=40, ffn_dim=13824, num_layers=40), frames=81, height=720,
                     width=1280, spatial=8, bf16_cap_gb=12, fp8=True, fp8_cap_gb=16),
    "1.3b-480p": dict(arch={}, frames=81, height=480, width=832, spatial=8, bf16_cap_gb=4, fp8=False,
                      fp8_cap_gb=None),
    "5b-720p": dict(arch=dict(num_attention_heads=24, ffn_dim=14336, num_layers=30, in_channels=48, out_channels=48),
                    frames=121, height=704, width=1280, spatial=16, bf16_cap_gb=8, fp8=False, fp8_cap_gb=None),
    "tiny": dict(arch=dict(num_attention_heads=2, attention_head_dim=32, ffn_dim=128, num_layers=4, text_dim=64,
                           freq_dim=32), frames=9, height=64, width=64, spatial=8, bf16_cap_gb=None, fp8=True, fp8_cap_gb=None),
}


def build(arch: dict, device: torch.device) -> WanTransformer3DModel:
    """Random weights, built on ``device`` in bf16 (the reference's fp32 modules in fp32)."""
    import re

    cfg = WanVideoConfig(**arch)
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = WanTransformer3DModel(cfg)
    finally:
        torch.set_default_dtype(default)
    for name, p in model.named_parameters():
        if any(re.search(k, name) for k in cfg.keep_fp32_modules):
            p.data = p.data.float()
    return model.eval().requires_grad_(False)


def inputs(cfg: WanVideoConfig, case: dict, device: torch.device):
    g = torch.Generator(device="cpu").manual_seed(1)
    t_lat = (case["frames"] - 1) // 4 + 1
    s = case["spatial"]
    x = torch.randn(1, cfg.in_channels, t_lat, case["height"] // s, case["width"] // s, generator=g)
    cond = torch.randn(1, 512, cfg.text_dim, generator=g)
    uncond = torch.randn(1, 512, cfg.text_dim, generator=g)
    return x.to(device, torch.bfloat16), cond.to(device, torch.bfloat16), uncond.to(device, torch.bfloat16)


def guided_step(model, x, cond, uncond, batched: bool) -> torch.Tensor:
    t = torch.tensor(999.0, device=x.device)
    if batched:
        both = model(torch.cat([x, x]), t.expand(2), torch.cat([cond, uncond])).float()
        c, u = both.chunk(2)
    else:
        c = model(x, t.expand(1), cond).float()
        u = model(x, t.expand(1), uncond).float()
    return u + 5.0 * (c - u)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(fn, device, warmup: int, steps: int) -> dict[str, Any]:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    peak_host_reset()
    times = []
    try:
        for i in range(warmup + steps):
            sync(device)
            t0 = time.perf_counter()
            out = fn()
            sync(device)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    except torch.OutOfMemoryError as exc:
        return {"fits": False, "error": str(exc).splitlines()[0][:300]}
    r = {"fits": True, "step_s": statistics.median(times), "step_s_all": times,
         "peak_host_bytes": peak_host_bytes(), "output": out}
    if device.type == "cuda":
        r["peak_gpu_bytes"] = int(torch.cuda.max_memory_allocated(device))
        r["peak_gpu_reserved_bytes"] = int(torch.cuda.max_memory_reserved(device))  # what the cap limits
    return r


def set_cap(device, cap_gb: float | None) -> float | None:
    if device.type != "cuda":
        return None
    total = torch.cuda.get_device_properties(device).total_memory
    frac = 1.0 if cap_gb is None else min(1.0, cap_gb * GB / total)
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(frac, device)
    return frac


def stream_run(model, x, cond, uncond, device, cap_gb, warmup, steps, ffn_chunk: str = "auto") -> dict[str, Any]:
    """block_stream under ``cap_gb``: slots from a 2-slot probe step's peak, then timed.

    ``ffn_chunk``: ``auto`` chunks the FFN and head (8192 tokens) only when the probe does not fit without it,
    as the engine's planner does (chunks change cuBLAS's GEMM shapes, so the output is no longer bit-identical
    to the unchunked resident one: rel. L2 1.2e-4 at 14B 720p on an H100), ``always`` / ``never`` force it."""
    model.to("cpu")
    if device.type == "cuda":
        torch.cuda.empty_cache()
    streamer = BlockStreamer(device, 2).install(model)
    set_cap(device, cap_gb)
    block = block_nbytes(model.blocks[0])
    chunked = ffn_chunk == "always"

    def probe_step():
        chunk_dit(model, FFN_CHUNK_TOKENS if chunked else None)
        if device.type == "cuda":
            torch.cuda.empty_cache()
        with torch.no_grad(), streamer.use(model):
            return measure(lambda: guided_step(model, x, cond, uncond, False), device, 0, 1)

    probe = probe_step()
    if not probe["fits"] and ffn_chunk == "auto":
        chunked = True
        probe = probe_step()
    slots = 2
    if probe["fits"] and device.type == "cuda" and cap_gb:
        # The cap limits reserved memory (allocations plus the allocator's cached blocks): the probe's reserved
        # peak less its 2 slots is the rest of the step; 8% of the cap stays free (run 46: 3% left the 1.3B case
        # 192 MiB short).
        slots = choose_slots(int(cap_gb * GB * 0.92), block, probe["peak_gpu_reserved_bytes"] - 2 * block,
                             len(streamer.packed))
        streamer.set_slots(slots)
    with torch.no_grad(), streamer.use(model):
        r = measure(lambda: guided_step(model, x, cond, uncond, False), device, warmup, steps)
    r.update(slots=slots, block_bytes=block, host_pinned_bytes=streamer.host_bytes(), ffn_chunked=chunked,
             probe_peak_gpu_bytes=probe.get("peak_gpu_bytes"), probe_peak_gpu_reserved_bytes=probe.get(
                 "peak_gpu_reserved_bytes"), probe_error=probe.get("error"))
    set_cap(device, None)  # lifted before the blocks go back on the device
    streamer.uninstall()
    chunk_dit(model, None)
    return r


def resident_reference(model, x, cond, uncond, device, chunked: bool) -> torch.Tensor:
    """The resident two-pass output with the FFN chunked or not (what a streamed run must equal bit for bit)."""
    model.to(device)
    chunk_dit(model, FFN_CHUNK_TOKENS if chunked else None)
    try:
        with torch.no_grad():
            return guided_step(model, x, cond, uncond, False)
    finally:
        chunk_dit(model, None)


def run_case(name: str, warmup: int, steps: int, device: torch.device, results: dict, path: Path | None,
             ffn_chunk: str = "auto"):
    case = CASES[name]
    cfg = WanVideoConfig(**case["arch"])
    out: dict[str, Any] = {"case": name, "frames": case["frames"], "height": case["height"], "width": case["width"],
                           "layers": cfg.num_layers, "hidden": cfg.hidden_size, "runs": {}}
    results["cases"][name] = out
    runs = out["runs"]

    def save(key, r):
        runs[key] = {k: v for k, v in r.items() if k != "output"}
        base = runs.get("resident", {}).get("step_s")
        if base and r.get("step_s"):
            runs[key]["ratio_to_resident"] = r["step_s"] / base
        if path:
            write_json(results, path)
            path.with_suffix(".md").write_text(table(results))

    set_cap(device, None)
    model = build(case["arch"], device)
    x, cond, uncond = inputs(cfg, case, device)
    out["weights_bytes"] = sum(p.numel() * p.element_size() for p in model.parameters())
    with torch.no_grad():
        r = measure(lambda: guided_step(model, x, cond, uncond, True), device, warmup, steps)
    ref = r.pop("output", None)
    save("resident", r)
    with torch.no_grad():
        r = measure(lambda: guided_step(model, x, cond, uncond, False), device, warmup, steps)
    ref_two = r.pop("output", None)
    save("resident, CFG as two passes", r)
    cap = case["bf16_cap_gb"]
    r = stream_run(model, x, cond, uncond, device, cap, warmup, steps, ffn_chunk)
    set_cap(device, None)
    if r.get("output") is not None and ref_two is not None:  # the same two-pass CFG, weights streamed
        same = ref_two if not r["ffn_chunked"] else resident_reference(model, x, cond, uncond, device, True)
        r["bit_identical_to_resident"] = bool(torch.equal(r["output"], same))  # with the same FFN chunking
        r["rel_l2_vs_resident"] = ((r["output"] - ref_two).norm() / ref_two.norm()).item()
    save(f"block_stream bf16, {cap} GB cap" if cap else "block_stream bf16", r)
    if case["fp8"]:
        model.to(device)
        quantize_linears_fp8(model, include=lambda n: n.startswith("blocks."))
        with torch.no_grad():
            r = measure(lambda: guided_step(model, x, cond, uncond, True), device, warmup, steps)
        if r.get("output") is not None and ref is not None:
            r["rel_l2_vs_bf16"] = ((r["output"] - ref).norm() / ref.norm()).item()
        save("resident fp8", r)
        cap = case["fp8_cap_gb"]
        r = stream_run(model, x, cond, uncond, device, cap, warmup, steps, ffn_chunk)
        set_cap(device, None)
        save(f"block_stream fp8, {cap} GB cap" if cap else "block_stream fp8", r)
    model = None  # noqa: F841 (the weights go before the next case)
    if device.type == "cuda":
        torch.cuda.empty_cache()


def fmt_gib(n) -> str:
    return "-" if n is None else f"{n / 2**30:.2f}"


def table(results: dict) -> str:
    env = results["environment"]
    lines = [f"GPU: {env.get('gpu')} ({env.get('gpu_memory_gb')} GiB), torch {env.get('torch')}, "
             f"{env.get('date')}; one guided step (cond + uncond), random bf16 weights", "",
             "| case | run | fits | step (s) | x resident | peak GPU (GiB) | peak host (GiB) | slots | note |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, case in results["cases"].items():
        for key, r in case["runs"].items():
            note = []
            if r.get("ffn_chunked"):
                note.append("FFN chunked")
            if "bit_identical_to_resident" in r:
                note.append("bit-identical" if r["bit_identical_to_resident"] else "NOT bit-identical")
            if "rel_l2_vs_bf16" in r:
                note.append(f"rel. L2 vs bf16 {r['rel_l2_vs_bf16']:.2e}")
            if not r.get("fits"):
                note.append(r.get("error", "")[:80])
            step = f"{r['step_s']:.3f}" if r.get("step_s") else "-"
            ratio = f"{r['ratio_to_resident']:.3f}" if r.get("ratio_to_resident") else "-"
            lines.append(f"| {name} {case['width']}x{case['height']}x{case['frames']} | {key} | "
                         f"{'yes' if r.get('fits') else 'no'} | {step} | {ratio} | {fmt_gib(r.get('peak_gpu_bytes'))} | "
                         f"{fmt_gib(r.get('peak_host_bytes'))} | {r.get('slots', '-')} | {'; '.join(note)} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", nargs="+", default=["14b-720p", "1.3b-480p", "5b-720p"],
                    choices=[c for c in CASES if c != "tiny"])
    ap.add_argument("--tiny", action="store_true", help="a tiny architecture instead (checks the script)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--ffn-chunk", choices=("auto", "always", "never"), default="auto",
                    help="streamed runs: chunk the FFN only when the cap needs it (auto), or always / never")
    ap.add_argument("--fixed-segments", action="store_true", help="keep the default (fixed-size) allocator segments")
    ap.add_argument("--json", type=Path, default=None, help="results JSON (the table goes next to it as .md)")
    args = ap.parse_args(argv)
    device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    # The engine's streaming and offload modes switch to growable allocator segments (run 46: without them
    # every streamed case fragmented past its cap); the resident baselines run on them too, so the ratios
    # compare modes, not allocators.  --fixed-segments keeps the default allocator.
    grow = not args.fixed_segments and growable_segments(device, print)
    results: dict[str, Any] = {"environment": environment(), "cases": {},
                               "allocator": "expandable_segments" if grow else os.environ.get(
                                   "PYTORCH_CUDA_ALLOC_CONF", "default")}
    for name in (["tiny"] if args.tiny else args.cases):
        run_case(name, args.warmup, args.steps, device, results, args.json, args.ffn_chunk)
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
