"""Memory modes: how a model is placed on a device that cannot hold all of it (``memory_mode``, docs/memory.md).

* ``resident``: every component on the device (fastest; the default where it fits).
* ``model_offload``: each component (text encoder, image encoder, each DiT expert, VAE) on the device only while
  its stage runs, in pinned CPU memory otherwise.
* ``block_stream``: as ``model_offload`` for the encoders and the VAE; the DiT's blocks stay in pinned CPU
  memory and stream through a few device slots (:mod:`fastvideo.pipelines.streaming`), the rest of the DiT
  (embedders, head: ~1-2% of it) resident.
* ``auto``: the first of those that fits the device's free memory and the host's available RAM for the
  model's default request (:func:`plan_memory`); with the activation savers where they are needed: the DiT
  FFN and head run in token chunks (``ffn_chunk_tokens``), CFG runs as two passes instead of one batch
  (``batch_cfg=False``), and the VAE decodes in tiles (``vae_tiling``).

Weight storage (``weight_storage``) is independent: ``bf16`` (unquantised), ``fp8`` (e4m3 + per-channel scales,
:class:`~fastvideo.layers.quant.FP8Linear`, half the bytes of the DiT's block weights) or a GGUF file
(:mod:`fastvideo.models.loader.gguf`).  :func:`plan_memory` sizes every mode with the storage's bytes.

The sizes come from the folder's headers (safetensors headers, the GGUF file's tensor table: no weights read)
and :func:`fastvideo.pipelines.memory.estimate` for the activations; everything here but :func:`apply_plan`
and :func:`load_denoiser` is arithmetic and torch-free (the tests plan against invented budgets).
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from fastvideo.pipelines.memory import (
    DTYPE_BYTES,
    Budget,
    ModelGeometry,
    estimate,
    format_bytes,
)
from fastvideo.pipelines.streaming import MIN_SLOTS, choose_slots

MODES = ("resident", "model_offload", "block_stream")
_BLOCK = re.compile(r"(?:^|\.)blocks?\.(\d+)\.")  # a DiT's blocks.N, a T5's encoder.block.N
# Token chunk of the DiT's FFN and head when activations must shrink: at 8192 tokens the 14B FFN's hidden
# pair is 2 x 8192 x 13824 x 2 bytes = 432 MiB instead of 4 GiB at 720p.
FFN_CHUNK_TOKENS = 8192
# Slack kept free on the device besides the estimate (allocator fragmentation between the slots and the rest):
# 512 MiB or a tenth of the peak stage, whichever is larger.  Measured on an H100 (docs/memory.md, run 47):
# 14B 720p streamed with 2 slots held 9.9 GiB allocated but 10.7 GiB reserved even with growable segments,
# 8% above the allocations; the 1.3B at 480p 3.2 / 3.4 GiB.
DEVICE_MARGIN = 512 * 2**20
DEVICE_MARGIN_FRACTION = 0.10
_COMPONENTS = {"text_encoder": "text_encoder_precision", "image_encoder": "image_encoder_precision",
               "vae": "vae_precision"}


# ----------------------------------------------------------------------------------------- sizes


@dataclass
class DenoiserSize:
    """One DiT expert at its storage: the blocks (count, largest, total) and everything else."""

    blocks: int = 0
    block_bytes: int = 0  # the largest block
    blocks_bytes: int = 0  # all blocks
    other_bytes: int = 0

    @property
    def total(self) -> int:
        return self.blocks_bytes + self.other_bytes


@dataclass
class WeightSizes:
    components: dict[str, DenoiserSize] = field(default_factory=dict)  # encoders, VAE at their precision
    denoisers: dict[str, DenoiserSize] = field(default_factory=dict)  # DiT experts at the weight storage

    @property
    def components_total(self) -> int:
        return sum(c.total for c in self.components.values())

    @property
    def dit_total(self) -> int:
        return sum(d.total for d in self.denoisers.values())

    @property
    def dit_max(self) -> int:
        return max((d.total for d in self.denoisers.values()), default=0)


def _safetensors_headers(folder: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.safetensors")):
        try:
            with open(path, "rb") as f:
                (n,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(n))
        except (OSError, ValueError, struct.error):
            continue
        out.update({k: v for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)})
    return out


def _component_size(folder: Path, element_bytes: int, streamable: bool) -> DenoiserSize:
    headers = _safetensors_headers(folder)
    if not headers:
        other = sum(p.stat().st_size for p in folder.glob("*") if p.suffix in (".bin", ".pth", ".pt")) \
            if folder.is_dir() else 0
        return DenoiserSize(other_bytes=other)
    tensors = [(n, math.prod(v.get("shape", [])) * element_bytes, 0) for n, v in headers.items()]
    return _denoiser_from_tensors(tensors) if streamable else DenoiserSize(other_bytes=sum(t[1] for t in tensors))


def _denoiser_from_tensors(tensors: list[tuple[str, int, int]]) -> DenoiserSize:
    """``(name, bytes, elements)`` -> block / other bytes."""
    per_block: dict[int, int] = {}
    other = 0
    for name, nbytes, _ in tensors:
        m = _BLOCK.search(name)
        if m:
            per_block[int(m.group(1))] = per_block.get(int(m.group(1)), 0) + nbytes
        else:
            other += nbytes
    return DenoiserSize(len(per_block), max(per_block.values(), default=0), sum(per_block.values()), other)


def denoiser_size(folder: Path, precision: str, storage: str) -> DenoiserSize:
    """An expert's bytes on the device at ``storage`` (from headers only)."""
    bd = DTYPE_BYTES[precision]
    if storage.lower().endswith(".gguf"):
        return _gguf_size(Path(storage), bd)
    tensors = []
    for name, info in _safetensors_headers(folder).items():
        shape = info.get("shape", [])
        n = math.prod(shape)
        nbytes = n * bd
        if storage == "fp8" and _BLOCK.search(name) and len(shape) == 2 and name.endswith("weight"):
            nbytes = n + 4 * shape[0]  # e4m3 + a float32 scale per output row
        tensors.append((name, nbytes, n))
    return _denoiser_from_tensors(tensors)


