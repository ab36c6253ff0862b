"""The Triton kernel behind :func:`fastvideo.kernels.fused_linear.fold_norm` (imported only when it runs)."""

import triton
import triton.language as tl


@triton.jit
def _fold_norm_kernel(
    w_ptr, gain_ptr, shift_ptr, bias_ptr, folded_ptr, wg_ptr, wb_ptr,
    n_rows,
    K_COLS: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    """For BLOCK_N rows n of W [N, K]: folded[n] = W[n] * gain rounded to W's dtype, wg[n] = sum(folded[n])
    and wb[n] = W[n] . shift + bias[n] (fp32), reading each weight once."""
    row = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = row < n_rows
    acc_g = tl.zeros((BLOCK_N,), dtype=tl.float32)
    acc_b = tl.zeros((BLOCK_N,), dtype=tl.float32)
    for k0 in range(0, K_COLS, BLOCK_K):
        col = k0 + tl.arange(0, BLOCK_K)
        col_ok = col < K_COLS
        ok = row_ok[:, None] & col_ok[None, :]
        offs = row[:, None].to(tl.int64) * K_COLS + col[None, :]
        w = tl.load(w_ptr + offs, mask=ok, other=0.0).to(tl.float32)
        gain = tl.load(gain_ptr + col, mask=col_ok, other=0.0).to(tl.float32)
        shift = tl.load(shift_ptr + col, mask=col_ok, other=0.0).to(tl.float32)
        folded = (w * gain[None, :]).to(folded_ptr.dtype.element_ty)
        tl.store(folded_ptr + offs, folded, mask=ok)
        acc_g += tl.sum(folded.to(tl.float32), axis=1)
        acc_b += tl.sum(w * shift[None, :], axis=1)
    bias = tl.load(bias_ptr + row, mask=row_ok, other=0.0).to(tl.float32)
    tl.store(wg_ptr + row, acc_g, mask=row_ok)
    tl.store(wb_ptr + row, acc_b + bias, mask=row_ok)
