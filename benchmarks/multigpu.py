"""Multi-GPU DiT step benchmark: Wan2.1-1.3B, 480x832, 81 frames, CFG, 1 / 2 / 4 GPUs.

Measures one *guided* denoising step (conditional + unconditional DiT passes,
combined with the guidance scale) through fastvideo's own ``CFGPredictor`` and
``WanTransformer3DModel`` under each parallel layout, and checks that every
layout's output agrees with the 1-GPU output.

* Weights are random (no download), built directly on the device in bf16 from
  ``WanVideoConfig()`` defaults (the T2V 1.3B architecture), identical on every
  run (seeded device generator).
* Shapes: latents [1, 16, 21, 60, 104] (480x832, 81 frames), 512 text tokens,
  guidance scale 5 -> 32,760 video tokens per pass.
* Timing: ``--warmup`` steps, then ``--iters`` steps timed with CUDA events on
  every rank; a step's time is the slowest rank's; the median is reported.
* Agreement: the 1-GPU run saves its guided prediction (``--ref``); every other
  layout reports rel L2 = ||out - ref|| / ||ref|| (must be < 1e-2 in bf16).

Layouts are ``CxS`` (CFG degree x SP size): ``1x1`` (one GPU, cond+uncond batched),
``2x1`` (CFG parallel), ``1x2`` (SP 2, cond+uncond batched), ``2x2``, ``1x4``, ``2x4``, ``1x8``
(a default layout whose SP size does not divide the heads is left out: 12 heads, SP 8).

Other architectures and sizes: ``--arch wan2.1-t2v-14b --height 720 --width 1280`` (40 heads,
75,600 tokens; about 47 GB per GPU for the batched CFG pair), with ``--warmup 1 --iters 2``.

Run (self-spawning, one process per GPU, NCCL)::

    python benchmarks/multigpu.py --gpus 1 2 4 --json multigpu.json

or one GPU count per invocation under torchrun (run N=1 first: it writes the reference)::

    torchrun --nproc-per-node 4 benchmarks/multigpu.py --json multigpu4.json

``--fsdp`` shards the DiT's weights over the ranks first (``use_fsdp_inference``) and adds each rank's
parameter bytes; every row has each rank's peak GPU memory (``peak_memory_gib_per_rank``)::

    python benchmarks/multigpu.py --gpus 1 2 --fsdp --json OUT     # and without --fsdp, to compare

CPU smoke test (tiny DiT, gloo, fp32)::

    python benchmarks/multigpu.py --tiny --gpus 1 2 --json /tmp/tiny.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastvideo.attention.backends import ROLES, get_attn_backend  # noqa: E402
from fastvideo.configs.models.dits.wan import WanVideoConfig  # noqa: E402
from fastvideo.distributed import parallel_state as ps  # noqa: E402
from fastvideo.models.dits.wan import WanTransformer3DModel  # noqa: E402
from fastvideo.perf.bench import ARCHS  # noqa: E402
from fastvideo.pipelines.stages.denoising import CFGPredictor  # noqa: E402

DEFAULT_LAYOUTS = {1: ["1x1"], 2: ["2x1", "1x2"], 4: ["2x2", "1x4"], 8: ["2x4", "1x8"]}
TINY_DIT = dict(patch_size=[1, 2, 2], num_attention_heads=4, attention_head_dim=16, in_channels=16, out_channels=16,
                text_dim=32, freq_dim=32, ffn_dim=64, num_layers=2, cross_attn_norm=True,
                qk_norm="rms_norm_across_heads", eps=1e-6)
TINY_SHAPE = dict(latent=(1, 16, 3, 6, 10), text_len=8, height=48, width=80, frames=9)  # 45 tokens: padding on
GUIDANCE = 5.0
TOLERANCE = {"bf16": 1e-2, "fp32": 1e-4}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--gpus", type=int, nargs="+", default=None,
                   help="GPU counts to run (self-spawning); default 1 2 4 (those that fit); "
                   "under torchrun: WORLD_SIZE")
    p.add_argument("--layouts", nargs="+", default=None, help="CxS layouts (default: per GPU count)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--json", default=None, help="write results here")
    p.add_argument("--ref", default=None, help="1-GPU output file, written by the 1-GPU run and read by the others "
                   "(default: multigpu_1gpu_output[_tiny].pt beside --json, else in the temp folder)")
    p.add_argument("--arch", choices=sorted(ARCHS), default="wan2.1-t2v-1.3b")
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=832)
    p.add_argument("--frames", type=int, default=81)
    p.add_argument("--tiny", action="store_true", help="tiny DiT on the CPU (gloo, fp32): a smoke test")
    p.add_argument("--attention-backend", default=None, help="FASTVIDEO_ATTENTION_BACKEND for the run")
    p.add_argument("--fsdp", action="store_true",
                   help="shard the DiT's weights over the ranks (use_fsdp_inference: fastvideo.distributed.fsdp) "
                        "and report each rank's parameter bytes and peak memory")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- model and inputs


def arch_config(args) -> WanVideoConfig:
    return WanVideoConfig.from_dict(TINY_DIT) if args.tiny else WanVideoConfig(**ARCHS[args.arch])


def run_shape(args) -> dict:
    if args.tiny:
        return TINY_SHAPE
    if args.height % 16 or args.width % 16 or (args.frames - 1) % 4:
        raise SystemExit(f"--height/--width must be multiples of 16 and --frames 4n+1, got "
                         f"{args.height}x{args.width}x{args.frames}")
    latent = (1, 16, (args.frames - 1) // 4 + 1, args.height // 8, args.width // 8)
    return dict(latent=latent, text_len=512, height=args.height, width=args.width, frames=args.frames)


def default_layouts(world: int, heads: int) -> list[str]:
    """The layouts timed for ``world`` ranks; those whose SP size does not divide ``heads`` are left out."""
    layouts = DEFAULT_LAYOUTS.get(world, [f"1x{world}"])
    return [lay for lay in layouts if heads % int(lay.split("x")[1]) == 0]


def build_model(args, device: torch.device, dtype: torch.dtype) -> WanTransformer3DModel:
    """Random weights, built on ``device`` directly, identical on every rank and run."""
    cfg = arch_config(args)
    with torch.device("meta"):
        model = WanTransformer3DModel(cfg)
    model = model.to_empty(device=device)
    gen = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if p.ndim == 1 and "norm" in name:
                p.fill_(1.0)
            elif name.endswith("bias"):
                p.normal_(0.0, 0.02, generator=gen)
            elif name.endswith("modulation"):
                p.normal_(0.0, 1.0 / math.sqrt(p.shape[-1]), generator=gen)
            else:
                fan_in = math.prod(p.shape[1:]) if p.ndim > 1 else p.shape[0]
                p.normal_(0.0, 1.0 / math.sqrt(fan_in), generator=gen)
    # Keep in fp32 what the weight loader keeps in fp32 (time embedder, modulation, cross-attn norm).
    import re

    model = model.to(dtype)
    for name, p in model.named_parameters():
        if any(re.search(pat, name) for pat in cfg.keep_fp32_modules):
            p.data = p.data.float()
    return model.eval()


def make_inputs(args, device: torch.device):
    shape = run_shape(args)
    text_dim = arch_config(args).text_dim
    g = torch.Generator().manual_seed(1)  # CPU generator: identical everywhere
    latents = torch.randn(shape["latent"], generator=g)
    cond = torch.randn(1, shape["text_len"], text_dim, generator=g)
    uncond = torch.randn(1, shape["text_len"], text_dim, generator=g)
    t = torch.tensor(500.0)  # the step's timestep: a scalar (CFGPredictor batches it)
    return latents.to(device), t.to(device), cond.to(device), uncond.to(device)


# ----------------------------------------------------------------------------- one rank


def run_rank(rank: int, world: int, init_method: str, args, out_dir: str) -> None:
    if args.attention_backend:
        os.environ["FASTVIDEO_ATTENTION_BACKEND"] = args.attention_backend
    use_cuda = torch.cuda.is_available() and not args.tiny
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
        try:  # device_id: torch >= 2.3
            dist.init_process_group("nccl", init_method=init_method, rank=rank, world_size=world, device_id=device)
        except TypeError:
            dist.init_process_group("nccl", init_method=init_method, rank=rank, world_size=world)
    else:
        device = torch.device("cpu")
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
        dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=world)
    dtype = torch.float32 if (args.tiny or not use_cuda) else torch.bfloat16
    try:
        fsdp = None
        if args.fsdp:  # as the engine does: built on the CPU, each rank's shard moved to its device
            from fastvideo.distributed.fsdp import shard_dit

            model = build_model(args, torch.device("cpu"), dtype)
            fsdp = shard_dit(model, device)
        else:
            model = build_model(args, device, dtype)
        x, t, cond, uncond = make_inputs(args, device)
        results = []
        for layout in args.layouts or default_layouts(world, arch_config(args).num_attention_heads):
            cfg_degree, sp_size = (int(v) for v in layout.lower().split("x"))
            if cfg_degree * sp_size != world:
                raise SystemExit(f"layout {layout} needs {cfg_degree * sp_size} ranks, have {world}")
            ps.init_parallel_groups(sp_size, cfg_degree)
            try:
                row = time_layout(model, x, t, cond, uncond, layout, args, device, dtype)
                if fsdp is not None:
                    row["fsdp_param_bytes_per_rank"] = fsdp["param_bytes_per_rank"]
                    row["fsdp_full_param_bytes"] = fsdp["full_param_bytes"]
                results.append(row)
            finally:
                ps.destroy_parallel_groups()
            dist.barrier()
        if rank == 0:
            Path(out_dir, f"world{world}.json").write_text(json.dumps(results))
    finally:
        dist.destroy_process_group()


def time_layout(model, x, t, cond, uncond, layout, args, device, dtype) -> dict:
    predictor = CFGPredictor(model, dtype, batch_cfg=True)
    use_cuda = device.type == "cuda"

    def step():
        with torch.inference_mode():
            return predictor(x, t, cond, uncond, None, GUIDANCE)

    for _ in range(args.warmup):
        step()
    times = []
    out = None
    for _ in range(args.iters):
        dist.barrier()
        if use_cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            out = step()
            end.record()
            end.synchronize()
            ms = start.elapsed_time(end)
        else:
            t0 = time.perf_counter()
            out = step()
            ms = (time.perf_counter() - t0) * 1e3
        slowest = torch.tensor([ms], dtype=torch.float64, device=device)
        dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
        times.append(float(slowest.item()))
    # All ranks hold the same guided prediction; check that across ranks too.
    out = out.float()
    spread = torch.tensor([out.abs().sum().item()], dtype=torch.float64, device=device)
    lo, hi = spread.clone(), spread.clone()
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    peak = torch.cuda.max_memory_allocated(device) if use_cuda else 0
    peaks = [torch.zeros(1, dtype=torch.float64, device=device) for _ in range(dist.get_world_size())]
    dist.all_gather(peaks, torch.tensor([peak / 2**30], dtype=torch.float64, device=device))
    result = {"layout": layout, "gpus": dist.get_world_size(), "median_ms": statistics.median(times),
              "min_ms": min(times), "times_ms": times, "peak_memory_gib": peak / 2**30,
              "peak_memory_gib_per_rank": [float(v.item()) for v in peaks], "fsdp": bool(args.fsdp),
              "ranks_agree": bool(lo.item() == hi.item())}
    if dist.get_rank() == 0:
        result.update(compare_with_reference(out.cpu(), layout, args, result["median_ms"]))
    return result


def compare_with_reference(out: torch.Tensor, layout: str, args, median_ms: float) -> dict:
    ref_path = Path(args.ref)
    if layout == "1x1":
        torch.save({"output": out, "median_ms": median_ms}, ref_path)
        return {"rel_l2_vs_1gpu": 0.0, "reference": str(ref_path), "baseline_ms": median_ms}
    if not ref_path.is_file():
        return {"rel_l2_vs_1gpu": None, "reference": None, "baseline_ms": None}
    ref = torch.load(ref_path)
    rel = float((out - ref["output"]).norm() / ref["output"].norm())
    return {"rel_l2_vs_1gpu": rel, "reference": str(ref_path), "baseline_ms": ref["median_ms"]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn_entry(rank: int, world: int, init_method: str, args, out_dir: str) -> None:
    run_rank(rank, world, init_method, args, out_dir)


# ----------------------------------------------------------------------------- driver


def environment(args) -> dict:
    use_cuda = torch.cuda.is_available() and not args.tiny
    return {
        "device": torch.cuda.get_device_name(0) if use_cuda else "cpu",
        "gpus_visible": torch.cuda.device_count() if use_cuda else 0,
        "torch": torch.__version__, "cuda": torch.version.cuda, "nccl": ".".join(map(str, torch.cuda.nccl.version()))
        if use_cuda else None, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": "tiny Wan DiT (fp32, CPU)" if args.tiny else f"{args.arch} architecture, random bf16 weights",
        "shape": run_shape(args), "guidance_scale": GUIDANCE,
        "attention_backend": {role: get_attn_backend(role=role).name for role in ROLES},
        "warmup": args.warmup, "iters": args.iters,
        "tolerance_rel_l2": TOLERANCE["fp32" if args.tiny else "bf16"],
    }


def print_table(rows: list[dict], env: dict) -> None:
    print(f"\n{env['model']} on {env['device']} | torch {env['torch']} | {env['date']}")
    print(f"{'GPUs':>4} {'layout':>6} {'median ms':>10} {'min ms':>9} {'speedup':>8} {'rel L2 vs 1 GPU':>16} "
          f"{'peak GiB':>9}")
    for r in rows:
        base = r.get("baseline_ms")
        speed = f"{base / r['median_ms']:.2f}x" if base else "-"
        rel = "-" if r.get("rel_l2_vs_1gpu") is None else f"{r['rel_l2_vs_1gpu']:.2e}"
        print(f"{r['gpus']:>4} {r['layout']:>6} {r['median_ms']:>10.1f} {r['min_ms']:>9.1f} {speed:>8} {rel:>16} "
              f"{r['peak_memory_gib']:>9.2f}")


def finish(rows: list[dict], args) -> int:
    env = environment(args)
    print_table(rows, env)
    tol = env["tolerance_rel_l2"]
    for r in rows:
        r["speedup_vs_1gpu"] = r["baseline_ms"] / r["median_ms"] if r.get("baseline_ms") else None
    bad = [r for r in rows if (r.get("rel_l2_vs_1gpu") is not None and r["rel_l2_vs_1gpu"] >= tol)
           or not r["ranks_agree"]]
    report = {**env, "results": rows, "ok": not bad}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
        print(f"wrote {args.json}")
    if bad:
        print(f"FAILED: outputs disagree (rel L2 >= {tol} or ranks differ): {[r['layout'] for r in bad]}")
        return 1
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.ref is None:
        folder = Path(args.json).resolve().parent if args.json else Path(tempfile.gettempdir())
        tag = "tiny" if args.tiny else f"{args.arch}_{args.height}x{args.width}x{args.frames}"
        args.ref = str(folder / f"multigpu_1gpu_output_{tag}.pt")
    if "WORLD_SIZE" in os.environ and "RANK" in os.environ:  # under torchrun: one GPU count
        world, rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
        out_dir = tempfile.mkdtemp(prefix="fv_bench_")  # only rank 0 writes (and reads) its results
        run_rank(rank, world, "env://", args, out_dir)
        if rank == 0:
            return finish(json.loads(Path(out_dir, f"world{world}.json").read_text()), args)
        return 0
    import torch.multiprocessing as mp

    available = torch.cuda.device_count() if (torch.cuda.is_available() and not args.tiny) else (os.cpu_count() or 1)
    gpus = args.gpus or [n for n in (1, 2, 4) if n <= max(available, 1)]
    rows: list[dict] = []
    for world in sorted(gpus):
        if torch.cuda.is_available() and not args.tiny and world > torch.cuda.device_count():
            print(f"skipping {world} GPUs: only {torch.cuda.device_count()} visible")
            continue
        with tempfile.TemporaryDirectory() as out_dir:
            init_method = f"tcp://127.0.0.1:{_free_port()}"
            t0 = time.perf_counter()
            if world == 1:  # no process to spawn for one rank
                run_rank(0, 1, init_method, args, out_dir)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()  # give GPU 0 back to the spawned ranks
            else:
                mp.start_processes(_spawn_entry, args=(world, init_method, args, out_dir), nprocs=world,
                                   start_method="spawn")
            part = json.loads(Path(out_dir, f"world{world}.json").read_text())
        print(f"{world} rank(s): {[r['layout'] for r in part]} in {time.perf_counter() - t0:.1f} s", flush=True)
        rows += part
        if args.json:  # a run cut short still leaves the GPU counts it finished
            Path(args.json).write_text(json.dumps({**environment(args), "results": rows, "partial": True}, indent=2))
    return finish(rows, args)


if __name__ == "__main__":
    sys.exit(main())
