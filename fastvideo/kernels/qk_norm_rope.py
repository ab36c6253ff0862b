"""Fused q/k RMSNorm + 3D RoPE for Wan self-attention (one Triton kernel, CUDA).

The same math as the model's unfused path (``SelfAttention.forward``)::

    q = apply_rope(rms_norm(q_lin, weight_q).unflatten(heads), cos, sin)   # and the same for k

For each token row it reads q and k once from the fused q/k/v projection
output, normalises each across all heads in fp32, multiplies by the weight,
rounds to the input dtype (as the unfused ``rms_norm`` output is), rotates each
channel pair (x[2j], x[2j+1]) of every head by the token's angle in fp32 and
writes q and k in the input dtype, reading and writing rows contiguously.
On an H100 at Wan2.1-1.3B's 480p shape (32,760 tokens x 1,536 channels, q and k)
Inductor's fused kernel for the same graph took 0.36 ms a call; the whole-row
kernel 0.21-0.27 ms (runs 9-10, 32), and the chunked one, which reads each row in
whole-head power-of-two chunks with q and k in separate programs and is used
where the head size allows (:func:`chunk_size`), 0.235 ms against 0.273 ms in
the same run (docs/benchmarks/README.md, run 32).

``qk_norm_rope`` is a ``torch.library`` Triton op, so ``torch.compile`` sees
through it.  :func:`available` says whether it can run on a tensor (CUDA and
Triton present, the kernel policy's ``qk_norm_rope`` on); the model
(:func:`fastvideo.layers.rope.qk_norm_rope`) falls back to the unfused path
otherwise.  The launch shapes are the policy's ``qk_*`` fields.
"""

from __future__ import annotations

import importlib.util

import torch

from fastvideo.kernels import policy

HAS_TRITON = importlib.util.find_spec("triton") is not None  # the kernel module imports it when first used

# Launch shapes (policy fields; benchmarks/dit_variants.py sweeps them: the qk-* variants): the whole-row
# kernel's rows and warps per program (``qk_block``, ``qk_num_warps``); the kernel that reads rows in
# whole-head chunks, q and k in separate programs, where the head size allows (``chunk_size``), on or off
# (``qk_chunked``; off: the whole-row kernel everywhere) and its launch (``qk_chunked_block``,
# ``qk_chunked_num_warps``).


def chunk_size(dim: int, head_dim: int, cap: int = 1024) -> int:
    """The chunked kernel's chunk: the largest power of two <= ``cap`` that divides ``dim`` and is a multiple
    of ``head_dim`` (each chunk then holds whole heads); 0 where there is none."""
    chunk = cap
    while chunk >= head_dim:
        if dim % chunk == 0 and chunk % head_dim == 0:
            return chunk
        chunk //= 2
    return 0


def available(x: torch.Tensor) -> bool:
    p = policy.current()
    return HAS_TRITON and x.is_cuda and p.qk_norm_rope and not p.plain


_OP = None


def _op():
    """The op, built on first use.  A module global rather than ``functools.cache``: torch.compile traces
    through a cache wrapper (and cannot trace building the op), but reads a global as a constant."""
    global _OP
    if _OP is None:
        _OP = _build_op()
    return _OP


def _build_op():
    import triton
    from torch.library import triton_op, wrap_triton

    from fastvideo.kernels._qk_norm_rope_triton import _qk_norm_rope_chunked_kernel, _qk_norm_rope_kernel

    @triton_op("fastvideo::qk_norm_rope", mutates_args=())
    def qk_norm_rope_op(qkv: torch.Tensor, weight_q: torch.Tensor, weight_k: torch.Tensor, cos: torch.Tensor,
                        sin: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
        b, s, three_dim = qkv.shape
        dim = three_dim // 3
        q = torch.empty(b, s, dim, device=qkv.device, dtype=qkv.dtype)
        k = torch.empty_like(q)
        rows = b * s
        p = policy.current()
        chunk = chunk_size(dim, 2 * cos.shape[-1]) if p.qk_chunked else 0
        kernel = _qk_norm_rope_chunked_kernel if chunk else _qk_norm_rope_kernel
        if isinstance(kernel, triton.runtime.JITFunction):  # not under Triton's CPU interpreter (the tests)
            kernel = wrap_triton(kernel)  # so torch.compile sees the kernel inside the op
        args = (qkv, q, k, weight_q, weight_k, cos, sin, rows, s, qkv.stride(1), eps)
        if chunk:
            block = p.qk_chunked_block
            kernel[(triton.cdiv(rows, block), 2)](*args, DIM=dim, HALF_HEAD=cos.shape[-1], CHUNK=chunk, BLOCK=block,
                                                  num_warps=p.qk_chunked_num_warps)
        else:
            kernel[(triton.cdiv(rows, p.qk_block),)](
                *args, DIM=dim, HALF_HEAD=cos.shape[-1], PAIRS_POW2=triton.next_power_of_2(dim // 2),
                BLOCK=p.qk_block, num_warps=p.qk_num_warps)
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
