"""``fastvideo bench``: measure against the GPU's limit and against Diffusers, in one run.

Everything is built with random weights on the device (no download).  In one
process it measures the matmul and attention ceilings, computes the FLOP floor
of one DiT forward, and times (CUDA events, warm-up, medians): our DiT forward
(batch 1 and the CFG pair), a full denoising step, an N-step CFG loop, the VAE
decode of the whole clip and the text encoder, with peak memory.  With
``--compare diffusers`` Diffusers' models run on the same weights and inputs and
their outputs are checked against ours.
"""

from __future__ import annotations

import datetime
import gc
import math
import platform
import re
from pathlib import Path
from typing import Any

import torch

from fastvideo.perf.flops import dit_forward_work
from fastvideo.perf.timing import attention_ceiling, matmul_ceiling, sdpa_bshd, time_cuda

# The DiT of each arch (WanVideoConfig fields over the 1.3B defaults).  Wan2.2 A14B's two experts have the
# same shape (one forward is one expert's; the loop times one expert's weights for every step: same cost).
_WAN14B = dict(num_attention_heads=40, ffn_dim=13824, num_layers=40)
ARCHS: dict[str, dict[str, Any]] = {
    "wan2.1-t2v-1.3b": {},
    "wan2.1-t2v-14b": _WAN14B,
    "wan2.2-ti2v-5b": dict(num_attention_heads=24, ffn_dim=14336, num_layers=30, in_channels=48, out_channels=48),
    "wan2.2-t2v-a14b": _WAN14B,
    "wan2.2-i2v-a14b": dict(_WAN14B, in_channels=36, out_channels=16),  # noise + mask + image latents, no CLIP
}
# The VAE of each arch: Wan2.2 TI2V-5B has its own (z 48, 16x16x4); the others use Wan2.1's (z 16, 8x8x4).
ARCH_VAE: dict[str, str] = {"wan2.2-ti2v-5b": "wan2.2"}


def vae_config(arch: str):
    """The released VAE config of ``arch`` (Wan2.1's or Wan2.2's)."""
    from fastvideo.configs.models.vaes.wan import WanVAEConfig
    from fastvideo.configs.models.vaes.wan22 import Wan22VAEConfig

    return Wan22VAEConfig() if ARCH_VAE.get(arch) == "wan2.2" else WanVAEConfig()


def arch_geometry(arch: str):
    """The :class:`~fastvideo.configs.geometry.LatentGeometry` of ``arch`` (its VAE and DiT patch)."""
    from fastvideo.configs.geometry import LatentGeometry
    from fastvideo.configs.models.dits.wan import WanVideoConfig

    vae = vae_config(arch)
    return LatentGeometry(vae.temporal_compression_ratio, vae.spatial_compression_ratio, vae.z_dim,
                          tuple(WanVideoConfig(**ARCHS[arch]).patch_size))
PARTS = ("dit", "step", "loop", "vae", "text")
ATTENTION_KERNELS = ("cudnn", "flash", "fa4")  # the ceilings measured: SDPA's cuDNN and flash kernels, FlashAttention-4


def reference_diffusers():
    """Diffusers, the numerical reference (a benchmark-only dependency, imported on demand)."""
    import importlib

    try:
        return importlib.import_module("diffusers")
    except ImportError:
        raise RuntimeError("--compare diffusers needs Diffusers: pip install diffusers==0.42.1") from None


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.float(), b.float()
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


def _free() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _peak_reset() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak() -> int:
    return int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else 0


def _cast_keep_fp32(module: torch.nn.Module, dtype: torch.dtype, keep: list[str]) -> torch.nn.Module:
    for name, p in module.named_parameters():
        if not any(re.search(k, name) for k in keep):
            p.data = p.data.to(dtype)
    return module


