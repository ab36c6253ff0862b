"""adaLN modulation tables: a learned ``[1, n, d]`` table plus the timestep's projection, split in ``n``."""

from __future__ import annotations

import torch


def modulation(table: torch.Tensor, emb: torch.Tensor, fp32: bool = True) -> tuple[torch.Tensor, ...]:
    """``table + emb`` split into the table's ``n`` rows: ``[B, 1, d]`` each, or ``[B, S, d]`` per token.

    ``table`` [1, n, d] (a block's ``modulation`` parameter: the checkpoints name it so); ``emb`` [B, n, d]
    (the timestep projection, unflattened), [B, 1, d] (one vector for every row) or [B, S, n, d] (one
    projection per token: per-token timesteps, Wan2.2 TI2V).  ``fp32``: the sum in float32 (a Wan block's);
    off: in the operands' dtype (the Wan head's, as the reference).  A Wan block's six are ``shift, scale,
    gate`` for self-attention and for the FFN; the head's two ``shift, scale``.
    """
    emb = emb.float() if fp32 else emb
    if emb.ndim == 4:
        return tuple(part.squeeze(2) for part in (table[None] + emb).chunk(table.shape[1], dim=2))
    return (table + emb).chunk(table.shape[1], dim=1)
