"""Linear layers with compact weight storage, computed at the activation dtype (``weight_storage``).

* :class:`FP8Linear`: weights stored as float8 e4m3 with one float32 scale per output channel
  (``w ~= w8 * scale[:, None]``, the scale ``amax(row) / 448``), half the bytes of bf16.
* :class:`GGUFLinear`: weights stored as GGUF blocks (Q8_0, Q6_K, Q5_K, Q4_K, or F16/BF16/F32) exactly as in
  the file, possibly several row segments of different types (a fused q/k/v made of three file tensors).

Both dequantise their weight for each call (per layer, on the device the weight is on: after block streaming
has copied the compact block there), so the GEMM runs in bf16 (or whatever the input dtype is) and only one
layer's full weight exists at a time.  ``.weight`` is that dequantised weight, so code that reads
``linear.weight`` (the fused GEMM paths of :mod:`fastvideo.layers.residual`) works unchanged.  The *plain twin*
of each is ``nn.Linear`` with :meth:`dequantized_weight` as its weight (:meth:`to_linear`): the tests compare
the two.

The GGUF block formats are ggml's (``ggml-common.h``; the ``gguf`` package's NumPy code is the reference the
tests check against); :func:`dequantize` implements them in torch so they run on the GPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FP8_DTYPE = torch.float8_e4m3fn
FP8_MAX = 448.0  # largest finite e4m3fn value


# ----------------------------------------------------------------------------------------- fp8


def quantize_fp8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``weight [out, in]`` -> (e4m3 weight, float32 scale per output row); an all-zero row gets scale 1."""
    w = weight.detach().float()
    amax = w.abs().amax(dim=1)
    scale = torch.where(amax > 0, amax / FP8_MAX, torch.ones_like(amax))
    w8 = (w / scale[:, None]).clamp(-FP8_MAX, FP8_MAX).to(FP8_DTYPE)
    return w8, scale


class FP8Linear(nn.Module):
    """A Linear whose weight is float8 e4m3 with per-output-channel scales (see the module docstring)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype: torch.dtype = torch.bfloat16):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("weight_fp8", torch.zeros(out_features, in_features, dtype=FP8_DTYPE))
        self.register_buffer("weight_scale", torch.ones(out_features, dtype=torch.float32))
        self.bias = nn.Parameter(torch.zeros(out_features, dtype=dtype), requires_grad=False) if bias else None
        self.compute_dtype = dtype

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> FP8Linear:
        w = linear.weight
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None, w.dtype)
        w8, scale = quantize_fp8(w)
        layer.weight_fp8 = w8.to(w.device)
        layer.weight_scale = scale.to(w.device)
        if linear.bias is not None:
            layer.bias = nn.Parameter(linear.bias.detach().clone(), requires_grad=False)
        return layer

    def dequantized_weight(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        dtype = dtype or self.compute_dtype
        return (self.weight_fp8.to(torch.float32) * self.weight_scale[:, None]).to(dtype)

    @property
    def weight(self) -> torch.Tensor:
        return self.dequantized_weight()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.dequantized_weight(x.dtype), None if self.bias is None else self.bias.to(x.dtype))

    def to_linear(self) -> nn.Linear:
        """The plain twin: an ``nn.Linear`` with the dequantised weight."""
        return _plain_twin(self)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, storage=fp8_e4m3"


def _plain_twin(layer) -> nn.Linear:
    lin = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None,
                    dtype=layer.compute_dtype, device=layer.bias.device if layer.bias is not None else None)
    with torch.no_grad():
        lin.weight.copy_(layer.dequantized_weight())
        if layer.bias is not None:
            lin.bias.copy_(layer.bias)
    return lin.requires_grad_(False)


# ----------------------------------------------------------------------------------------- GGUF blocks

QK_K = 256
# ggml type ids (GGMLQuantizationType) -> (name, elements per block, bytes per block)
GGML_TYPES = {0: ("F32", 1, 4), 1: ("F16", 1, 2), 8: ("Q8_0", 32, 34), 12: ("Q4_K", 256, 144),
              13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 30: ("BF16", 1, 2)}
GGML_BY_NAME = {name: tid for tid, (name, _, _) in GGML_TYPES.items()}


def row_bytes(qtype: int, columns: int) -> int:
    name, block, size = GGML_TYPES[qtype]
    if columns % block:
        raise ValueError(f"a {name} row of {columns} values is not a whole number of {block}-value blocks")
    return columns // block * size


def _f16(b: torch.Tensor) -> torch.Tensor:
    """Two bytes per value (little endian) -> float32."""
    return b.contiguous().view(torch.float16).float()


def _scale_min_k4(scales: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Q4_K/Q5_K: 12 bytes -> 8 six-bit scales and 8 six-bit mins."""
    s = scales.reshape(-1, 3, 4).int()
    d, m, md = s[:, 0], s[:, 1], s[:, 2]
    sc = torch.cat([d & 0x3F, (md & 0x0F) | ((d >> 2) & 0x30)], dim=-1)
    mn = torch.cat([m & 0x3F, (md >> 4) | ((m >> 2) & 0x30)], dim=-1)
    return sc.float(), mn.float()


def _bits(x: torch.Tensor, shifts: list[int], mask: int) -> torch.Tensor:
    """``(x[..., None, :] >> shift) & mask`` for each shift, stacked on a new dim before the last."""
    sh = torch.tensor(shifts, dtype=torch.int32, device=x.device).view(*([1] * (x.ndim - 1)), len(shifts), 1)
    return (x.int().unsqueeze(-2) >> sh) & mask


