"""The Triton kernels behind :mod:`fastvideo.kernels.qk_norm_rope` (imported only when they run)."""

import triton
import triton.language as tl


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


@triton.jit
def _qk_norm_rope_chunked_kernel(
    qkv_ptr, q_out_ptr, k_out_ptr, wq_ptr, wk_ptr, cos_ptr, sin_ptr,
    rows, seq, stride_row, eps,
    DIM: tl.constexpr, HALF_HEAD: tl.constexpr, CHUNK: tl.constexpr, BLOCK: tl.constexpr,
):
    """The same math, q or k per program (grid axis 1), each row read in whole-head chunks of ``CHUNK``
    channels (a power of two, a multiple of the head size: no masked lanes, and every chunk takes the same
    cos/sin): a first pass sums squares, a second normalises, rotates and writes."""
    row = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    part = tl.program_id(1)
    row_ok = row < rows
    col = tl.arange(0, CHUNK)
    pair = tl.arange(0, CHUNK // 2)
    src = qkv_ptr + row[:, None].to(tl.int64) * stride_row + part * DIM + col[None, :]
    total = tl.zeros([BLOCK], dtype=tl.float32)
    for c in tl.static_range(DIM // CHUNK):
        x = tl.load(src + c * CHUNK, mask=row_ok[:, None], other=0.0).to(tl.float32)
        total += tl.sum(x * x, axis=1)
    rstd = 1.0 / tl.sqrt(total / DIM + eps)
    angle = (row % seq)[:, None] * HALF_HEAD + (pair % HALF_HEAD)[None, :]
    cos = tl.load(cos_ptr + angle, mask=row_ok[:, None], other=0.0)
    sin = tl.load(sin_ptr + angle, mask=row_ok[:, None], other=0.0)
    dtype = q_out_ptr.dtype.element_ty
    offset = row[:, None].to(tl.int64) * DIM + col[None, :]
    for c in tl.static_range(DIM // CHUNK):
        x = tl.load(src + c * CHUNK, mask=row_ok[:, None], other=0.0).to(tl.float32)
        if part == 0:
            w = tl.load(wq_ptr + c * CHUNK + col).to(tl.float32)
        else:
            w = tl.load(wk_ptr + c * CHUNK + col).to(tl.float32)
        n = (x * rstd[:, None] * w[None, :]).to(dtype).to(tl.float32)  # the norm's output, rounded
        n1, n2 = tl.split(tl.reshape(n, (BLOCK, CHUNK // 2, 2)))
        rotated = tl.reshape(tl.join(n1 * cos - n2 * sin, n1 * sin + n2 * cos), (BLOCK, CHUNK)).to(dtype)
        if part == 0:
            tl.store(q_out_ptr + offset + c * CHUNK, rotated, mask=row_ok[:, None])
        else:
            tl.store(k_out_ptr + offset + c * CHUNK, rotated, mask=row_ok[:, None])