def _gguf_size(path: Path, float_bytes: int) -> DenoiserSize:
    try:
        from gguf import GGUFReader

        reader = GGUFReader(str(path), "r")
    except Exception:  # noqa: BLE001 - the loader reports a bad file with its reason
        return DenoiserSize()
    tensors = []
    for t in reader.tensors:
        float_type = t.tensor_type.name in ("F32", "F16", "BF16")
        tensors.append((t.name, int(t.n_elements) * float_bytes if float_type else int(t.n_bytes),
                        int(t.n_elements)))
    return _denoiser_from_tensors(tensors)


def weight_sizes(root: Path, config: Any, experts: tuple[str, ...]) -> WeightSizes:
    sizes = WeightSizes()
    for name, field_name in _COMPONENTS.items():
        if (root / name).is_dir():
            sizes.components[name] = _component_size(root / name, DTYPE_BYTES[getattr(config, field_name)],
                                                     streamable=name == "text_encoder")
    for k, name in enumerate(experts):
        storage = config.weight_storage if (k == 0 or not config.weight_storage.endswith(".gguf")) else "bf16"
        sizes.denoisers[name] = denoiser_size(root / name, config.dit_precision, storage)
    return sizes


# ----------------------------------------------------------------------------------------- plans


@dataclass
class Request:
    num_frames: int
    height: int
    width: int
    task: str = "t2v"
    cfg: bool = True


