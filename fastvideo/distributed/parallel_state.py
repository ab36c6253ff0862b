"""Minimal process-group state for sequence parallelism (SP).

Nothing here requires ``torch.distributed`` to be initialised: without it (or
before :func:`init_sequence_parallel` is called) the sequence-parallel world has
size 1, rank 0, and no collective ever runs.

Sequence parallelism (Ulysses style) splits the video token sequence across the
ranks of the SP group after patch embedding; attention layers exchange a
sequence shard for a head shard with an all-to-all (see
``fastvideo.attention.layer.DistributedAttention``).
"""

from __future__ import annotations

import torch.distributed as dist

_SP_GROUP: "dist.ProcessGroup | None" = None
_SP_WORLD_SIZE: int = 1
_SP_RANK: int = 0


def init_sequence_parallel(group: "dist.ProcessGroup | None" = None) -> None:
    """Use ``group`` (default: the whole world) as the sequence-parallel group.

    ``torch.distributed`` must already be initialised.
    """
    global _SP_GROUP, _SP_WORLD_SIZE, _SP_RANK
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError("init_sequence_parallel needs torch.distributed.init_process_group() first")
    group = group if group is not None else dist.group.WORLD
    _SP_GROUP = group
    _SP_WORLD_SIZE = dist.get_world_size(group)
    _SP_RANK = dist.get_rank(group)


def destroy_sequence_parallel() -> None:
    """Forget the SP group (back to world size 1); does not destroy the process group."""
    global _SP_GROUP, _SP_WORLD_SIZE, _SP_RANK
    _SP_GROUP, _SP_WORLD_SIZE, _SP_RANK = None, 1, 0


def get_sp_group() -> "dist.ProcessGroup | None":
    return _SP_GROUP


def get_sp_world_size() -> int:
    """Number of ranks the token sequence is split across (1 without torch.distributed)."""
    if _SP_GROUP is None or not (dist.is_available() and dist.is_initialized()):
        return 1
    return _SP_WORLD_SIZE


def get_sp_rank() -> int:
    if get_sp_world_size() == 1:
        return 0
    return _SP_RANK
