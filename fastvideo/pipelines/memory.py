"""How much memory a generation request needs, checked before anything is allocated.

``check_request(sp, task, geometry, device)`` runs in ``VideoGenerator.generate_video``
before the pipeline (so before latent preparation and before the output folder is
made).  It refuses, with :class:`~fastvideo.errors.InvalidRequest`, a request whose
estimated peak does not fit the memory that is free now, and says how much it
needs, how much there is, and what fits (the largest frame count at the same size,
the largest size at the same aspect ratio and frame count, or VAE tiling).  It is
arithmetic on config values: well under a millisecond per estimate.

The geometry comes from the model folder's own configs (:meth:`ModelGeometry.from_model`):
latent channels and the VAE's temporal/spatial compression (``vae/config.json``:
``z_dim``, ``temperal_downsample``, ``dim_mult``), the DiT's patch size, width,
heads, FFN width and channels (``transformer/config.json``), the text encoder's
widths (``text_encoder/config.json``), and the precisions of the ``PipelineConfig``.

What is counted (F frames, H x W pixels; latents ``z x F' x h x w`` with
``F' = (F-1)/t + 1``, ``h = H/s``; DiT tokens ``S = F'/pt * h/ph * w/pw``;
B = 2 when classifier-free guidance runs batched, else 1):

* latents: float32 ``z*F'*h*w`` (counted exactly), plus the denoising loop's
  latent-sized tensors (DiT input and output for B samples, guidance mix,
  the scheduler's history: 8 float32 copies in all);
* DiT activations of one block (blocks run one after another and nothing is kept
  for backward): the residual stream and pending FFN update, the fused q/k/v
  projection, RMSNorm/RoPE float32 temporaries, the attention kernel's contiguous
  q/k/v and output (flash / memory-efficient / cuDNN kernels and PyTorch's CPU
  kernel keep no S x S matrix: only per-row statistics), and the FFN hidden pair
  ``2*S*ffn_dim``; whichever of attention or FFN is larger, plus the RoPE table;
* text encoder: prompt + negative prompt at ``text_len`` tokens, its FFN pair and
  the explicit ``heads x L x L`` score and probability matrices;
* VAE decode (the peak for large frames): one latent frame at a time through every
  decoder level (resnets with their causal two-frame padding, the 2x upsamplers at
  the next level's resolution and channels), the causal feature cache of every
  3x3x3 conv, and the per-frame outputs plus their concatenation and clamp
  (``2 x 3*F*H*W`` in the VAE dtype).  With VAE tiling the working set is that of
  one tile (the VAE's default 256-pixel tiles) and the outputs are the tiles plus
  the stitched video.  I2V/V2V encode their input video: counted like a decode of
  the same size;
* the decoded video: the float32 ``[F, H, W, 3]`` conversion and its temporaries
  and the uint8 frames (on CUDA the conversion runs on the GPU and the float32 and
  uint8 copies land in host memory);
* model weights only when a component is CPU-offloaded (it is brought to the GPU
  for its stage); weights already on the device are already out of the free memory.

The peak is the largest stage (text encoding, denoising, VAE encode/decode, video
conversion) plus what lives across stages (the latents).  Not counted: allocator
fragmentation and caching slack, CUDA/cuDNN workspaces, library and Python
overhead, the I2V image encoder's 257-token activations, MP4 encoding buffers.  On
the tiny test model the estimate is at or above the measured CPU peak RSS growth
and within a small factor of it (tests/faults/test_faults_limits.py).

Available memory: CUDA: ``torch.cuda.mem_get_info`` of the device plus what
PyTorch's caching allocator holds but does not use; CPU: ``MemAvailable`` from
``/proc/meminfo`` (``psutil`` where there is no /proc, when installed), lowered to
a cgroup v2 ``memory.max`` or an address-space ``ulimit -v`` when those are smaller.
``FASTVIDEO_MEMORY_LIMIT`` (e.g. ``8GiB``) caps the memory the check assumes;
``FASTVIDEO_MEMORY_CHECK=0`` turns the memory check off (the hard limits stay).

Independently of memory, :func:`hard_limit_problems` refuses absurd requests
(``num_frames`` above :data:`MAX_NUM_FRAMES`, a side above :data:`MAX_SIDE`); it is
model-free and part of ``validate_sampling``, so the studio shows it inline and
multi-GPU workers enforce it too.

This module is torch-free at import (torch is imported only to ask CUDA what is free).
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fastvideo.errors import InvalidRequest

# Hard caps, whatever the memory: 1025 latent frames (over 4 minutes at 16 fps) and 16384 pixels a
# side (also the most Wan's RoPE table covers: rope_max_seq_len 1024 positions x patch 2 x VAE 8).
MAX_NUM_FRAMES = 4097
MAX_SIDE = 16384

DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
SAFETENSORS_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                     "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}
# The VAE module's default tile (pixels) and stride when tiling is on (AutoencoderKLWan.enable_tiling).
VAE_TILE = 256
VAE_TILE_STRIDE = 192
# Float32 latent-sized tensors alive in the denoising loop (see the module docstring).
LATENT_COPIES = 8
# Convolution kernels copy their inputs and outputs (oneDNN reorders to channel-blocked layouts on the
# CPU, cuDNN workspaces on CUDA): the VAE working set is scaled by this, measured on the tiny model.
VAE_KERNEL_FACTOR = {"cpu": 3.0, "cuda": 1.5}
# Fixed cost of running at all: allocator arenas, kernel caches, thread pools, cuBLAS/cuDNN workspaces.
# On the CPU the tiny model's measured peak growth varies by ~50 MiB between identical runs (258-310 MiB
# seen against 178 MiB of counted tensors: glibc arenas and oneDNN caches), so the CPU slack covers that.
RUNTIME_OVERHEAD = {"cpu": 192 * 2**20, "cuda": 512 * 2**20}

_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 10**3, "kib": 2**10, "m": 2**20, "mb": 10**6, "mib": 2**20,
          "g": 2**30, "gb": 10**9, "gib": 2**30, "t": 2**40, "tb": 10**12, "tib": 2**40}


def format_bytes(n: float) -> str:
    for unit, size in (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def parse_bytes(text: str) -> int:
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"not a memory size: {text!r} (use e.g. 8GiB, 512MiB or a number of bytes)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


# ----------------------------------------------------------------------------------------- hard caps


def hard_limit_problems(num_frames: Any, height: Any, width: Any) -> list[tuple[str, str]]:
    """``(field, message)`` for sizes beyond any device, whatever the model (model-free, torch-free)."""
    out: list[tuple[str, str]] = []
    ints = all(isinstance(v, int) and v > 0 for v in (num_frames, height, width))
    if isinstance(num_frames, int) and num_frames > MAX_NUM_FRAMES:
        size = f"; at {width}x{height} the 8-bit video alone would be {format_bytes(num_frames * height * width * 3)}" \
            if ints else ""
        out.append(("num_frames", f"num_frames={num_frames} is over the limit of {MAX_NUM_FRAMES} frames{size}: "
                                  f"use at most {MAX_NUM_FRAMES} (generate longer videos in parts)"))
    for name, value in (("height", height), ("width", width)):
        if isinstance(value, int) and value > MAX_SIDE:
            size = f"; one {width}x{height} frame alone is {format_bytes(height * width * 3 * 4)} in float32" \
                if ints else ""
            out.append((name, f"{name}={value} is over the limit of {MAX_SIDE} pixels{size}: use at most {MAX_SIDE}"))
    return out


# ----------------------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class ModelGeometry:
    """The numbers of a loaded model that size a request (defaults: Wan2.1 T2V 1.3B at bf16, VAE fp32)."""

    # VAE
    z_dim: int = 16
    temporal_ratio: int = 4
    spatial_ratio: int = 8
    vae_base_dim: int = 96
    vae_dim_mult: tuple[int, ...] = (1, 2, 4, 4)
    vae_num_res_blocks: int = 2
    vae_temporal_upsample: tuple[bool, ...] = (True, True, False)  # decoder order
    vae_out_channels: int = 3
    # DiT
    patch: tuple[int, int, int] = (1, 2, 2)
    dit_dim: int = 1536
    dit_heads: int = 12
    dit_ffn: int = 8960
    dit_in_channels: int = 16
    dit_out_channels: int = 16
    # Text encoder
    text_len: int = 512
    te_d_model: int = 4096
    te_d_ff: int = 10240
    te_heads: int = 64
    # Precisions (bytes per element) and options
    dit_bytes: int = 2
    vae_bytes: int = 4
    te_bytes: int = 2
    batch_cfg: bool = True
    cfg_parallel: bool = False
    sp_size: int = 1
    vae_tiling: bool = False
    # Weights brought to the device for their stage (CPU offload), in bytes; 0 when resident.
    offloaded_weights: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_model(cls, model_path: str | os.PathLike, config: Any = None) -> ModelGeometry:
        """Read the model folder's configs (no weights, no torch) and the PipelineConfig's options."""
        from fastvideo.configs.models.dits.wan import WanVideoConfig
        from fastvideo.configs.models.vaes.wan import WanVAEConfig
        from fastvideo.configs.registry import describe_folder
        from fastvideo.errors import ModelNotFoundError

        root = Path(model_path)
        values: dict[str, Any] = {}
        # Wan's VAE / DiT configs give the detailed sizes; another family's (LTX-2) gives its DiT width from the
        # common Diffusers keys and its latent numbers through the family's geometry below.
        vae_json = _read_json(root / "vae" / "config.json")
        if vae_json is not None and vae_json.get("_class_name", "AutoencoderKLWan") == "AutoencoderKLWan":
            vae = WanVAEConfig.from_dict(vae_json)
            n = len(vae.dim_mult)
            values.update(
                z_dim=vae.z_dim, temporal_ratio=vae.temporal_compression_ratio,
                spatial_ratio=vae.spatial_compression_ratio, vae_base_dim=vae.decoder_base_dim or vae.base_dim,
                vae_dim_mult=tuple(vae.dim_mult), vae_num_res_blocks=vae.num_res_blocks,
                vae_temporal_upsample=tuple(bool(t) for t in vae.temperal_downsample[: n - 1])[::-1],
                vae_out_channels=vae.out_channels)
        dit_json = _read_json(root / "transformer" / "config.json")
        if dit_json is not None and dit_json.get("_class_name", "WanTransformer3DModel") != "WanTransformer3DModel":
            heads, head_dim = dit_json.get("num_attention_heads"), dit_json.get("attention_head_dim")
            if isinstance(heads, int) and isinstance(head_dim, int):
                values.update(dit_dim=heads * head_dim, dit_heads=heads, dit_ffn=4 * heads * head_dim)
            dit_json = None
        if dit_json is not None:
            dit = WanVideoConfig.from_dict(dit_json)
            values.update(patch=tuple(dit.patch_size), dit_dim=dit.hidden_size, dit_heads=dit.num_attention_heads,
                          dit_ffn=dit.ffn_dim, dit_in_channels=dit.in_channels,
                          dit_out_channels=dit.out_channels or dit.in_channels)
        if (root / "model_index.json").is_file():  # the latent numbers as the model's family describes them
            try:
                latent = describe_folder(root).geometry()
                values.update(z_dim=latent.latent_channels, temporal_ratio=latent.temporal_compression,
                              spatial_ratio=latent.spatial_compression, patch=latent.patch_size)
            except ModelNotFoundError:
                pass  # a folder fastvideo cannot run: the configs above, as read
        te_json = _read_json(root / "text_encoder" / "config.json")
        if te_json is not None:
            values.update(te_d_model=int(te_json.get("d_model", cls.te_d_model)),
                          te_d_ff=int(te_json.get("d_ff", cls.te_d_ff)),
                          te_heads=int(te_json.get("num_heads", cls.te_heads)))
        if config is not None:
            values.update(
                text_len=config.text_len, dit_bytes=DTYPE_BYTES[config.dit_precision],
                vae_bytes=DTYPE_BYTES[config.vae_precision], te_bytes=DTYPE_BYTES[config.text_encoder_precision],
                batch_cfg=bool(config.batch_cfg), cfg_parallel=bool(config.cfg_parallel),
                sp_size=max(1, int(config.sp_size or 1)), vae_tiling=bool(config.vae_tiling))
            offloaded = {}
            for name, flag, precision in (("transformer", "dit_cpu_offload", config.dit_precision),
                                          ("transformer_2", "dit_cpu_offload", config.dit_precision),
                                          ("vae", "vae_cpu_offload", config.vae_precision),
                                          ("text_encoder", "text_encoder_cpu_offload", config.text_encoder_precision)):
                if getattr(config, flag, False):
                    offloaded[name] = weight_bytes(root / name, DTYPE_BYTES[precision])
            values["offloaded_weights"] = offloaded
        return cls(**values)

    # Shapes ---------------------------------------------------------------------------------------

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int, int]:
        return (1, self.z_dim, (num_frames - 1) // self.temporal_ratio + 1,
                height // self.spatial_ratio, width // self.spatial_ratio)

    def tokens(self, num_frames: int, height: int, width: int) -> int:
        _, _, t, h, w = self.latent_shape(num_frames, height, width)
        pt, ph, pw = self.patch
        return -(-t // pt) * -(-h // ph) * -(-w // pw)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def weight_bytes(folder: Path, element_bytes: int) -> int:
    """Bytes of a component's parameters at ``element_bytes`` each (safetensors headers; else file sizes)."""
    total_elements = 0
    other_bytes = 0
    if not folder.is_dir():
        return 0
    for path in folder.iterdir():
        if path.name.endswith(".safetensors"):
            try:
                with open(path, "rb") as f:
                    (n,) = struct.unpack("<Q", f.read(8))
                    header = json.loads(f.read(n))
            except (OSError, ValueError, struct.error):
                other_bytes += path.stat().st_size
                continue
            for name, info in header.items():
                if name != "__metadata__":
                    total_elements += math.prod(info.get("shape", []))
        elif path.name.endswith((".bin", ".pth", ".pt")):
            other_bytes += path.stat().st_size
    return total_elements * element_bytes + other_bytes


