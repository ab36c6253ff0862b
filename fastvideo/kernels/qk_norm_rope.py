"""Fused q/k RMSNorm + 3D RoPE for Wan self-attention (one Triton kernel, CUDA).

The same math as the model's unfused path (``SelfAttention.forward``)::

    q = apply_rope(rms_norm(q_lin, weight_q).unflatten(heads), cos, sin)   # and the same for k

For each token row it reads q and k once from the fused q/k/v projection
output, normalises each across all heads in fp32, multiplies by the weight,
rounds to the input dtype (as the unfused ``rms_norm`` output is), rotates each
channel pair (x[2j], x[2j+1]) of every head by the token's angle in fp32 and
writes q and k in the input dtype, reading and writing whole rows contiguously.
On an H100 at Wan2.1-1.3B's 480p shape (32,760 tokens x 1,536 channels, q and k)
Inductor's fused kernel for the same graph took 0.36 ms a call; this one takes
0.21 ms (docs/benchmarks/README.md, runs 9-10).

``qk_norm_rope`` is a ``torch.library`` Triton op, so ``torch.compile`` sees
through it.  :func:`available` says whether it can run on a tensor (CUDA and
Triton present); the model falls back to the unfused path otherwise.
"""

from __future__ import annotations

import functools

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU-only installs
    triton = None

#: Rows per program and warps per program (benchmarks/dit_variants.py sweeps them: the qk-* variants).
LAUNCH = {"BLOCK": 4, "num_warps": 8}


def available(x: torch.Tensor) -> bool:
    return triton is not None and x.is_cuda


if triton is not None:

    @triton.jit
    def _qk_norm_rope_kernel(
        qkv_ptr, q_out_ptr, k_out_ptr, wq_ptr, wk_ptr, cos_ptr, sin_ptr,
        rows, seq, stride_row, eps,
        DIM: tl.constexpr, HALF_HEAD: tl.constexpr, PAIRS_POW2: tl.constexpr, BLOCK: tl.constexpr,
    ):
        row = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)  # flattened (batch, token)
        col = tl.arange(0, 2 * PAIRS_POW2)  # channels of the row, read and written contiguously
        pair = tl.arange(0, PAIRS_POW2)  # channel pair j: channels 2j, 2j+1
        row_ok = row < rows
        col_ok = col < DIM
        ok = row_ok[:, None] & col_ok[None, :]
        pair_ok = row_ok[:, None] & (pair < DIM // 2)[None, :]
        angle = (row % seq)[:, None] * HALF_HEAD + (pair % HALF_HEAD)[None, :]  # cos/sin: [seq, head_dim / 2]
        cos = tl.load(cos_ptr + angle, mask=pair_ok, other=0.0)
        sin = tl.load(sin_ptr + angle, mask=pair_ok, other=0.0)
        for part in tl.static_range(2):  # q (columns 0..DIM), then k (DIM..2*DIM)
            src = qkv_ptr + row[:, None].to(tl.int64) * stride_row + part * DIM + col[None, :]
            x = tl.load(src, mask=ok, other=0.0).to(tl.float32)
            rstd = 1.0 / tl.sqrt(tl.sum(x * x, axis=1) / DIM + eps)
            w_ptr = wq_ptr if part == 0 else wk_ptr
            w = tl.load(w_ptr + col, mask=col_ok, other=0.0).to(tl.float32)
            out_ptr = q_out_ptr if part == 0 else k_out_ptr
            dtype = out_ptr.dtype.element_ty
            n = (x * rstd[:, None] * w[None, :]).to(dtype).to(tl.float32)  # the norm's output, rounded
            n1, n2 = tl.split(tl.reshape(n, (BLOCK, PAIRS_POW2, 2)))
            rotated = tl.join(n1 * cos - n2 * sin, n1 * sin + n2 * cos)
            dst = out_ptr + row[:, None].to(tl.int64) * DIM + col[None, :]
            tl.store(dst, tl.reshape(rotated, (BLOCK, 2 * PAIRS_POW2)).to(dtype), mask=ok)


@functools.cache
def _op():
    from torch.library import triton_op, wrap_triton

    @triton_op("fastvideo::qk_norm_rope", mutates_args=())
    def qk_norm_rope_op(qkv: torch.Tensor, weight_q: torch.Tensor, weight_k: torch.Tensor, cos: torch.Tensor,
                        sin: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
        b, s, three_dim = qkv.shape
        dim = three_dim // 3
        q = torch.empty(b, s, dim, device=qkv.device, dtype=qkv.dtype)
        k = torch.empty_like(q)
        rows = b * s
        wrap_triton(_qk_norm_rope_kernel)[(triton.cdiv(rows, LAUNCH["BLOCK"]),)](
            qkv, q, k, weight_q, weight_k, cos, sin, rows, s, qkv.stride(1), eps,
            DIM=dim, HALF_HEAD=cos.shape[-1], PAIRS_POW2=triton.next_power_of_2(dim // 2), BLOCK=LAUNCH["BLOCK"],
            num_warps=LAUNCH["num_warps"],
        )
        return q, k

    return qk_norm_rope_op


def qk_norm_rope(qkv: torch.Tensor, weight_q: torch.Tensor, weight_k: torch.Tensor, cos: torch.Tensor,
                 sin: torch.Tensor, eps: float, num_heads: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``qkv`` [B, S, 3*dim] (q | k | v, last dim contiguous, rows packed: a fresh projection output);
    ``cos``/``sin`` [S, head_dim/2] float32.  Returns q, k as [B, S, heads, head_dim]."""
    b, s, three_dim = qkv.shape
    dim = three_dim // 3
    if qkv.stride(2) != 1 or qkv.stride(0) != s * qkv.stride(1):
        raise ValueError("qk_norm_rope needs the projection output's [B, S, 3*dim] layout (rows packed)")
    if cos.shape != (s, dim // num_heads // 2) or cos.dtype != torch.float32:
        raise ValueError(f"cos/sin must be float32 [{s}, {dim // num_heads // 2}], got {tuple(cos.shape)} {cos.dtype}")
    q, k = _op()(qkv, weight_q, weight_k, cos.contiguous(), sin.contiguous(), float(eps))
    return q.unflatten(2, (num_heads, -1)), k.unflatten(2, (num_heads, -1))