@dataclass
class ModeNeed:
    """What one mode needs for a request (bytes) and whether it fits the budget."""

    mode: str
    device: int
    host: int
    fits: bool
    slots: int | None = None
    batch_cfg: bool = True
    ffn_chunk_tokens: int | None = None
    vae_tiling: bool = False
    peak_stage: str = ""

    def describe(self) -> str:
        extras = []
        if self.slots is not None:
            extras.append(f"{self.slots} blocks in flight")
        if not self.batch_cfg:
            extras.append("CFG as two passes")
        if self.ffn_chunk_tokens:
            extras.append(f"FFN in {self.ffn_chunk_tokens}-token chunks")
        if self.vae_tiling:
            extras.append("tiled VAE")
        more = f" ({', '.join(extras)})" if extras else ""
        return f"{self.mode}{more}: GPU {format_bytes(self.device)}, host {format_bytes(self.host)}"


@dataclass
class MemoryPlan:
    """The mode chosen (or asked for), why, and what each mode needs: in the result dict and the CLI."""

    requested: str
    mode: str
    weight_storage: str
    reason: str
    device_budget: int | None
    host_budget: int
    request: dict[str, Any]
    slots: int | None = None
    batch_cfg: bool | None = None  # None: the config's
    ffn_chunk_tokens: int | None = None
    vae_tiling: bool = False
    needs: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def overrides(self, config: Any) -> dict[str, Any]:
        """The PipelineConfig fields that put this plan in place."""
        out: dict[str, Any] = {"memory_mode": self.mode}
        offload = self.mode in ("model_offload", "block_stream")
        out.update(text_encoder_cpu_offload=offload or config.text_encoder_cpu_offload,
                   image_encoder_cpu_offload=offload or config.image_encoder_cpu_offload,
                   vae_cpu_offload=offload or config.vae_cpu_offload,
                   dit_cpu_offload=offload or config.dit_cpu_offload)
        if offload:
            out["pin_cpu_memory"] = True  # host copies pinned: faster, asynchronous moves
        if self.mode == "block_stream" and self.slots is not None:
            out["stream_slots"] = self.slots
        if self.batch_cfg is False:
            out["batch_cfg"] = False
        if self.ffn_chunk_tokens:
            out["ffn_chunk_tokens"] = self.ffn_chunk_tokens
        if self.vae_tiling:
            out["vae_tiling"] = True
        return out


