"""torch.compile for the DiT: one compiled region per transformer block.

All blocks share code and shapes, so the compiled graph is reused across them
(regional compilation); the elementwise work around attention (modulation,
norms, RoPE, gating) fuses into a few kernels.
"""

from __future__ import annotations

import torch


def compile_dit_blocks(model: torch.nn.Module, mode: str | None = None) -> torch.nn.Module:
    import torch._dynamo

    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
    for block in model.blocks:
        block.compile(mode=mode, dynamic=False, fullgraph=False)
    return model
