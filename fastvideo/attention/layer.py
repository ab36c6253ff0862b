"""Attention layers used by the DiTs.

Both layers take already projected (and normed / rotated) ``query``, ``key``,
``value`` of shape ``[B, S, H, D]`` and return ``[B, S, H, D]``; projections live
in the model.  The backend is resolved once, at construction
(see :func:`fastvideo.attention.backends.get_attn_backend`).

* :class:`DistributedAttention` is for self-attention over the video tokens, the
  sequence that sequence parallelism (SP) splits across ranks.
* :class:`LocalAttention` is for cross-attention: queries are the local video
  tokens, keys/values (text or image context) are replicated on every rank, so
  no communication is ever needed.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from fastvideo.attention.backends import ROLES, AttentionBackend, get_attn_backend
from fastvideo.distributed.parallel_state import get_sp_group, get_sp_valid_len, get_sp_world_size


class LocalAttention(nn.Module):
    """Plain attention on local tensors (no communication)."""

    #: The layer's role for AUTO backend selection (see ``AUTO_PREFERENCE``).
    role = "cross"

    def __init__(self, num_heads: int, head_dim: int, backend: str | None = None):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.backend: AttentionBackend = get_attn_backend(backend, role=self.role)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        return self.backend(query, key, value)

    def extra_repr(self) -> str:
        return f"heads={self.num_heads}, head_dim={self.head_dim}, backend={self.backend.name}"


class DistributedAttention(LocalAttention):
    """Self-attention over a token sequence that may be split across SP ranks.

    With SP world size P > 1 (Ulysses sequence parallelism) each rank holds a
    shard ``[B, S/P, H, D]`` of every tensor.  The hook below swaps the sequence
    shard for a head shard with one all-to-all (``[B, S, H/P, D]``), runs the
    backend over the *full* sequence for its heads, and swaps back.  With P == 1
    (the default, and whenever torch.distributed is not initialised) no
    collective runs and this is exactly :class:`LocalAttention`.

    Padding: when the token count does not divide by P the model pads the
    sequence to a multiple of P (pad tokens at the *end*).  ``valid_len`` (or
    :func:`fastvideo.distributed.parallel_state.sp_valid_len`) gives the real
    token count; after the all-to-all every rank holds the full padded sequence
    for its heads, so the backend simply runs on the first ``valid_len`` tokens
    -- pad keys never enter a softmax (exact, and no mask needed by any
    backend) -- and pad query rows get zeros.
    """

    role = "self"

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *,
                valid_len: int | None = None) -> torch.Tensor:
        sp_size = get_sp_world_size()
        if sp_size == 1:
            return self.backend(query, key, value)
        # --- sequence-parallel hook: all-to-all (seq shard -> head shard) ---
        if self.num_heads % sp_size:
            raise ValueError(f"{self.num_heads} attention heads cannot be split over {sp_size} SP ranks "
                             f"(sequence parallelism needs num_heads divisible by the SP size)")
        group = get_sp_group()
        q, k, v = (_seq_to_head_shard(t, sp_size, group) for t in (query, key, value))
        n = valid_len if valid_len is not None else get_sp_valid_len()
        full = q.shape[1]
        if n is not None and n < full:
            out = self.backend(q[:, :n], k[:, :n], v[:, :n])
            out = torch.cat([out, out.new_zeros(out.shape[0], full - n, *out.shape[2:])], dim=1)
        else:
            out = self.backend(q, k, v)
        return _head_to_seq_shard(out, sp_size, group)


def set_attention_backend(module: nn.Module, name: str | None) -> int:
    """Switch every attention layer inside ``module`` to backend ``name`` (None: leave as built).

    Returns how many layers were changed.  Used to apply ``PipelineConfig.attention_backend``
    to a loaded DiT (the layers resolve their backend at construction).
    """
    if not name:
        return 0
    backends = {role: get_attn_backend(name, role=role) for role in ROLES}
    count = 0
    for m in module.modules():
        if isinstance(m, LocalAttention):
            m.backend = backends[m.role]
            count += 1
    return count


def _seq_to_head_shard(x: torch.Tensor, world: int, group) -> torch.Tensor:
    """``[B, S/P, H, D]`` on each rank -> ``[B, S, H/P, D]`` (rank r keeps head chunk r)."""
    b, s, h, d = x.shape
    # [P(head chunk), B, S/P, H/P, D]: chunk p is sent to rank p.
    send = x.reshape(b, s, world, h // world, d).permute(2, 0, 1, 3, 4).contiguous()
    recv = torch.empty_like(send)
    dist.all_to_all_single(recv, send, group=group)
    # recv[p] is rank p's sequence shard of our heads; shards concatenate in rank order.
    return recv.permute(1, 0, 2, 3, 4).reshape(b, world * s, h // world, d)


def _head_to_seq_shard(x: torch.Tensor, world: int, group) -> torch.Tensor:
    """Inverse of :func:`_seq_to_head_shard`: ``[B, S, H/P, D]`` -> ``[B, S/P, H, D]``."""
    b, s_full, hp, d = x.shape
    s = s_full // world
    # [P(sequence chunk), B, S/P, H/P, D]: sequence chunk p goes back to rank p.
    send = x.reshape(b, world, s, hp, d).permute(1, 0, 2, 3, 4).contiguous()
    recv = torch.empty_like(send)
    dist.all_to_all_single(recv, send, group=group)
    # recv[p] holds head chunk p of our sequence shard.
    return recv.permute(1, 2, 0, 3, 4).reshape(b, s, world * hp, d)