# ----------------------------------------------------------------------------------------- estimate


@dataclass
class Estimate:
    """Peak bytes of one request: ``device`` on the compute device, ``host`` in CPU RAM (same when on CPU)."""

    device: int
    host: int
    peak_stage: str
    parts: dict[str, int]  # what makes up the peak stage (for the message)
    same_memory: bool  # device is the CPU: ``device`` already includes ``host``
    stages: dict[str, int] = field(default_factory=dict)  # device bytes of every stage

    def describe(self) -> str:
        big = sorted(((v, k) for k, v in self.parts.items() if v), reverse=True)[:4]
        return ", ".join(f"{k} {format_bytes(v)}" for v, k in big)


def _vae_levels(g: ModelGeometry) -> list[tuple[int, int, int, bool, bool]]:
    """Decoder levels as (in_channels, out_channels, scale, frames, upsample, temporal): the steady-state chunk."""
    mult = list(g.vae_dim_mult)
    dims = [g.vae_base_dim * m for m in [mult[-1], *mult[::-1]]]
    levels = []
    scale, frames = 1, 1
    for i in range(len(mult)):
        cin, cout = dims[i], dims[i + 1]
        if i > 0 and i < len(g.vae_temporal_upsample) + 1:
            cin //= 2  # the previous upsampler halved the channels
        up = i != len(mult) - 1
        temporal = up and i < len(g.vae_temporal_upsample) and g.vae_temporal_upsample[i]
        levels.append((cin, cout, scale, frames, up, temporal))
        if up:
            scale *= 2
            frames *= 2 if temporal else 1
    return levels