def build_dits(arch: str, device, dtype, compare: bool, seed: int = 0):
    """(ours, reference or None) with identical random weights."""
    from fastvideo.configs.models.dits.wan import WanVideoConfig
    from fastvideo.models.dits.wan import WanTransformer3DModel
    from fastvideo.models.loader.weights import empty_init, map_state_dict, materialize

    cfg = WanVideoConfig(**ARCHS[arch])
    torch.manual_seed(seed)
    ref = None
    if compare:
        diffusers = reference_diffusers()
        # Built in the compute dtype (a 14B fp32 copy would not fit next to ours on an 80 GB GPU); the
        # modules Diffusers keeps in fp32 are then made fp32.
        default = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            with torch.device(device):
                ref = diffusers.WanTransformer3DModel(**cfg.to_dict())
        finally:
            torch.set_default_dtype(default)
        keep = [rf"(^|\.){m}(\.|$)" for m in ref._keep_in_fp32_modules]
        for name, p in ref.named_parameters():
            if any(re.search(k, name) for k in keep):
                p.data = p.data.float()
        ref = _cast_keep_fp32(ref, dtype, keep).eval()
        source = ref.state_dict()
    else:
        # No reference: build ours straight on the device in the compute dtype (14B fits: no fp32 copy).
        default = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            with torch.device(device):
                ours = WanTransformer3DModel(cfg)
        finally:
            torch.set_default_dtype(default)
        for name, p in ours.named_parameters():
            if any(re.search(k, name) for k in cfg.keep_fp32_modules):
                p.data = p.data.float()
        return cfg, ours.eval().requires_grad_(False), None
    mapped, _ = map_state_dict(source.items(), cfg.param_names_mapping)  # (same values; no fp32 copy)
    with empty_init():
        ours = WanTransformer3DModel(cfg)
    materialize(ours, mapped, dtype=dtype, keep_fp32=cfg.keep_fp32_modules, device=device)
    del mapped, source
    _free()
    return cfg, ours.eval().requires_grad_(False), ref


