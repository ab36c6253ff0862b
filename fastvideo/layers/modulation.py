"""adaLN modulation tables: a learned ``[1, n, d]`` table plus the timestep's projection, split in ``n``."""

from __future__ import annotations

import torch


def modulation(table: torch.Tensor, emb: torch.Tensor, fp32: bool = True) -> tuple[torch.Tensor, ...]:
    """``table + emb`` split along dim 1 into the table's ``n`` rows, ``[B, 1, d]`` each.

    ``table`` [1, n, d] (a block's ``modulation`` parameter: the checkpoints name it so); ``emb`` [B, n, d]
    (the timestep projection, unflattened) or [B, 1, d] (one vector for every row).  ``fp32``: the sum in
    float32 (a Wan block's); off: in the operands' dtype (the Wan head's, as the reference).  A Wan block's
    six are ``shift, scale, gate`` for self-attention and for the FFN; the head's two ``shift, scale``.
    """
    return (table + (emb.float() if fp32 else emb)).chunk(table.shape[1], dim=1)