def _deq_q8_0(b: torch.Tensor) -> torch.Tensor:
    d = _f16(b[:, :2])
    return b[:, 2:].contiguous().view(torch.int8).float() * d


def _deq_q4_k(b: torch.Tensor) -> torch.Tensor:
    n = b.shape[0]
    d, dmin = _f16(b[:, 0:2]), _f16(b[:, 2:4])
    sc, mn = _scale_min_k4(b[:, 4:16])
    qs = _bits(b[:, 16:].reshape(n, 4, 32), [0, 4], 0x0F).reshape(n, 8, 32).float()
    return ((d * sc)[..., None] * qs - (dmin * mn)[..., None]).reshape(n, QK_K)


def _deq_q5_k(b: torch.Tensor) -> torch.Tensor:
    n = b.shape[0]
    d, dmin = _f16(b[:, 0:2]), _f16(b[:, 2:4])
    sc, mn = _scale_min_k4(b[:, 4:16])
    qh = _bits(b[:, 16:48].reshape(n, 1, 32), list(range(8)), 0x01).reshape(n, 8, 32)
    ql = _bits(b[:, 48:].reshape(n, 4, 32), [0, 4], 0x0F).reshape(n, 8, 32)
    q = (ql | (qh << 4)).float()
    return ((d * sc)[..., None] * q - (dmin * mn)[..., None]).reshape(n, QK_K)


def _deq_q6_k(b: torch.Tensor) -> torch.Tensor:
    n = b.shape[0]
    ql = _bits(b[:, :128].reshape(n, 2, 64), [0, 4], 0x0F).reshape(n, 8, 32)
    qh = _bits(b[:, 128:192].reshape(n, 2, 32), [0, 2, 4, 6], 0x03).reshape(n, 8, 32)
    scales = b[:, 192:208].contiguous().view(torch.int8).float()
    d = _f16(b[:, 208:210])
    q = ((ql | (qh << 4)) - 32).float().reshape(n, 16, 16)
    return ((d * scales)[..., None] * q).reshape(n, QK_K)


_DEQUANT = {8: _deq_q8_0, 12: _deq_q4_k, 13: _deq_q5_k, 14: _deq_q6_k}


def dequantize(raw: torch.Tensor, qtype: int, shape: tuple[int, ...], dtype: torch.dtype = torch.float32
               ) -> torch.Tensor:
    """GGUF data (uint8, any shape holding the tensor's bytes) of ggml type ``qtype`` -> a ``shape`` tensor."""
    if qtype not in GGML_TYPES:
        raise ValueError(f"GGUF tensor type {qtype} is not supported (supported: "
                         f"{', '.join(n for n, _, _ in GGML_TYPES.values())})")
    flat = raw.reshape(-1)
    if qtype == 0:
        out = flat.contiguous().view(torch.float32)
    elif qtype == 1:
        out = flat.contiguous().view(torch.float16)
    elif qtype == 30:
        out = flat.contiguous().view(torch.bfloat16)
    else:
        _, _, size = GGML_TYPES[qtype]
        out = _DEQUANT[qtype](flat.reshape(-1, size))
    return out.reshape(shape).to(dtype)


class GGUFLinear(nn.Module):
    """A Linear whose weight is kept as GGUF blocks: one or more row segments ``(qtype, rows)`` (each a uint8
    buffer ``[rows, row_bytes]``), dequantised and concatenated for each call."""

    def __init__(self, in_features: int, out_features: int, segments: list[tuple[int, int]], bias: bool = True,
                 dtype: torch.dtype = torch.bfloat16):
        super().__init__()
        if sum(rows for _, rows in segments) != out_features:
            raise ValueError(f"GGUF segments hold {sum(r for _, r in segments)} rows, the layer {out_features}")
        self.in_features, self.out_features = in_features, out_features
        self.qtypes = [q for q, _ in segments]
        self.rows = [r for _, r in segments]
        for k, (q, rows) in enumerate(segments):
            self.register_buffer(f"weight_q{k}", torch.zeros(rows, row_bytes(q, in_features), dtype=torch.uint8))
        self.bias = nn.Parameter(torch.zeros(out_features, dtype=dtype), requires_grad=False) if bias else None
        self.compute_dtype = dtype

    @property
    def storage(self) -> str:
        return "+".join(dict.fromkeys(GGML_TYPES[q][0] for q in self.qtypes))

    def dequantized_weight(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        dtype = dtype or self.compute_dtype
        parts = [dequantize(getattr(self, f"weight_q{k}"), q, (r, self.in_features), dtype)
                 for k, (q, r) in enumerate(zip(self.qtypes, self.rows))]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)

    @property
    def weight(self) -> torch.Tensor:
        return self.dequantized_weight()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.dequantized_weight(x.dtype), None if self.bias is None else self.bias.to(x.dtype))

    def to_linear(self) -> nn.Linear:
        return _plain_twin(self)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, storage={self.storage}"


def quantized_linears(model: nn.Module) -> list[str]:
    """Names of the FP8Linear / GGUFLinear layers of ``model``."""
    return [n for n, m in model.named_modules() if isinstance(m, (FP8Linear, GGUFLinear))]


def quantize_linears_fp8(model: nn.Module, include=lambda name: True) -> int:
    """Replace every ``nn.Linear`` under ``model`` whose name passes ``include`` by an :class:`FP8Linear`
    (one at a time, on the layer's device: the peak is one layer's float32 copy); returns how many."""
    count = 0
    for name, mod in list(model.named_modules()):
        for child_name, child in list(mod.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if type(child) is nn.Linear and include(full):
                setattr(mod, child_name, FP8Linear.from_linear(child))
                count += 1
    return count
