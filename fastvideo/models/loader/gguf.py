"""GGUF-quantised DiT files (ComfyUI's ``wan2.1-t2v-14b-Q4_K_M.gguf`` and friends) loaded into our DiT.

``load_gguf_dit(path, module, arch_config, ...)`` reads the file with the ``gguf`` package (memory-mapped, no
copy until a tensor is used), maps its names through the arch config's rules -- ``official_param_names_mapping``
(official Wan / ComfyUI names, as the city96 GGUF files use) then ``param_names_mapping`` (Diffusers -> ours),
with a Diffusers-named file going straight to the second -- checks the result against the model like any
checkpoint (strict: a missing or extra tensor is an error listing them), then:

* each Linear whose weight is quantised (Q8_0, Q6_K, Q5_K, Q4_K) becomes a
  :class:`~fastvideo.layers.quant.GGUFLinear` holding the file's blocks as they are; a fused target (our q/k/v
  projection from three file tensors) keeps one segment per part, so parts of different types stay exact;
* every other tensor (norms, biases, modulation, the patch embedding, F16/F32 weights) is dequantised to the
  component dtype (float32 where the config keeps it so).

:func:`quantize` writes those block formats (Q8_0 with ``gguf``'s own encoder; the K-quants with a plain
min/max encoder, valid blocks but without llama.cpp's error search), for tests and the benchmark's
random-weight GGUF files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fastvideo.layers.quant import GGML_BY_NAME, GGML_TYPES, GGUFLinear, dequantize, row_bytes
from fastvideo.mapping.rules import TensorInfo, build_report, compile_rules, map_name

FLOAT_TYPES = {0, 1, 30}  # F32, F16, BF16: loaded as plain tensors


class GGUFError(ValueError):
    """A GGUF file that cannot be loaded into this model (the message says what and what to do)."""


@dataclass
class GGUFTensor:
    name: str
    qtype: int
    shape: tuple[int, ...]  # torch order ([out, in] for a Linear weight)
    data: np.ndarray  # the raw bytes (uint8) or the float array

    @property
    def type_name(self) -> str:
        return GGML_TYPES.get(self.qtype, (f"type {self.qtype}",))[0]

    def raw(self) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(self.data).view(np.uint8).reshape(-1).copy())

    def rows(self) -> torch.Tensor:
        """Quantised data as ``[rows, row_bytes]`` uint8."""
        return self.raw().reshape(self.shape[0], row_bytes(self.qtype, int(np.prod(self.shape[1:]))))

    def to_float(self) -> torch.Tensor:
        return dequantize(self.raw(), self.qtype, self.shape)


def read_gguf(path: str | Path) -> dict[str, GGUFTensor]:
    """The tensors of a GGUF file (memory-mapped), torch-order shapes; unsupported types are refused by name."""
    try:
        from gguf import GGUFReader
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise GGUFError("reading GGUF files needs the 'gguf' package: pip install gguf") from exc
    path = Path(path)
    if not path.is_file():
        raise GGUFError(f"{path}: GGUF file not found")
    try:
        reader = GGUFReader(str(path), "r")
    except Exception as exc:  # noqa: BLE001 - gguf raises ValueError/struct errors on bad files
        raise GGUFError(f"{path}: not a readable GGUF file ({exc})") from None
    out: dict[str, GGUFTensor] = {}
    bad: list[str] = []
    for t in reader.tensors:
        qtype = int(t.tensor_type)
        if qtype not in GGML_TYPES:
            bad.append(f"{t.name} ({t.tensor_type.name})")
            continue
        out[t.name] = GGUFTensor(t.name, qtype, tuple(int(v) for v in reversed(t.shape.tolist())), t.data)
    if bad:
        raise GGUFError(f"{path}: tensor types fastvideo cannot dequantise: {', '.join(bad[:5])}"
                        f"{' ...' if len(bad) > 5 else ''}; supported: "
                        f"{', '.join(n for n, _, _ in GGML_TYPES.values())}")
    return out


def _diffusers_names(tensors: dict[str, GGUFTensor], arch_config: Any) -> dict[str, GGUFTensor]:
    """File names -> Diffusers names (official / ComfyUI names through ``official_param_names_mapping``)."""
    names = list(tensors)
    diffusers_layout = any(".attn1." in n or ".ffn.net." in n for n in names)
    official = getattr(type(arch_config), "official_param_names_mapping", None) or {}
    if diffusers_layout or not official:
        return tensors
    rules = compile_rules(official)
    out = {}
    for name, t in tensors.items():
        new, _ = map_name(name, rules)
        out[new] = t
    return out


def load_gguf_dit(path: str | Path, module: nn.Module, arch_config: Any, *, dtype: torch.dtype,
                  device: torch.device | str = "cpu", keep_fp32: list[str] | None = None) -> nn.Module:
    """Fill ``module`` (built on the meta device from ``arch_config``) from the GGUF file (see the docstring)."""
    from fastvideo.models.loader.weights import WeightLoadError, materialize, target_infos

    tensors = _diffusers_names(read_gguf(path), arch_config)
    rules = compile_rules(arch_config.param_names_mapping)
    infos = {n: TensorInfo(t.shape, t.type_name) for n, t in tensors.items()}
    report = build_report(infos, target_infos(module), rules, str(path))
    if not report.ok:
        raise GGUFError(f"{path}: this GGUF file does not fit the model "
                        f"({type(module).__name__} from the folder's transformer/config.json)\n{report.summary()}")
    # Group the file tensors by target (fused targets: their parts in order).
    parts: dict[str, dict[int, GGUFTensor]] = {}
    for name, t in tensors.items():
        target, rule = map_name(name, rules)
        if rule is not None and rule.is_ignore:
            continue
        index = rule.merge_index if rule is not None and rule.is_merge else 0
        parts.setdefault(target, {})[index] = t
    state: dict[str, torch.Tensor] = {}
    for target, by_index in parts.items():
        pieces = [by_index[i] for i in sorted(by_index)]
        owner_name, _, attr = target.rpartition(".")
        owner = module.get_submodule(owner_name) if owner_name else module
        quantised = any(p.qtype not in FLOAT_TYPES for p in pieces)
        if attr == "weight" and type(owner) is nn.Linear and quantised:
            with torch.device("meta"):
                layer = GGUFLinear(owner.in_features, owner.out_features, [(p.qtype, p.shape[0]) for p in pieces],
                                   bias=owner.bias is not None, dtype=dtype)
            if any(p.shape[1:] != (owner.in_features,) for p in pieces):
                raise GGUFError(f"{path}: {target}: file shapes {[list(p.shape) for p in pieces]} do not fit "
                                f"[{owner.out_features}, {owner.in_features}]")
            parent_name, _, child = owner_name.rpartition(".")
            setattr(module.get_submodule(parent_name) if parent_name else module, child, layer)
            for k, p in enumerate(pieces):
                state[f"{owner_name}.weight_q{k}"] = p.rows()
            continue
        floats = [p.to_float() for p in pieces]
        tensor = floats[0] if len(floats) == 1 else torch.cat(floats, dim=0)
        state[target] = tensor
    try:
        materialize(module, state, dtype=dtype, keep_fp32=keep_fp32 or [], device=device)
    except WeightLoadError as exc:
        raise GGUFError(f"{path}: {exc}") from None
    module.eval()
    module.requires_grad_(False)
    return module


def storage_summary(module: nn.Module) -> dict[str, int]:
    """How many Linear layers of ``module`` are stored in each GGUF type (``{"Q4_K": 160, ...}``)."""
    out: dict[str, int] = {}
    for m in module.modules():
        if isinstance(m, GGUFLinear):
            out[m.storage] = out.get(m.storage, 0) + 1
    return out


# ----------------------------------------------------------------------------------------- writing


def _f16_bytes(v: np.ndarray) -> np.ndarray:
    return v.astype(np.float16).reshape(-1, 1).view(np.uint8)


def _pack_scale_min(sc: np.ndarray, mn: np.ndarray) -> np.ndarray:
    """8 six-bit scales and mins per block -> ggml's 12-byte K-quant layout."""
    sc, mn = sc.astype(np.uint8), mn.astype(np.uint8)
    d = (sc[:, :4] & 0x3F) | ((sc[:, 4:] >> 4) << 6)
    m = (mn[:, :4] & 0x3F) | ((mn[:, 4:] >> 4) << 6)
    md = (sc[:, 4:] & 0x0F) | ((mn[:, 4:] & 0x0F) << 4)
    return np.concatenate([d, m, md], axis=1).astype(np.uint8)


