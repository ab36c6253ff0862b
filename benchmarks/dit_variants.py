"""Toward the DiT floor: attention-kernel layouts, a kernel-category profile and compile variants.

One process, one GPU, the Wan2.1-T2V-1.3B architecture (random bf16 weights), 480x832x81:

1. ceilings (matmul 8192^3, cuDNN SDPA at the model's shape) and the FLOP floor, as ``fastvideo bench``;
2. SDPA at 1x12x32760x128 with q/k/v laid out as the model hands them over ([B, S, H, D] viewed as
   [B, H, S, D]) against contiguous [B, H, S, D], cuDNN and flash;
3. the compiled forward (``compile_dit_blocks``) with a profile summed per kernel category
   (attention, GEMM, Triton-generated elementwise, other) and the top kernels; each forward is also timed
   back to back (no host sync between forwards, as the denoising loop runs them) and queued behind a GPU
   spin (the host's start-up latency left out; on a power-capped GPU also the clocks of a rested board);
4. the same forward compiled with other Inductor settings, another RoPE formulation or q/k/v layout (``--variants``),
   each checked against the first variant's output.

Results go to ``--json`` after every part, so a run cut short still reports what it measured.

    python benchmarks/dit_variants.py --json OUT.json [--variants default coordinate max-autotune]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fastvideo.layers.rope as layers_rope  # noqa: E402
import fastvideo.models.dits.wan as wan  # noqa: E402
from fastvideo.attention.backends import ROLES, get_attn_backend  # noqa: E402
from fastvideo.attention.layer import set_attention_backend  # noqa: E402
from fastvideo.kernels import policy  # noqa: E402
from fastvideo.perf.bench import attention_ceilings, build_dits, dit_inputs, environment, rel_l2  # noqa: E402
from fastvideo.perf.flops import dit_forward_work  # noqa: E402
from fastvideo.perf.timing import matmul_ceiling, summarize, time_cuda  # noqa: E402

SHAPE = dict(frames=81, height=480, width=832)


def attention_layouts(heads=12, seq=32760, head_dim=128) -> dict:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    flop = 4 * heads * seq * seq * head_dim
    out = {}
    bshd = [torch.randn(1, seq, heads, head_dim, device="cuda", dtype=torch.bfloat16) for _ in range(3)]
    bhsd = [t.transpose(1, 2).contiguous() for t in bshd]
    views = [t.transpose(1, 2) for t in bshd]
    for kname, kernel in (("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash", SDPBackend.FLASH_ATTENTION)):
        for lname, qkv in (("bhsd_contiguous", bhsd), ("bshd_view", views)):
            def run(qkv=qkv, kernel=kernel):
                with sdpa_kernel([kernel]):
                    return torch.nn.functional.scaled_dot_product_attention(*qkv)

            t = time_cuda(run, warmup=3, iters=10)["median"]
            o = run()
            out[f"{kname}_{lname}"] = {"ms": t * 1e3, "tflops": flop / t / 1e12, "out_stride": list(o.stride())}
    return out


def categorize(name: str) -> str:
    n = name.lower()
    if n.startswith("triton"):  # Inductor's kernels (their names list the fused ops, attention's included)
        return "triton"
    if any(k in n for k in ("cudnn", "flash", "fmha", "attention", "sdpa")):
        return "attention"
    if any(k in n for k in ("gemm", "nvjet", "cutlass", "xmma", "sm90_", "matmul")):
        return "gemm"
    return "other"


def profile_summary(fn, top=25) -> dict:
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    rows = []
    for e in prof.key_averages():
        t = getattr(e, "device_time_total", None) or getattr(e, "cuda_time_total", 0)
        if t > 0 and e.key and not e.key.startswith(("ProfilerStep", "cudaDeviceSynchronize")):
            rows.append((e.key, t / 1e3, e.count))
    kernels = [r for r in rows if r[2] > 0]
    cats: dict[str, float] = {}
    for name, ms, _ in kernels:
        cats[categorize(name)] = cats.get(categorize(name), 0.0) + ms
    kernels.sort(key=lambda r: -r[1])
    return {"categories_ms": cats, "top": [{"kernel": n[:140], "ms": ms, "count": c} for n, ms, c in kernels[:top]],
            "idle_before_ms": idle_gaps(prof, top)}


def idle_gaps(prof, top: int) -> dict:
    """GPU idle time on the stream between consecutive kernels, summed by the kernel that waited (the one
    that starts after the gap): where the forward's wall time exceeds the sum of its kernels."""
    from torch.autograd import DeviceType

    spans = sorted((e.time_range.start, e.time_range.end, e.name) for e in prof.events()
                   if e.device_type == DeviceType.CUDA and not e.name.startswith("Memset"))
    gaps: dict[str, float] = {}
    end = None
    for start, stop, name in spans:
        if end is not None and start > end:
            gaps[name[:100]] = gaps.get(name[:100], 0.0) + (start - end) / 1e3
        end = stop if end is None else max(end, stop)
    ranked = sorted(gaps.items(), key=lambda kv: -kv[1])
    return {"total": sum(gaps.values()), "kernels": len(spans), "top": dict(ranked[:top])}