def _estimate(g: ModelGeometry, req: Request, sizes: WeightSizes, mode: str, slots: int, *, batch_cfg: bool,
              chunk: int | None, tiling: bool) -> tuple[int, int, str]:
    """(device, host, peak stage) bytes of ``req`` in ``mode``."""
    g = replace(g, batch_cfg=batch_cfg and g.batch_cfg, vae_tiling=tiling or g.vae_tiling)
    tokens = max(1, g.tokens(req.num_frames, req.height, req.width))
    if chunk and chunk < tokens:  # the FFN hidden pair of `chunk` tokens instead of all (memory.estimate's formula)
        g = replace(g, dit_ffn=max(1, g.dit_ffn * chunk // tokens))
    comps = {k: c.total for k, c in sizes.components.items()}
    if mode == "resident":
        offloaded: dict[str, int] = {}
        resident = sum(comps.values()) + sizes.dit_total
        host_weights = 0
    elif mode == "model_offload":
        offloaded = {**comps, "transformer": sizes.dit_max}
        resident = 0
        host_weights = sum(comps.values()) + sizes.dit_total
    else:  # DiT blocks and the text encoder's blocks streamed (MIN_SLOTS for the text encoder)
        block = max((d.block_bytes for d in sizes.denoisers.values()), default=0)
        te = sizes.components.get("text_encoder")
        if te is not None and te.blocks:  # its token embedding (most of the rest) stays in RAM
            comps["text_encoder"] = min(MIN_SLOTS, te.blocks) * te.block_bytes
        offloaded = {**comps, "transformer": slots * block}
        resident = sum(d.other_bytes for d in sizes.denoisers.values())
        host_weights = sizes.components_total + sum(d.blocks_bytes for d in sizes.denoisers.values())
    g = replace(g, offloaded_weights=offloaded)
    e = estimate(g, req.num_frames, req.height, req.width, task=req.task, cfg=req.cfg, device_type="cuda")
    stages = dict(e.stages)
    if "denoising" in stages:
        stages["denoising"] -= _fused_qk_saving(g, req)
    stage = max(stages, key=stages.get)
    peak = stages[stage] + resident
    return peak + max(DEVICE_MARGIN, int(peak * DEVICE_MARGIN_FRACTION)), e.host + host_weights, stage


def _fused_qk_saving(g: ModelGeometry, req: Request) -> int:
    """What memory.estimate's attention term counts that CUDA inference never allocates: the q/k RMSNorm and
    RoPE float32 temporaries (12 bytes per hidden value), which the fused Triton kernel
    (``fastvideo.kernels.qk_norm_rope``) does not make.  Its own formulas, for the denoising stage's peak."""
    batch = 2 if req.cfg and g.batch_cfg and not g.cfg_parallel else 1
    tokens = -(-g.tokens(req.num_frames, req.height, req.width) // g.sp_size)
    d, bd = g.dit_dim, g.dit_bytes
    attn = batch * tokens * d * (7 * bd + 12) + batch * g.dit_heads * tokens * 4
    ffn = batch * tokens * (2 * g.dit_ffn * bd + d * (12 + bd))
    if attn < ffn:
        return 0
    return attn - max(attn - batch * tokens * d * 12, ffn)


def mode_need(g: ModelGeometry, req: Request, sizes: WeightSizes, budget: Budget, mode: str, *,
              slots: int | None = None) -> ModeNeed:
    """The cheapest-in-time variant of ``mode`` that fits ``budget`` (batched CFG, no chunking, no tiling first),
    else the smallest one (to report)."""
    device_budget = budget.device if budget.device is not None else 1 << 62
    variants = [(True, None, False), (True, None, True), (False, FFN_CHUNK_TOKENS, False),
                (False, FFN_CHUNK_TOKENS, True)]
    blocks = max((d.blocks for d in sizes.denoisers.values()), default=0)
    block = max((d.block_bytes for d in sizes.denoisers.values()), default=0)
    last = None
    for batch_cfg, chunk, tiling in variants:
        n = None
        if mode == "block_stream":
            if slots is not None:
                n = slots
            else:
                base, _, _ = _estimate(g, req, sizes, mode, 0, batch_cfg=batch_cfg, chunk=chunk, tiling=tiling)
                n = choose_slots(device_budget, block, base, max(blocks, 1), MIN_SLOTS)
        dev, host, stage = _estimate(g, req, sizes, mode, n or 0, batch_cfg=batch_cfg, chunk=chunk, tiling=tiling)
        while slots is None and n is not None and n > MIN_SLOTS and dev > device_budget:
            n -= 1  # the margin grows with the peak: one slot fewer may be what fits
            dev, host, stage = _estimate(g, req, sizes, mode, n, batch_cfg=batch_cfg, chunk=chunk, tiling=tiling)
        fits = dev <= device_budget and host <= budget.host
        last = ModeNeed(mode, dev, host, fits, n, batch_cfg, chunk, tiling, stage)
        if fits:
            return last
    return last  # type: ignore[return-value]


def plan_memory(g: ModelGeometry, req: Request, sizes: WeightSizes, budget: Budget, *, requested: str = "auto",
                weight_storage: str = "bf16", slots: int | None = None) -> MemoryPlan:
    """Pick (``auto``) or size (an explicit mode) the memory mode for ``req``; see the module docstring."""
    request = asdict(req)
    if budget.device_type != "cuda":
        mode = "resident" if requested == "auto" else requested
        where = "the device is the CPU: weights and activations share host memory" if budget.device_type == "cpu" \
            else "GPU memory is not measured in this process (several GPUs: each worker holds its share)"
        why = where if requested == "auto" else "asked for"
        return MemoryPlan(requested, mode, weight_storage, why, None, budget.host, request)
    needs = [mode_need(g, req, sizes, budget, m, slots=slots) for m in MODES]
    table = [asdict(n) for n in needs]
    if requested != "auto":
        n = needs[MODES.index(requested)]
        why = f"asked for (needs {format_bytes(n.device)} of GPU memory, {format_bytes(budget.device or 0)} free)"
        return _plan_of(requested, requested, weight_storage, why, budget, request, n, table)
    for n in needs:
        if n.fits:
            others = [f"{m.mode} needs {format_bytes(m.device)}" for m in needs[:MODES.index(n.mode)]]
            why = (f"{n.describe()} fits {format_bytes(budget.device or 0)} free GPU memory and "
                   f"{format_bytes(budget.host)} available RAM at {req.width}x{req.height}x{req.num_frames}")
            if others:
                why += f" ({'; '.join(others)}: too much)"
            return _plan_of("auto", n.mode, weight_storage, why, budget, request, n, table)
    smallest = needs[-1]
    why = ("no mode fits the default request " f"{req.width}x{req.height}x{req.num_frames}: "
           + "; ".join(n.describe() for n in needs) + f"; free GPU {format_bytes(budget.device or 0)}, "
           f"available RAM {format_bytes(budget.host)}. Using block_stream, the smallest: smaller requests may fit")
    return _plan_of("auto", "block_stream", weight_storage, why, budget, request, smallest, table)


def _plan_of(requested: str, mode: str, storage: str, why: str, budget: Budget, request: dict, n: ModeNeed,
             table) -> MemoryPlan:
    return MemoryPlan(requested=requested, mode=mode,
                      weight_storage=storage, reason=why, device_budget=budget.device, host_budget=budget.host,
                      request=request, slots=n.slots, batch_cfg=None if n.batch_cfg else False,
                      ffn_chunk_tokens=n.ffn_chunk_tokens, vae_tiling=n.vae_tiling, needs=table)


def refusal(g: ModelGeometry, req: Request, sizes: WeightSizes, budget: Budget, storage: str) -> str | None:
    """None when some mode fits ``req``; else a message with every mode's numbers (and fp8's when bf16)."""
    if budget.device_type != "cuda":
        return None
    needs = [mode_need(g, req, sizes, budget, m) for m in MODES]
    if any(n.fits for n in needs):
        return None
    msg = (f"{req.width}x{req.height}x{req.num_frames} fits no memory mode: " + "; ".join(n.describe() for n in needs)
           + f"; free GPU memory {format_bytes(budget.device or 0)}, available RAM {format_bytes(budget.host)}")
    return msg


# ----------------------------------------------------------------------------------------- torch side


def load_denoiser(info: Any, name: str, config: Any, target: Any, dtype: Any, first_expert: bool):
    """Load a DiT expert at the configured weight storage: the folder's weights (``bf16``), those quantised to
    fp8 block by block on the CPU, or the GGUF file (first expert only)."""
    import torch

    from fastvideo.models.loader.component_loader import load_component

    storage = config.weight_storage
    if storage.lower().endswith(".gguf"):
        if not first_expert:
            raise ValueError(f"weight_storage={storage!r}: a GGUF file replaces one DiT, and this model has "
                             f"several experts ({name}); use weight_storage='fp8' or 'bf16'")
        return _load_gguf(info, name, config, target, dtype)
    if storage == "fp8":  # quantised tensor by tensor as read: the host never holds the bf16 blocks
        from fastvideo.hub.names import check_component_folder, child
        from fastvideo.models.loader.quantized import load_fp8_module

        folder = child(info.path, name, "component", info.path / "model_index.json")
        check_component_folder(folder)
        module = load_fp8_module(folder, info.component_class(name), dtype)
        return module.to(target) if torch.device(target).type != "cpu" else module
    return load_component(str(info.path), name, device=target, dtype=dtype)


def _load_gguf(info: Any, name: str, config: Any, target: Any, dtype: Any):
    from fastvideo.hub.names import child
    from fastvideo.models.loader.component_loader import build_empty, read_arch_config
    from fastvideo.models.loader.gguf import load_gguf_dit

    cc = info.component_class(name)
    folder = child(info.path, name, "component", info.path / "model_index.json")
    arch = read_arch_config(folder, cc)
    module = build_empty(cc, arch)
    load_gguf_dit(config.weight_storage, module, arch, dtype=dtype, device="cpu", keep_fp32=arch.keep_fp32_modules)
    module.arch_config = arch
    return module.to(target)


TEXT_ENCODER_BLOCKS = "encoder.block"  # transformers' T5 / UMT5 encoder layers
TEXT_ENCODER_EMBEDDING = "encoder.embed_tokens"


def _has(module: Any, path: str) -> bool:
    try:
        module.get_submodule(path)
        return True
    except AttributeError:
        return False


def host_embedding(embedding: Any, device: Any) -> None:
    """Look tokens up in ``embedding`` where its table is (the host) and hand the rows to ``device``: a text
    encoder's vocabulary table (UMT5-XXL: 256k x 4096, 2 GiB in bf16) never goes to the GPU for 2 x 512 rows."""
    import torch.nn.functional as F

    def forward(ids):
        rows = F.embedding(ids.to(embedding.weight.device), embedding.weight, embedding.padding_idx)
        return rows.to(device, non_blocking=False)

    embedding.forward = forward


def _module_list(module: Any, path: str) -> bool:
    from torch import nn

    try:
        return isinstance(module.get_submodule(path), nn.ModuleList)
    except AttributeError:
        return False


class Placement:
    """The DiT's "offload" object for the denoising stage: a streamed expert streams (slots allocated while it
    runs), any other is moved whole by the :class:`~fastvideo.pipelines.offload.Offloader`."""

    def __init__(self, offloader):
        self.offloader = offloader

    def __getattr__(self, name):  # moves, pin_memory ... of the wrapped Offloader
        return getattr(self.offloader, name)

    def use(self, module):
        from fastvideo.pipelines.streaming import streamer_of

        streamer = streamer_of(module)
        return streamer.use(module) if streamer is not None else self.offloader.use(module)


def growable_segments(device: Any, log=None) -> bool:
    """Growable CUDA allocator segments (``expandable_segments``) from now on, unless the user set
    ``PYTORCH_CUDA_ALLOC_CONF``; whether they were switched on.

    Under a small budget the fixed-size segments fragment: activations of several sizes (the bf16 and fp32
    hidden-state temporaries, 0.7 and 1.4 GiB at 14B 720p) leave cached blocks no later request fits.  On an
    H100 (run 46 in docs/benchmarks) every streamed step ran out of memory at its cap with 2.5-3.2 GiB reserved
    and unused.  Streaming and offload switch them on; a resident run keeps the default allocator."""
    import torch

    if getattr(device, "type", None) != "cuda" or os.environ.get("PYTORCH_CUDA_ALLOC_CONF"):
        return False
    setter = getattr(torch._C, "_accelerator_setAllocatorSettings", None)  # torch >= 2.9
    if setter is None:
        setter = getattr(torch._C, "_cuda_cudaCachingAllocator_set_allocator_settings", None)
    if setter is None:
        return False
    try:
        setter("expandable_segments:True")
    except RuntimeError as exc:  # e.g. a platform without virtual memory management
        if log:
            log(f"growable allocator segments unavailable: {exc}")
        return False
    if log:
        log("allocator: growable segments (expandable_segments) for the memory mode")
    return True


def apply_plan(loaded: Any, log=None) -> None:
    """After loading: block streaming installed on every expert (``memory_mode="block_stream"``), FFN chunking
    set; the loaded modules' DiT offload becomes a :class:`Placement`."""
    from torch import nn

    from fastvideo.layers.chunking import chunk_dit
    from fastvideo.pipelines.streaming import BlockStreamer

    config = loaded.config
    if getattr(config, "memory_mode", "resident") not in (None, "resident"):
        growable_segments(loaded.device, log)
    experts = [n for n in getattr(loaded.info, "experts", ("transformer",)) if loaded.modules.get(n) is not None]
    chunk = getattr(config, "ffn_chunk_tokens", None)
    for name in experts:
        module = loaded.modules[name]
        if chunk:
            chunk_dit(module, chunk)
        if config.memory_mode == "block_stream" and hasattr(module, "blocks"):
            slots = config.stream_slots or MIN_SLOTS
            streamer = BlockStreamer(loaded.device, slots).install(module)
            if log:
                log(f"{name}: {len(streamer.packed)} blocks streamed through {streamer.num_slots} slots of "
                    f"{format_bytes(streamer.slot_bytes)}")
    te = loaded.modules.get("text_encoder")
    if config.memory_mode == "block_stream" and te is not None and _module_list(te, TEXT_ENCODER_BLOCKS):
        embedding = te.get_submodule(TEXT_ENCODER_EMBEDDING) if _has(te, TEXT_ENCODER_EMBEDDING) else None
        host = ()
        if isinstance(embedding, nn.Embedding) and loaded.device.type != "cpu":
            host_embedding(embedding, loaded.device)  # the 2 GiB vocabulary table stays in RAM
            te.compute_device = loaded.device
            host = (embedding.weight,)
        BlockStreamer(loaded.device, MIN_SLOTS, resident_rest=False, host_tensors=host).install(
            te, TEXT_ENCODER_BLOCKS)
    if loaded.offloader is not None and not isinstance(loaded.offloader, Placement):
        loaded.offloader = Placement(loaded.offloader)


# ----------------------------------------------------------------------------------------- load and generate


def _resident_bytes(sizes: WeightSizes, mode: str) -> int:
    if mode == "resident":
        return sizes.components_total + sizes.dit_total
    if mode == "block_stream":
        return sum(d.other_bytes for d in sizes.denoisers.values())
    return 0


@dataclass
class MemoryContext:
    """What the generator keeps to plan and check requests: the model's numbers and the plan in force."""

    geometry: ModelGeometry
    sizes: WeightSizes
    plan: MemoryPlan
    config: Any

    def tile_for(self, req: Request, budget: Budget) -> bool:
        """True when ``auto`` should tile the VAE for this request: it fits the loaded mode only tiled."""
        return (self.plan.requested == "auto" and not self.config.vae_tiling
                and self.check(req, budget) is not None and self.check(req, budget, tiling=True) is None)

    def check(self, req: Request, budget: Budget, tiling: bool | None = None) -> str | None:
        """None when ``req`` fits the loaded mode (the free memory already excludes the loaded weights), else
        the refusal with the numbers of every mode.  ``tiling``: with the VAE tiled or not (default: as
        configured)."""
        if budget.device_type != "cuda" or budget.device is None:
            return None
        cfg = self.config
        mode = cfg.memory_mode
        tiling = cfg.vae_tiling if tiling is None else tiling
        dev, host, stage = _estimate(self.geometry, req, self.sizes, mode, cfg.stream_slots or 0,
                                     batch_cfg=cfg.batch_cfg, chunk=cfg.ffn_chunk_tokens, tiling=tiling)
        dev -= _resident_bytes(self.sizes, mode)
        host_weights = 0 if mode == "resident" else self.sizes.components_total + self.sizes.dit_total
        host -= host_weights
        if dev <= budget.device and host <= budget.host:
            return None
        size = f"{req.width}x{req.height}x{req.num_frames}"
        msg = (f"not enough memory for {size} in memory_mode={mode!r}: it needs about {format_bytes(dev)} more GPU "
               f"memory (peak in {stage}), {format_bytes(budget.device)} is free; host {format_bytes(host)} of "
               f"{format_bytes(budget.host)}")
        # What a fresh load would need (the budget plus what this model holds now).
        whole = replace(budget, device=budget.device + _resident_bytes(self.sizes, mode),
                        host=budget.host + host_weights)
        needs = [mode_need(self.geometry, req, self.sizes, whole, m) for m in MODES]
        fitting = [n for n in needs if n.fits]
        if fitting:
            n = fitting[0]
            msg += (f"; it fits with {n.describe()}: load the model with memory_mode={n.mode!r}"
                    + (", vae_tiling=True" if n.vae_tiling and not cfg.vae_tiling else "")
                    + (", batch_cfg=False" if not n.batch_cfg and cfg.batch_cfg else "")
                    + (f", ffn_chunk_tokens={n.ffn_chunk_tokens}" if n.ffn_chunk_tokens else ""))
        else:
            msg += "; it fits no memory mode: " + "; ".join(n.describe() for n in needs)
            if self.plan.weight_storage == "bf16":
                msg += "; weight_storage='fp8' halves the DiT's block weights"
            msg += "; lower num_frames, height or width"
        return msg


def replan(ctx: MemoryContext, req: Request, budget: Budget) -> MemoryPlan | None:
    """``auto``: the plan for ``req`` on a fresh load (``budget`` plus what the loaded weights hold), when the
    loaded mode cannot run it and another mode can; else None."""
    if ctx.plan.requested != "auto" or budget.device_type != "cuda" or budget.device is None:
        return None
    if ctx.check(req, budget) is None:
        return None
    mode = ctx.config.memory_mode
    host_held = 0 if mode == "resident" else ctx.sizes.components_total + ctx.sizes.dit_total
    whole = replace(budget, device=budget.device + _resident_bytes(ctx.sizes, mode), host=budget.host + host_held)
    plan = plan_memory(ctx.geometry, req, ctx.sizes, whole, weight_storage=ctx.plan.weight_storage)
    if plan.reason.startswith("no mode fits") or plan.mode == mode:
        return None
    plan.reason = f"switched from {mode} for {req.width}x{req.height}x{req.num_frames}: {plan.reason}"
    return plan


def default_request(info: Any) -> Request:
    sp = info.sampling_param_cls()
    cfg = isinstance(sp.guidance_scale, (int, float)) and sp.guidance_scale > 1.0
    return Request(int(sp.num_frames), int(sp.height), int(sp.width), info.task, cfg)


def resolve(info: Any, config: Any, device: Any, budget: Budget | None = None) -> tuple[Any, MemoryContext]:
    """Plan ``config.memory_mode`` for ``device`` (before loading) -> (the config to load with, the context)."""
    from fastvideo.pipelines.memory import budget_for

    storage = config.weight_storage
    if getattr(config, "use_fsdp_inference", False):
        if config.memory_mode in ("model_offload", "block_stream"):
            raise ValueError(f"memory_mode={config.memory_mode!r} cannot be combined with use_fsdp_inference=True "
                             "(FSDP already splits the DiT's weights over the GPUs); use one or the other")
        if config.memory_mode == "auto":  # sharded weights: the ranks hold their shards resident
            config = config.update(memory_mode="resident")
    if storage.lower().endswith(".gguf") and not Path(storage).expanduser().is_file():
        raise ValueError(f"weight_storage={storage!r}: GGUF file not found (give the path of the DiT's .gguf file)")
    geometry = ModelGeometry.from_model(info.path, config)
    experts = tuple(getattr(info, "experts", ("transformer",)))
    sizes = weight_sizes(Path(info.path), config, experts)
    budget = budget or budget_for(device)
    plan = plan_memory(geometry, default_request(info), sizes, budget, requested=config.memory_mode,
                       weight_storage=storage, slots=config.stream_slots)
    if budget.device_type == "cuda" or plan.requested != "auto":  # an asked-for mode is set up on any device
        config = config.update(**plan.overrides(config))
    else:
        config = config.update(memory_mode=plan.mode)
    return config, MemoryContext(geometry, sizes, plan, config)


def peak_host_reset() -> bool:
    """Reset this process's peak RSS (Linux ``/proc/self/clear_refs``); False where it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_host_bytes() -> int | None:
    """This process's peak RSS since the last :func:`peak_host_reset` (``VmHWM``), else since it started."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import resource
        import sys

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(rss if sys.platform == "darwin" else rss * 1024)
    except (ImportError, OSError):
        return None