def _k_affine(x: np.ndarray, levels: int):
    """Q4_K / Q5_K: per 32-value sub-block an offset and a step, both 6-bit multiples of per-block d, dmin."""
    n = x.shape[0]
    sub = x.reshape(n, 8, 32)
    lo = np.minimum(sub.min(axis=2), 0.0)
    hi = sub.max(axis=2)
    step = (hi - lo) / levels
    offset = -lo
    d = (step.max(axis=1) / 63).astype(np.float16).astype(np.float32)
    dmin = (offset.max(axis=1) / 63).astype(np.float16).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(d[:, None] > 0, np.clip(np.round(step / d[:, None]), 0, 63), 0)
        mn = np.where(dmin[:, None] > 0, np.clip(np.round(offset / dmin[:, None]), 0, 63), 0)
        s = d[:, None] * sc
        q = np.where(s[..., None] > 0, np.round((sub + (dmin[:, None] * mn)[..., None]) / s[..., None]), 0)
    q = np.clip(q, 0, levels).astype(np.uint8)
    return d, dmin, sc, mn, q


def _quant_q4_k(x: np.ndarray) -> np.ndarray:
    n = x.shape[0]
    d, dmin, sc, mn, q = _k_affine(x, 15)
    qs = (q[:, 0::2] | (q[:, 1::2] << 4)).reshape(n, 128)  # chunk c: sub-block 2c low nibble, 2c+1 high
    return np.concatenate([_f16_bytes(d), _f16_bytes(dmin), _pack_scale_min(sc, mn), qs], axis=1)