def time_queued(fn, iters: int, lead_s: float = 0.25) -> dict:
    """Median seconds of ``fn`` with the GPU held busy (a spin kernel) while the host enqueues it: the
    forward's GPU time without the host's start-up latency.  Against ``time_cuda`` (the isolated call),
    the difference is the time the GPU waits for the host at the start of a forward."""
    def spin():
        torch.cuda.synchronize()
        torch.cuda._sleep(int(lead_s * 1.5e9))  # cycles (~1.5-2 GHz): longer than the host's enqueue of a forward

    return time_cuda(fn, warmup=0, iters=iters, before=spin)


def time_back_to_back(fn, iters: int) -> dict:
    """Median seconds per call of ``fn`` run ``iters`` times back to back with no host sync between them
    (events between consecutive calls), as the denoising loop runs its forwards."""
    torch.cuda.synchronize()
    events = [torch.cuda.Event(enable_timing=True) for _ in range(iters + 1)]
    events[0].record()
    for i in range(iters):
        fn()
        events[i + 1].record()
    events[-1].synchronize()
    return summarize([a.elapsed_time(b) / 1000 for a, b in zip(events, events[1:])])


def apply_rope_swap(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE as ``x * cos' + swap_pairs(x) * sin'`` with cos/sin spread over all D channels: the same math as
    the model's ``apply_rope`` (rotate each pair (x[2j], x[2j+1])), another kernel shape for Inductor."""
    cos_full = cos.repeat_interleave(2, dim=-1)[None, :, None, :]
    sin_signed = torch.stack((-sin, sin), dim=-1).flatten(-2)[None, :, None, :]
    swapped = x.unflatten(-1, (-1, 2)).flip(-1).flatten(-2)
    return (x.float() * cos_full + swapped.float() * sin_signed).type_as(x)


def self_attention_heads_first(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """``SelfAttention.attend`` with q/k/v stored heads-first ([B, H, S, D] contiguous, handed over as
    [B, S, H, D] views), so cuDNN gets contiguous heads; same math as the model's token-first layout."""
    q, k, v = self.to_qkv(x).chunk(3, dim=-1)

    def heads_first(t):
        return t.unflatten(2, (self.num_heads, -1)).transpose(1, 2)

    cos, sin = rope  # [S, D/2] broadcasts against [B, H, S, D/2]

    def rope_(t):  # the model's apply_rope, heads-first
        x1, x2 = t.unflatten(-1, (-1, 2)).unbind(-1)
        return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2).type_as(t)

    q = rope_(heads_first(self.norm_q(q))).contiguous().transpose(1, 2)
    k = rope_(heads_first(self.norm_k(k))).contiguous().transpose(1, 2)
    v = heads_first(v).contiguous().transpose(1, 2)
    return self.attn(q, k, v).flatten(2).type_as(q)


class LinearKN(torch.nn.Module):
    """A Linear whose weight is stored [K, N] (transposed, contiguous): ``addmm(bias, x, W^T)`` hands cuBLAS
    the other operand layout, so it picks from other kernels; same math.  ``gelu``: bias + tanh-GELU in
    cuBLASLt's epilogue, as the model's FFN up gets from Inductor."""

    def __init__(self, linear: torch.nn.Linear, gelu: bool = False):
        super().__init__()
        self.weight_t = torch.nn.Parameter(linear.weight.detach().t().contiguous(), requires_grad=False)
        self.bias = linear.bias
        self.gelu = gelu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(0, -2)
        if self.gelu:
            out = torch._addmm_activation(self.bias, flat, self.weight_t, use_gelu=True)
        else:
            out = torch.addmm(self.bias, flat, self.weight_t)
        return out.unflatten(0, x.shape[:-1])


def weights_kn(model, which: str) -> None:
    """Store the blocks' projection weights [K, N]: ``which`` = "all" or "ffn-up"."""
    for block in model.blocks:
        mlp = block.ffn
        mlp.fc_in = LinearKN(mlp.fc_in, gelu=True)
        mlp.act = torch.nn.Identity()
        if which == "all":
            mlp.fc_out = LinearKN(mlp.fc_out)
            for attn in (block.self_attn, block.cross_attn):
                for name, child in list(attn.named_children()):
                    if isinstance(child, torch.nn.Linear):
                        setattr(attn, name, LinearKN(child))


def graph_forward(model, x, t, c):
    """The whole (compiled) forward captured in one CUDA graph: (replay function, its output)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            model(x, t, c)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = model(x, t, c)
    graph.replay()

    def replay():
        graph.replay()
        return static_out

    return replay, static_out.clone()


VARIANTS = ("default", "coordinate", "max-autotune", "rope-swap", "heads-first", "cross-fa4", "unfused-qk",
            "reduce-overhead", "graph-forward", "multi-kernel", "coordinate+multi-kernel", "qk-b1w4", "qk-b2w4",
            "qk-b8w8", "qk-b8w16", "no-coordinate", "loaded", "kn-weights", "kn-ffn-up", "no-quack", "cublaslt-gelu",
            "no-fold", "qk-rows", "fold-torch")


def compiled_forward(variant: str, x, t, c, profile: bool, reference=None, iters: int = 5) -> dict:
    import torch._dynamo
    import torch._inductor.config as ic

    from fastvideo.pipelines.compile import compile_dit_blocks

    torch._dynamo.reset()
    saved_multi_kernel = ic.triton.multi_kernel
    saved_rope, saved_self_attn = layers_rope.apply_rope, wan.SelfAttention.attend
    kernels = {}  # kernel policy changes (fastvideo.kernels.policy) for this variant
    mode, options = None, None  # compile_dit_blocks' defaults (coordinate-descent tuning on)
    if variant == "max-autotune":
        mode = "max-autotune-no-cudagraphs"
    elif variant == "rope-swap":  # (the unfused q/k path: apply_rope is not called by the fused kernel)
        layers_rope.apply_rope = apply_rope_swap
        kernels["qk_norm_rope"] = False
    elif variant == "heads-first":
        wan.SelfAttention.attend = self_attention_heads_first
    elif variant == "unfused-qk":  # q/k RMSNorm + RoPE left to Inductor instead of the fused Triton kernel
        kernels["qk_norm_rope"] = False
    elif variant == "no-coordinate":  # Inductor's defaults, as compile_dit was up to run 13
        options = {}
    elif variant == "reduce-overhead":  # Inductor's CUDA graphs, one per compiled block
        mode = "reduce-overhead"
    elif variant in ("multi-kernel", "coordinate+multi-kernel"):  # Inductor compiles persistent and looped
        ic.triton.multi_kernel = 1  # reductions and picks the faster at run time (on top of coordinate descent)
    elif variant.startswith("qk-b"):  # the whole-row q/k kernel with another launch shape: rows per program, warps
        rows, warps = variant[len("qk-b"):].split("w")
        kernels.update(qk_block=int(rows), qk_num_warps=int(warps), qk_chunked=False)
    elif variant == "qk-rows":  # the whole-row q/k kernel (before the chunked one)
        kernels["qk_chunked"] = False
    elif variant == "no-quack":  # no quack GEMMs: cuBLASLt, residual updates in Inductor's fused kernels
        kernels["gemm_epilogues"] = False
    elif variant == "cublaslt-gelu":  # the FFN up's bias + GELU in cuBLASLt's epilogue instead of quack's
        kernels["gelu_epilogue"] = False
    elif variant == "no-fold":  # quack's epilogues, but the LayerNorms as their own (Inductor) kernels
        kernels["norm_fold"] = False
    elif variant == "fold-torch":  # the folded weights from Inductor's kernels instead of the one-pass Triton kernel
        kernels["fold_kernel"] = False
    elif variant in ("kn-weights", "kn-ffn-up"):  # (cuBLAS layouts: measured against run 18's model, before quack)
        kernels["gemm_epilogues"] = False
    # "coordinate" (coordinate-descent tuning) is compile_dit's default since run 15: the same as "default".
    elif variant not in ("default", "coordinate", "cross-fa4", "graph-forward", "loaded"):
        raise SystemExit(f"unknown variant {variant}; known: {', '.join(VARIANTS)}")
    saved_policy = policy.set_policy(policy.current().replace(**kernels))
    try:
        # "loaded": weights mapped from Diffusers' model and materialized, as the loader (and the bench) does
        _, model, ref = build_dits("wan2.1-t2v-1.3b", torch.device("cuda"), torch.bfloat16, variant == "loaded")
        del ref
        if variant == "cross-fa4":  # text cross-attention on FlashAttention-4 too (AUTO gives it cuDNN SDPA)
            set_attention_backend(torch.nn.ModuleList(b.cross_attn for b in model.blocks), "FLASH_ATTN_4")
        if variant in ("kn-weights", "kn-ffn-up"):  # projection weights stored [K, N]: other cuBLAS kernels
            weights_kn(model, "all" if variant == "kn-weights" else "ffn-up")
        compile_dit_blocks(model, mode=mode, options=options)
        with torch.inference_mode():
            import time

            t0 = time.perf_counter()
            out = model(x, t, c)
            torch.cuda.synchronize()
            first = time.perf_counter() - t0
            if variant == "graph-forward":
                fn, out = graph_forward(model, x, t, c)
            else:
                fn = lambda: model(x, t, c)  # noqa: E731
            res = {"compile_and_first_s": first, "forward": time_cuda(fn, warmup=2, iters=iters)}
            res["forward_queued"] = time_queued(fn, iters=iters)
            res["forward_back_to_back"] = time_back_to_back(fn, iters=iters)
            issue = []  # host time to enqueue one forward: near the forward's GPU time means the host limits it
            for _ in range(3):
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                fn()
                issue.append(time.perf_counter() - t0)
            torch.cuda.synchronize()
            res["host_issue_s"] = sorted(issue)[1]
            if reference is not None:
                res["rel_l2_vs_default"] = rel_l2(out, reference)
            if profile:
                res["profile"] = profile_summary(fn)
        return res, out
    finally:
        ic.triton.multi_kernel = saved_multi_kernel
        layers_rope.apply_rope, wan.SelfAttention.attend = saved_rope, saved_self_attn
        policy.set_policy(saved_policy)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", required=True)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS,
                   help="the first one is the reference (and is profiled); a variant named twice is run twice")
    p.add_argument("--iters", type=int, default=5, help="timed forwards per variant (median reported)")
    p.add_argument("--batch", type=int, default=1, help="2: the CFG pair (one timestep), as the denoising loop runs")
    p.add_argument("--profile-all", action="store_true", help="profile every variant (default: the first only)")
    args = p.parse_args(argv)
    torch.backends.cudnn.benchmark = True
    r: dict = {"env": environment(), "shape": SHAPE}

    def save():
        Path(args.json).write_text(json.dumps(r, indent=1) + "\n")

    cfg, _, _ = build_dits("wan2.1-t2v-1.3b", torch.device("meta"), torch.bfloat16, False)
    work = dit_forward_work(cfg, SHAPE["frames"], SHAPE["height"], SHAPE["width"])
    ceil = {"matmul_flops": matmul_ceiling(), **attention_ceilings(12, work.tokens, 128)}
    attention = ceil[f"attention_{ceil['attention_fastest']}_flops"]
    r["ceilings_tflops"] = {k: v / 1e12 if isinstance(v, float) else v for k, v in ceil.items()}
    r["attention_backend"] = {role: get_attn_backend(role=role).name for role in ROLES}
    r["batch"] = args.batch
    r["floor_s"] = args.batch * work.floor_seconds(attention, ceil["matmul_flops"])
    r["attention_core_s_at_ceiling"] = work.attention_core / attention
    r["matmul_s_at_ceiling"] = work.matmul / ceil["matmul_flops"]
    print("ceilings", r["ceilings_tflops"], "floor", r["floor_s"], flush=True)
    save()
    r["attention_layouts"] = attention_layouts(seq=work.tokens)
    for k, v in r["attention_layouts"].items():
        print(f"sdpa {k:24s} {v['ms']:.2f} ms {v['tflops']:.0f} TFLOP/s out stride {v['out_stride']}", flush=True)
    save()
    x, t, c = dit_inputs(cfg, SHAPE["frames"], SHAPE["height"], SHAPE["width"], args.batch, "cuda", torch.bfloat16)
    r["variants"] = {}
    reference = None
    for i, v in enumerate(args.variants):
        name = v if v not in r["variants"] else f"{v}#{sum(k.split('#')[0] == v for k in r['variants']) + 1}"
        try:
            res, out = compiled_forward(v, x, t, c, profile=i == 0 or args.profile_all, reference=reference,
                                        iters=args.iters)
        except Exception as exc:  # record and go on: one broken variant should not lose the others
            r["variants"][name] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
            print(f"compiled [{name}] failed: {r['variants'][name]['error'][:400]}", flush=True)
            save()
            continue
        if reference is None:
            reference = out
        res["over_floor"] = res["forward"]["median"] / r["floor_s"]
        r["variants"][name] = res
        print(f"compiled [{name}] {res['forward']['median'] * 1e3:.1f} ms = {res['over_floor']:.3f}x floor "
              f"(compile+first {res['compile_and_first_s']:.0f} s, host issue {res['host_issue_s'] * 1e3:.0f} ms; "
              f"queued {res['forward_queued']['median'] * 1e3:.1f} ms, back to back "
              f"{res['forward_back_to_back']['median'] * 1e3:.1f} ms)", flush=True)
        if "profile" in res:
            print("  by category (ms):", {k: round(m, 1) for k, m in res["profile"]["categories_ms"].items()},
                  f"idle {res['profile']['idle_before_ms']['total']:.1f} ms over "
                  f"{res['profile']['idle_before_ms']['kernels']} kernels")
            for row in res["profile"]["top"]:
                print(f"  {row['ms']:8.2f} ms x{row['count']:4d}  {row['kernel'][:110]}")
        save()
    print("wrote", args.json)


if __name__ == "__main__":
    main()