def dit_inputs(cfg, frames, height, width, batch, device, dtype, text_len=512, seed=1, geometry=None):
    """Random DiT inputs at a video size; ``geometry`` (default: the Wan2.1 arch's) sizes the latents."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    geometry = geometry or arch_geometry("wan2.1-t2v-1.3b")
    _, _, t_lat, h_lat, w_lat = geometry.latent_shape(frames, height, width)
    x = torch.randn(batch, cfg.in_channels, t_lat, h_lat, w_lat, generator=g).to(device, dtype)
    text = torch.randn(batch, text_len, cfg.text_dim, generator=g).to(device, dtype)
    t = torch.tensor(999.0, device=device).expand(batch)  # one timestep for the batch, as in sampling
    return x, t, text


def bench_dit(results, arch, frames, height, width, steps, compare, compile_dit, parts, device, dtype):
    from fastvideo.pipelines.stages.denoising import CFGPredictor

    cfg, ours, ref = build_dits(arch, device, dtype, compare)
    geometry = arch_geometry(arch)
    work1 = dit_forward_work(cfg, frames, height, width, geometry=geometry)
    ceil = results["ceilings"]
    floor1 = work1.floor_seconds(ceil[f"attention_{ceil['attention_fastest']}_flops"], ceil["matmul_flops"])
    results["floor"] = {"attention_kernel": ceil["attention_fastest"], "tokens": work1.tokens,
                        "attention_core_tflop": work1.attention_core / 1e12, "matmul_tflop": work1.matmul / 1e12,
                        "forward_s": floor1, "cfg_pair_s": 2 * floor1, "loop_s": 2 * floor1 * steps}
    timings = results["timings"]
    x1, t1, c1 = dit_inputs(cfg, frames, height, width, 1, device, dtype, geometry=geometry)
    x2, t2, c2 = torch.cat([x1, x1]), t1.expand(2), torch.cat([c1, c1 * 0.5])  # one timestep, as in sampling
    big = floor1 > 2.0  # e.g. 14B at 720p: ~10 s a forward; fewer repeats
    # Ten forwards for the median: an H100 under sustained load swings its clocks over about a second
    # (power capping), so single ~0.45 s forwards spread by several percent (434-465 ms in one run).
    reps = dict(warmup=1, iters=2) if big else dict(warmup=2, iters=10)
    pair_reps = dict(warmup=1, iters=1) if big else dict(warmup=1, iters=5)
    with torch.inference_mode():
        _peak_reset()
        timings["dit_forward"] = time_cuda(lambda: ours(x1, t1, c1), **reps)
        timings["dit_forward"]["peak_memory"] = _peak()
        out_ours = ours(x1, t1, c1)
        if ref is not None:
            ref_fn = lambda: ref(hidden_states=x1, timestep=t1, encoder_hidden_states=c1, return_dict=False)[0]  # noqa: E731
            _peak_reset()
            timings["diffusers_dit_forward"] = time_cuda(ref_fn, **reps)
            timings["diffusers_dit_forward"]["peak_memory"] = _peak()
            out_ref = ref_fn()
            results["agreement"]["dit_rel_l2"] = rel_l2(out_ours, out_ref)
            # The reference goes before the CFG pair: at 14B / 720p two resident copies plus a batch of two's
            # activations would not fit an 80 GB GPU.
            del out_ref
            ref = ref_fn = None
            _free()
        _peak_reset()
        timings["dit_cfg_pair"] = time_cuda(lambda: ours(x2, t2, c2), **pair_reps)
        timings["dit_cfg_pair"]["peak_memory"] = _peak()
        if compile_dit:
            from fastvideo.pipelines.compile import compile_dit_blocks

            compile_dit_blocks(ours)
            timings["dit_forward_compiled"] = time_cuda(lambda: ours(x1, t1, c1), **reps)
            timings["dit_cfg_pair_compiled"] = time_cuda(lambda: ours(x2, t2, c2), **pair_reps)
            results["agreement"]["dit_compiled_rel_l2"] = rel_l2(ours(x1, t1, c1), out_ours)
    ref = out_ours = None  # free them (the timing closures above refer to these names)
    _free()
    if "step" in parts or "loop" in parts:
        predictor = CFGPredictor(ours, dtype, batch_cfg=True)
        from fastvideo.models.schedulers import SCHEDULERS
        from fastvideo.testing.tiny import WAN_SCHEDULER

        uncond = c1 * 0.5
        # I2V models: the latents are the first out_channels, the rest (mask + image latents) a fixed condition.
        lat0, extra = x1[:, :cfg.out_channels].float(), x1[:, cfg.out_channels:]

        def model_in(lat):
            return torch.cat([lat, extra.float()], dim=1) if extra.shape[1] else lat

        def make_sched():
            s = SCHEDULERS["UniPCMultistepScheduler"].from_config(WAN_SCHEDULER)
            s.set_timesteps(steps, device=device)
            return s

        with torch.inference_mode():
            if "step" in parts:
                sched = make_sched()
                lat = lat0
                t0 = sched.timesteps[0]

                def one_step():
                    sched.reset()
                    v = predictor(model_in(lat), t0, c1, uncond, None, 5.0)
                    return sched.step(v, t0, lat)

                timings["denoise_step"] = time_cuda(one_step, **pair_reps)
            if "loop" in parts:
                from fastvideo.configs.pipelines.wan import WAN21_PREVIEW_BIAS, WAN21_PREVIEW_FACTORS
                from fastvideo.pipelines.preview import LatentPreviewer

                previewer = LatentPreviewer(WAN21_PREVIEW_FACTORS, WAN21_PREVIEW_BIAS)
                preview_time = [0.0]

                def loop():
                    import time as _t

                    sched = make_sched()
                    lat = lat0
                    for t in sched.timesteps:
                        v = predictor(model_in(lat), t, c1, uncond, None, 5.0)
                        torch.cuda.synchronize()
                        p0 = _t.perf_counter()
                        previewer(lat - float(sched.sigmas[sched.step_index or 0]) * v)
                        preview_time[0] += _t.perf_counter() - p0
                        lat = sched.step(v, t, lat)
                    return lat

                timings["denoise_loop"] = time_cuda(loop, warmup=0, iters=1)
                timings["denoise_loop"]["steps"] = steps
                timings["denoise_loop"]["preview_s"] = preview_time[0]
    ours = None
    _free()


def bench_vae(results, frames, height, width, compare, device, arch: str = "wan2.1-t2v-1.3b"):
    from fastvideo.models.vaes.wan import AutoencoderKLWan

    timings = results["timings"]
    cfg = vae_config(arch)
    torch.manual_seed(0)
    with torch.device(device):
        vae = AutoencoderKLWan.from_arch_config(cfg).eval()  # Wan2.2's config builds the Wan2.2 VAE
    g = torch.Generator(device="cpu").manual_seed(2)
    z = torch.randn(arch_geometry(arch).latent_shape(frames, height, width), generator=g).to(device)
    # Larger than 1.3B's 480x832x81 latent (e.g. 720p, TI2V-5B at 704x1280x121, ~10 s a decode): only the
    # variant the pipeline runs (bf16, channels-last) and two timed decodes, so a run fits a 10-minute command.
    large = z.numel() > math.prod(arch_geometry("wan2.1-t2v-1.3b").latent_shape(81, 480, 832))
    results["vae_variants"] = "bf16 channels-last only (large shape)" if large else "bf16/fp32 x ncdhw/channels-last"
    iters = 2 if large else 3
    variants = [("bf16", torch.bfloat16, "channels_last")] if large else [
        (d, dt, lay) for d, dt in (("bf16", torch.bfloat16), ("fp32", torch.float32))
        for lay in ("ncdhw", "channels_last")]
    for dtype_name, dtype, layout in variants:
        vae.to(dtype)
        vae.use_channels_last(layout == "channels_last")
        key = f"vae_decode_{dtype_name}" + ("_channels_last" if layout == "channels_last" else "")
        _peak_reset()
        with torch.inference_mode():
            timings[key] = time_cuda(lambda dtype=dtype: vae.decode(z.to(dtype)), warmup=1, iters=iters)
        timings[key]["peak_memory"] = _peak()
    vae.use_channels_last(False)
    if compare:
        ref = reference_diffusers().AutoencoderKLWan(**{k: v for k, v in cfg.to_dict().items()}).to(device).eval()
        ref.load_state_dict(vae.float().state_dict())
        vae.to(torch.bfloat16)
        ref.to(torch.bfloat16)
        _peak_reset()
        with torch.inference_mode():
            timings["diffusers_vae_decode_bf16"] = time_cuda(
                lambda: ref.decode(z.to(torch.bfloat16), return_dict=False)[0], warmup=1, iters=iters)
            timings["diffusers_vae_decode_bf16"]["peak_memory"] = _peak()
            results["agreement"]["vae_decode_rel_l2"] = rel_l2(vae.decode(z.to(torch.bfloat16)),
                                                               ref.decode(z.to(torch.bfloat16), return_dict=False)[0])
        ref = None
    vae = None
    _free()


def bench_text(results, device):
    from transformers import UMT5Config, UMT5EncoderModel

    from fastvideo.configs.models.encoders.t5 import T5EncoderArchConfig

    cfg = UMT5Config(**T5EncoderArchConfig().hf_config_dict())
    torch.manual_seed(0)
    with torch.device(device):
        model = UMT5EncoderModel(cfg).to(torch.bfloat16).eval()
    ids = torch.randint(0, cfg.vocab_size, (1, 512), device=device)
    mask = torch.ones_like(ids)
    _peak_reset()
    with torch.inference_mode():
        results["timings"]["text_encoder"] = time_cuda(lambda: model(ids, mask), warmup=2, iters=5)
    results["timings"]["text_encoder"]["peak_memory"] = _peak()
    model = None
    _free()


def environment() -> dict[str, Any]:
    import fastvideo

    env = {"torch": torch.__version__, "fastvideo": fastvideo.__version__, "python": platform.python_version(),
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name()
        env["gpu_memory_gb"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
        env["cuda"] = torch.version.cuda
    else:
        env["gpu"] = "none (CPU)"
    from importlib.metadata import PackageNotFoundError, version

    for package in ("diffusers", "flash-attn-4", "nvidia-cutlass-dsl", "quack-kernels", "triton"):
        try:
            env[package] = version(package)
        except PackageNotFoundError:
            pass
    return env


def run_bench(arch: str = "wan2.1-t2v-1.3b", height: int = 480, width: int = 832, frames: int = 81,
              steps: int = 50, compare: str | None = None, compile_dit: bool = False,
              parts: tuple[str, ...] = PARTS, log=print) -> dict[str, Any]:
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose from {', '.join(ARCHS)}")
    geometry = arch_geometry(arch)
    for problem in (f"frames={frames} must be {geometry.frame_step}n+1" if not geometry.valid_frames(frames) else "",
                    f"height={height} must be a multiple of {geometry.height_multiple}"
                    if height % geometry.height_multiple else "",
                    f"width={width} must be a multiple of {geometry.width_multiple}"
                    if width % geometry.width_multiple else ""):
        if problem:
            raise ValueError(f"{arch}: {problem}")
    if not torch.cuda.is_available():
        raise RuntimeError("fastvideo bench needs a CUDA GPU (it measures the GPU's ceilings)")
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    device, dtype = torch.device("cuda"), torch.bfloat16
    torch.backends.cudnn.benchmark = True
    results: dict[str, Any] = {"env": environment(), "arch": arch, "shape": {"height": height, "width": width,
               "frames": frames, "latent": list(geometry.latent_shape(frames, height, width)[2:]), "steps": steps},
               "compare": compare, "compile": compile_dit, "ceilings": {}, "timings": {}, "agreement": {}}
    from fastvideo.configs.models.dits.wan import WanVideoConfig

    cfg = WanVideoConfig(**ARCHS[arch])
    tokens = dit_forward_work(cfg, frames, height, width, geometry=geometry).tokens
    log("measuring ceilings ...")
    ceil = results["ceilings"]
    ceil["matmul_flops"] = matmul_ceiling()
    ceil.update(attention_ceilings(cfg.num_attention_heads, tokens, cfg.attention_head_dim, results["agreement"]))
    from fastvideo.attention.backends import ROLES, get_attn_backend

    results["attention_backend"] = {role: get_attn_backend(role=role).name for role in ROLES}
    from fastvideo.kernels import fused_linear

    probe = torch.empty(1, device=device, dtype=dtype)
    with torch.inference_mode():  # residual updates and the FFN's GELU: in quack's GEMM epilogues or not
        results["gemm_epilogues"] = "quack" if fused_linear.available(probe) else "cuBLASLt + Inductor"
    if {"dit", "step", "loop"} & set(parts):
        log("timing the DiT ...")
        bench_dit(results, arch, frames, height, width, steps, compare == "diffusers", compile_dit, parts, device,
                  dtype)
    if "vae" in parts:
        log("timing the VAE ...")
        bench_vae(results, frames, height, width, compare == "diffusers", device, arch)
    if "text" in parts:
        log("timing the text encoder ...")
        bench_text(results, device)
    results["ratios"] = ratios(results)
    return results


def attention_ceilings(heads: int, tokens: int, head_dim: int, agreement: dict | None = None) -> dict[str, Any]:
    """FLOP/s of each attention kernel available here at the model's self-attention shape, and
    ``attention_fastest``: the kernel the floor assumes, the fastest measured, whichever the model uses."""
    from fastvideo.attention.backends import FlashAttn4Backend

    kernels = [k for k in ATTENTION_KERNELS if k != "fa4" or FlashAttn4Backend.is_available()]
    out: dict[str, Any] = {f"attention_{k}_flops": attention_ceiling(heads, tokens, head_dim, backend=k) for k in kernels}
    if "fa4" in kernels and agreement is not None:
        agreement["attention_fa4_vs_cudnn_rel_l2"] = attention_agreement(heads, tokens, head_dim)
    out["attention_fastest"] = max(kernels, key=lambda k: out[f"attention_{k}_flops"])
    return out


def attention_agreement(heads: int, seq: int, head_dim: int) -> float:
    """rel. L2 of FlashAttention-4's output against cuDNN SDPA's on the same random bf16 inputs."""
    from fastvideo.attention.backends import FlashAttn4Backend

    g = torch.Generator(device="cuda").manual_seed(3)
    q, k, v = (torch.randn(1, seq, heads, head_dim, device="cuda", dtype=torch.bfloat16, generator=g) for _ in range(3))
    with torch.inference_mode():
        return rel_l2(FlashAttn4Backend()(q, k, v), sdpa_bshd("cudnn")(q, k, v))


def ratios(r: dict[str, Any]) -> dict[str, float]:
    t, out = r["timings"], {}
    floor = r.get("floor", {}).get("forward_s")
    best = t.get("dit_forward_compiled", t.get("dit_forward", {})).get("median")
    if floor and best:
        out["dit_forward_over_floor"] = best / floor
    if "diffusers_dit_forward" in t and best:
        out["diffusers_over_ours_dit"] = t["diffusers_dit_forward"]["median"] / best
    if "denoise_loop" in t and "dit_forward" in t:
        single = t.get("dit_forward_compiled", t["dit_forward"])["median"]  # the loop runs the model as timed last
        out["loop_over_2n_forwards"] = t["denoise_loop"]["median"] / (2 * t["denoise_loop"]["steps"] * single)
    if "denoise_loop" in t:
        out["preview_share_of_loop"] = t["denoise_loop"]["preview_s"] / t["denoise_loop"]["median"]
    vae = min((t[k]["median"] for k in ("vae_decode_bf16", "vae_decode_bf16_channels_last") if k in t), default=None)
    if vae is not None:
        out["vae_decode_bf16_best_s"] = vae
    if "diffusers_vae_decode_bf16" in t and vae:
        out["diffusers_over_ours_vae_bf16"] = t["diffusers_vae_decode_bf16"]["median"] / vae
    return out


def format_table(r: dict[str, Any]) -> str:
    t, f = r["timings"], r.get("floor", {})
    rows = [("what", "ours (s)", "reference (s)", "floor (s)", "ours/floor", "ref/ours")]

    def row(name, key, ref_key=None, floor=None):
        if key not in t:
            return
        ours = t[key]["median"]
        ref = t.get(ref_key, {}).get("median") if ref_key else None
        rows.append((name, f"{ours:.4f}", f"{ref:.4f}" if ref else "-", f"{floor:.4f}" if floor else "-",
                     f"{ours / floor:.3f}" if floor else "-", f"{ref / ours:.3f}" if ref else "-"))

    row("DiT forward (batch 1)", "dit_forward", "diffusers_dit_forward", f.get("forward_s"))
    row("DiT forward compiled", "dit_forward_compiled", "diffusers_dit_forward", f.get("forward_s"))
    row("DiT CFG pair", "dit_cfg_pair", None, f.get("cfg_pair_s"))
    row("DiT CFG pair compiled", "dit_cfg_pair_compiled", None, f.get("cfg_pair_s"))
    row("denoising step (CFG)", "denoise_step", None, f.get("cfg_pair_s"))
    row(f"denoising loop ({r['shape']['steps']} steps)", "denoise_loop", None, f.get("loop_s"))
    row("VAE decode bf16", "vae_decode_bf16", "diffusers_vae_decode_bf16")
    row("VAE decode bf16 channels-last", "vae_decode_bf16_channels_last", "diffusers_vae_decode_bf16")
    row("VAE decode fp32", "vae_decode_fp32")
    row("VAE decode fp32 channels-last", "vae_decode_fp32_channels_last")
    row("text encoder (512 tok)", "text_encoder")
    widths = [max(len(x[i]) for x in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(x, widths)) for x in rows]
    c = r["ceilings"]
    attn = " / ".join(f"{k} {c[f'attention_{k}_flops'] / 1e12:.0f}" for k in ATTENTION_KERNELS
                      if f"attention_{k}_flops" in c)
    lines.append(f"GPU: {r['env'].get('gpu')}  matmul {c.get('matmul_flops', 0) / 1e12:.0f} TFLOP/s, attention {attn} "
                 f"TFLOP/s (floor: {c.get('attention_fastest', '-')}; our model: "
                 + ", ".join(f"{role} {name}" for role, name in r.get("attention_backend", {}).items())
                 + (f"; GEMM epilogues: {r['gemm_epilogues']}" if "gemm_epilogues" in r else "") + ")")
    for k, v in r.get("ratios", {}).items():
        lines.append(f"{k}: {v:.3f}")
    for k, v in r.get("agreement", {}).items():
        lines.append(f"{k}: {v:.2e}")
    return "\n".join(lines)


def write_json(r: dict[str, Any], path: str | Path) -> None:
    from fastvideo.utils.media import write_json_atomic

    write_json_atomic(path, r)