def _quant_q5_k(x: np.ndarray) -> np.ndarray:
    n = x.shape[0]
    d, dmin, sc, mn, q = _k_affine(x, 31)
    low, high = q & 0x0F, q >> 4
    qs = (low[:, 0::2] | (low[:, 1::2] << 4)).reshape(n, 128)
    qh = np.zeros((n, 32), dtype=np.uint8)
    for j in range(8):
        qh |= (high[:, j, :] << j).astype(np.uint8)
    return np.concatenate([_f16_bytes(d), _f16_bytes(dmin), _pack_scale_min(sc, mn), qh, qs], axis=1)


def _quant_q6_k(x: np.ndarray) -> np.ndarray:
    n = x.shape[0]
    sub = x.reshape(n, 16, 16)
    step = np.abs(sub).max(axis=2) / 31
    d = (step.max(axis=1) / 127).astype(np.float16).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(d[:, None] > 0, np.clip(np.round(step / d[:, None]), -128, 127), 0)
        s = d[:, None] * sc
        q = np.where(s[..., None] > 0, np.round(sub / s[..., None]), 0)
    q = (np.clip(q, -32, 31) + 32).astype(np.uint8).reshape(n, 256)
    e = np.arange(256)
    h, sh, k = e // 128, (e % 128) // 64, e % 64
    ql = np.zeros((n, 128), dtype=np.uint8)
    for s_ in (0, 1):
        sel = sh == s_
        ql[:, (h * 64 + k)[sel]] |= ((q[:, sel] & 0x0F) << (4 * s_)).astype(np.uint8)
    qh = np.zeros((n, 64), dtype=np.uint8)
    j, l_ = (e % 128) // 32, e % 32
    for jj in range(4):
        sel = j == jj
        qh[:, (h * 32 + l_)[sel]] |= ((q[:, sel] >> 4) << (2 * jj)).astype(np.uint8)
    return np.concatenate([ql, qh, sc.astype(np.int8).view(np.uint8), _f16_bytes(d)], axis=1)


def quantize(array: np.ndarray, type_name: str) -> np.ndarray:
    """``array`` (rows x columns, float) as GGUF blocks of ``type_name`` (uint8 ``[rows, row_bytes]``)."""
    if type_name not in GGML_BY_NAME:
        raise ValueError(f"unknown GGUF type {type_name!r}; known: {sorted(GGML_BY_NAME)}")
    qtype = GGML_BY_NAME[type_name]
    x = np.asarray(array, dtype=np.float32)
    if type_name in ("F32", "F16"):
        return x.astype(np.float32 if type_name == "F32" else np.float16)
    rows = x.reshape(x.shape[0], -1)
    _, block, size = GGML_TYPES[qtype]
    if rows.shape[1] % block:
        raise ValueError(f"{type_name} needs rows of a multiple of {block} values, got {rows.shape[1]}")
    if type_name == "Q8_0":
        from gguf import GGMLQuantizationType
        from gguf.quants import quantize as gguf_quantize

        return gguf_quantize(rows, GGMLQuantizationType.Q8_0)
    blocks = rows.reshape(-1, block)
    fn = {"Q4_K": _quant_q4_k, "Q5_K": _quant_q5_k, "Q6_K": _quant_q6_k}[type_name]
    return fn(blocks).reshape(rows.shape[0], -1)


def write_gguf(path: str | Path, state_dict: dict[str, torch.Tensor], type_name: str,
               quantize_if=lambda name, t: t.ndim == 2 and t.shape[1] % 256 == 0 and t.shape[0] >= 16,
               arch: str = "wan") -> Path:
    """Write ``state_dict`` (file names) as a GGUF file: 2-D weights in ``type_name`` (where ``quantize_if``),
    the rest F32, like ComfyUI's converter.  Written to a temp file and renamed."""
    import os
    import tempfile

    from gguf import GGMLQuantizationType, GGUFWriter

    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        writer = GGUFWriter(tmp, arch)
        for name, t in state_dict.items():
            arr = t.detach().float().cpu().numpy()
            if quantize_if(name, t) and type_name not in ("F32", "F16"):
                q = quantize(arr, type_name)
                writer.add_tensor(name, q, raw_shape=q.shape, raw_dtype=GGMLQuantizationType[type_name])
            else:
                writer.add_tensor(name, arr.astype(np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