def vae_working_elements(g: ModelGeometry, h: int, w: int) -> tuple[int, int]:
    """(working set, feature cache) in elements for one latent frame at latent size ``h x w``."""
    area = h * w
    mid = g.vae_base_dim * g.vae_dim_mult[-1]
    # conv_in + mid block at the latent resolution, one frame (padded to 3 by the cache).
    peak = (5 + 2) * mid * area
    cache = 2 * (g.z_dim + 4 * mid) * area
    last_c, last_scale, last_frames = mid, 1, 1
    for cin, cout, scale, frames, up, temporal in _vae_levels(g):
        a = area * scale * scale
        c = max(cin, cout)
        resnet = (5 * frames + 2) * c * a  # padded input, norm, act, conv out, residual
        peak = max(peak, resnet)
        cache += 2 * 2 * (g.vae_num_res_blocks + 1) * c * a
        if up:
            f2 = frames * (2 if temporal else 1)
            if temporal:
                cache += 2 * cout * a
                peak = max(peak, (frames + 2) * cout * a + 2 * cout * frames * a)
            # input + nearest 2x upsample + conv (channels halved), at the next resolution
            peak = max(peak, cout * f2 * a + cout * f2 * 4 * a + (cout // 2) * f2 * 4 * a)
        last_c, last_scale, last_frames = cout, scale, frames
    a = area * last_scale * last_scale
    peak = max(peak, (3 * last_frames + 2) * last_c * a + g.vae_out_channels * last_frames * a)
    cache += 2 * last_c * a
    return peak, cache


def estimate(g: ModelGeometry, num_frames: int, height: int, width: int, *, task: str = "t2v",
             cfg: bool = True, device_type: str = "cpu") -> Estimate:
    """Peak memory of a request (see the module docstring for what is counted)."""
    _, z, t, h, w = g.latent_shape(num_frames, height, width)
    latent_el = z * t * h * w
    latents = 4 * latent_el
    batch = 2 if cfg and g.batch_cfg and not g.cfg_parallel else 1
    tokens = -(-g.tokens(num_frames, height, width) // g.sp_size)
    d, ffn, bd = g.dit_dim, g.dit_ffn, g.dit_bytes
    head_dim = d // max(1, g.dit_heads)
    pixels = num_frames * height * width
    offl = g.offloaded_weights if device_type != "cpu" else {}

    # Denoising: latent-sized copies + one DiT block's activations (attention or FFN, whichever is larger).
    latent_work = LATENT_COPIES * 4 * (t * h * w) * max(z, g.dit_in_channels, g.dit_out_channels)
    attn = batch * tokens * d * (3 * bd + 3 * bd + bd + 3 * 4) + batch * g.dit_heads * tokens * 4
    ffn_act = batch * tokens * (2 * ffn * bd + d * (3 * 4 + bd))
    persistent = batch * tokens * d * 2 * bd + tokens * head_dim * 4 + batch * g.text_len * d * bd * 3
    dit_offloaded = max(offl.get("transformer", 0), offl.get("transformer_2", 0))  # one expert at a time
    denoise = {"latents": latent_work, "DiT activations": persistent + (ffn_act if ffn_act > attn else 0),
               "attention": attn if attn >= ffn_act else 0, "DiT weights (offloaded)": dit_offloaded}

    # Text encoding: prompt + negative prompt.
    L, tb = g.text_len, g.te_bytes
    text = {"text encoder": 2 * L * (g.te_d_model * 4 * 4 + 3 * g.te_d_ff * tb) + 2 * 2 * g.te_heads * L * L * 4,
            "text encoder weights (offloaded)": offl.get("text_encoder", 0), "latents": 0}

    # VAE decode (and encode for I2V / V2V, counted alike).
    vb = g.vae_bytes
    video_vae = 3 * pixels * vb
    if g.vae_tiling and (h > VAE_TILE // g.spatial_ratio or w > VAE_TILE // g.spatial_ratio):
        th = VAE_TILE // g.spatial_ratio
        sh = VAE_TILE_STRIDE // g.spatial_ratio
        tile_h = sum(min(th, h - i) for i in range(0, h, sh))
        tile_w = sum(min(th, w - j) for j in range(0, w, sh))
        work, cache = vae_working_elements(g, min(th, h), min(th, w))
        outputs = 3 * num_frames * tile_h * tile_w * g.spatial_ratio ** 2 * vb + 2 * video_vae
    else:
        work, cache = vae_working_elements(g, h, w)
        outputs = 2 * video_vae
    if device_type != "cpu":  # the mid block's one-head attention may run PyTorch's math kernel on CUDA
        side = min(h, VAE_TILE // g.spatial_ratio) if g.vae_tiling else h
        work += 2 * (side * (min(w, VAE_TILE // g.spatial_ratio) if g.vae_tiling else w)) ** 2 * 4 // vb
    factor = VAE_KERNEL_FACTOR["cpu" if device_type == "cpu" else "cuda"]
    decode = {"latents": latents + 2 * latent_el * vb, "VAE decoder": int((work * factor + cache) * vb),
              "VAE outputs": outputs, "VAE weights (offloaded)": offl.get("vae", 0)}
    stages: dict[str, dict[str, int]] = {"text encoding": text, "denoising": denoise, "VAE decode": decode}
    if task in ("i2v", "v2v"):
        stages["VAE encode"] = {"latents": latents, "input video": 2 * 3 * pixels * 4 + video_vae,
                                "VAE encoder": int((work * factor + cache) * vb),
                                "VAE weights (offloaded)": offl.get("vae", 0)}

    # Decoded video: [F, H, W, 3] float32 conversion, then uint8.
    f32, u8 = 3 * pixels * 4, 3 * pixels
    host_video = 3 * f32 + u8
    if device_type == "cpu":
        convert = max(video_vae + 2 * f32 + (f32 if vb != 4 else 0), host_video)
        stages["video conversion"] = {"decoded video": convert, "latents": latents}
        host_peak = 0
    else:
        stages["video conversion"] = {"decoded video": video_vae + (f32 if vb != 4 else 0) + 2 * f32,
                                      "latents": latents}
        host_peak = max(host_video, latents)  # initial noise is drawn on the CPU

    overhead = RUNTIME_OVERHEAD["cpu" if device_type == "cpu" else "cuda"]
    for parts in stages.values():
        parts["runtime overhead"] = overhead
    peak_stage = max(stages, key=lambda s: sum(stages[s].values()))
    device_peak = sum(stages[peak_stage].values())
    return Estimate(device=device_peak, host=host_peak, peak_stage=peak_stage, parts=stages[peak_stage],
                    same_memory=device_type == "cpu", stages={k: sum(v.values()) for k, v in stages.items()})


# ----------------------------------------------------------------------------------------- available


def host_available() -> tuple[int, str]:
    """Bytes of CPU memory this process may still allocate, and where the number comes from."""
    avail, source = None, ""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail, source = int(line.split()[1]) * 1024, "MemAvailable"
                    break
    except OSError:
        pass
    if avail is None:
        try:
            import psutil  # optional

            avail, source = int(psutil.virtual_memory().available), "psutil available"
        except Exception:  # noqa: BLE001 - no psutil, or it failed: no memory figure
            return 1 << 62, "unknown"
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            left = int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text())
            if left < avail:
                avail, source = max(0, left), "cgroup memory.max"
    except (OSError, ValueError):
        pass
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            with open("/proc/self/status") as f:
                vm = next((int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:")), 0)
            if soft - vm < avail:
                avail, source = max(0, soft - vm), "ulimit -v"
    except (OSError, ValueError, ImportError):
        pass
    return avail, source


def device_available(device: Any) -> tuple[int, str]:
    """Free bytes on ``device`` (a torch.device or a string like ``"cuda:0"``/``"cpu"``) and their source."""
    kind = getattr(device, "type", None) or str(device).split(":")[0]
    if kind == "cuda":
        import torch

        free, total = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free + cached), f"free on {device} (of {format_bytes(total)})"
    return host_available()


def _env_limit() -> int | None:
    text = os.environ.get("FASTVIDEO_MEMORY_LIMIT")
    return parse_bytes(text) if text else None


# ----------------------------------------------------------------------------------------- check


@dataclass
class Budget:
    """What the check compares against (inject one in tests; :func:`budget_for` measures the machine)."""

    device: int | None  # None: unknown (not checked)
    host: int
    device_type: str = "cpu"
    device_source: str = ""
    host_source: str = ""


def budget_for(device: Any) -> Budget:
    kind = (getattr(device, "type", None) or str(device).split(":")[0]) if device is not None else "unknown"
    limit = _env_limit()
    host, host_src = host_available()
    if limit is not None and limit < host:
        host, host_src = limit, "FASTVIDEO_MEMORY_LIMIT"
    if kind == "cpu":
        return Budget(host, host, "cpu", host_src, host_src)
    if kind == "cuda":
        dev, src = device_available(device)
        if limit is not None and limit < dev:
            dev, src = limit, "FASTVIDEO_MEMORY_LIMIT"
        return Budget(dev, host, "cuda", src, host_src)
    return Budget(None, host, kind, "", host_src)  # several GPUs in worker processes: host only


def _fits(g: ModelGeometry, budget: Budget, f: int, hgt: int, wid: int, task: str, cfg: bool) -> bool:
    e = estimate(g, f, hgt, wid, task=task, cfg=cfg, device_type=budget.device_type)
    if budget.device_type == "cpu":
        return e.device <= budget.host
    return (budget.device is None or e.device <= budget.device) and e.host <= budget.host


def largest_frames(g, budget, num_frames, height, width, task, cfg) -> int | None:
    """The largest 4n+1 frame count <= ``num_frames`` (and the hard cap) that fits at this size (None: none)."""
    step = g.temporal_ratio
    lo, hi = 0, (min(num_frames, MAX_NUM_FRAMES) - 1) // step
    if not _fits(g, budget, 1, height, width, task, cfg):
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _fits(g, budget, mid * step + 1, height, width, task, cfg):
            lo = mid
        else:
            hi = mid - 1
    return lo * step + 1


def largest_size(g, budget, num_frames, height, width, task, cfg, multiple: int = 16) -> tuple[int, int] | None:
    """The largest ``width x height`` (same aspect ratio, multiples of 16) that fits at this frame count."""
    def size(k: int) -> tuple[int, int]:
        if height >= width:
            return max(multiple, round(k * multiple * width / height / multiple) * multiple), k * multiple
        return k * multiple, max(multiple, round(k * multiple * height / width / multiple) * multiple)

    top = min(max(height, width), MAX_SIDE) // multiple
    if top < 1 or not _fits(g, budget, num_frames, size(1)[1], size(1)[0], task, cfg):
        return None
    lo, hi = 1, top
    while lo < hi:
        mid = (lo + hi + 1) // 2
        w_, h_ = size(mid)
        if _fits(g, budget, num_frames, h_, w_, task, cfg):
            lo = mid
        else:
            hi = mid - 1
    return size(lo)


def memory_problem(g: ModelGeometry, budget: Budget, num_frames: int, height: int, width: int, *,
                   task: str = "t2v", cfg: bool = True) -> InvalidRequest | None:
    """An InvalidRequest when the request does not fit ``budget``, else None."""
    e = estimate(g, num_frames, height, width, task=task, cfg=cfg, device_type=budget.device_type)
    short = []
    if budget.device_type == "cpu":
        if e.device > budget.host:
            short.append(f"about {format_bytes(e.device)} of CPU memory (peak in {e.peak_stage}: {e.describe()}), "
                         f"but {format_bytes(budget.host)} is available ({budget.host_source})")
    else:
        if budget.device is not None and e.device > budget.device:
            short.append(f"about {format_bytes(e.device)} of GPU memory (peak in {e.peak_stage}: {e.describe()}), "
                         f"but {format_bytes(budget.device)} is {budget.device_source}")
        if e.host > budget.host:
            short.append(f"about {format_bytes(e.host)} of CPU memory for the decoded video, but "
                         f"{format_bytes(budget.host)} is available ({budget.host_source})")
    if not short:
        return None
    # Suggestions stay within the hard caps (a size is not suggested for a frame count over them).
    frames = largest_frames(g, budget, num_frames, height, width, task, cfg) \
        if max(height, width) <= MAX_SIDE else None
    size = largest_size(g, budget, num_frames, height, width, task, cfg) if num_frames <= MAX_NUM_FRAMES else None
    fits = []
    if frames is not None:
        fits.append(f"num_frames up to {frames} at {width}x{height}")
    if size is not None:
        fits.append(f"up to {size[0]}x{size[1]} (width x height) at {num_frames} frames")
    if not g.vae_tiling and e.peak_stage.startswith("VAE"):
        tiled = replace(g, vae_tiling=True)
        if _fits(tiled, budget, num_frames, height, width, task, cfg):
            te = estimate(tiled, num_frames, height, width, task=task, cfg=cfg, device_type=budget.device_type)
            fits.append(f"VAE tiling (vae_tiling=True, --vae-tiling: about {format_bytes(te.device)})")
    what_fits = ("what fits: " + ", or ".join(fits)) if fits else \
        "nothing fits at these settings: lower num_frames, height and width together"
    field_name = "num_frames" if frames is not None else ("height" if height >= width else "width")
    return InvalidRequest(
        f"not enough memory: num_frames={num_frames} at width={width}, height={height} needs "
        + "; and ".join(short) + f"; {what_fits}", field_name)


def memory_check_enabled() -> bool:
    return os.environ.get("FASTVIDEO_MEMORY_CHECK", "1").strip().lower() not in ("0", "false", "no", "off")


def check_request(sp: Any, task: str, geometry: ModelGeometry, device: Any = None,
                  budget: Budget | None = None) -> None:
    """Raise InvalidRequest when the request's estimated peak does not fit ``device`` (or ``budget``).

    Runs when num_frames, height and width are positive whole numbers (other problems are
    ``validate_sampling``'s); arithmetic only, so it costs well under a millisecond per estimate.
    """
    dims = (sp.num_frames, sp.height, sp.width)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in dims):
        return
    if budget is None:
        if not memory_check_enabled():
            return
        budget = budget_for(device)
    cfg = isinstance(sp.guidance_scale, (int, float)) and sp.guidance_scale > 1.0
    problem = memory_problem(geometry, budget, *dims, task=task, cfg=cfg)
    if problem is not None:
        raise problem
