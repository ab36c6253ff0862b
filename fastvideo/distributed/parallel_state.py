"""Process-group state for multi-GPU inference: sequence parallel (SP) and CFG parallel.

Nothing here requires ``torch.distributed`` to be initialised: without it (or
before :func:`init_sequence_parallel` / :func:`init_parallel_groups` is called)
every parallel world has size 1, rank 0, and no collective ever runs.

Layout of ``world = cfg_degree x sp_size`` ranks (``cfg_degree`` is 1 or 2)::

    rank = cfg_rank * sp_size + sp_rank
    SP group of rank r  : the sp_size ranks with the same cfg_rank   (contiguous)
    CFG group of rank r : the cfg_degree ranks with the same sp_rank (strided)

e.g. 4 ranks = 2 CFG x 2 SP: SP groups {0, 1}, {2, 3}; CFG groups {0, 2}, {1, 3}.

Sequence parallelism (Ulysses style) splits the video token sequence across the
ranks of the SP group after patch embedding; attention layers exchange a
sequence shard for a head shard with an all-to-all (see
``fastvideo.attention.layer.DistributedAttention``).  CFG parallelism runs the
conditional branch on CFG rank 0 and the unconditional one on CFG rank 1 (see
``fastvideo.pipelines.stages.denoising.CFGPredictor``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch.distributed as dist

_SP_GROUP: dist.ProcessGroup | None = None
_SP_WORLD_SIZE: int = 1
_SP_RANK: int = 0

_CFG_GROUP: dist.ProcessGroup | None = None
_CFG_WORLD_SIZE: int = 1
_CFG_RANK: int = 0

# SP group spanning the whole world, used for requests without guidance when CFG
# parallelism would leave half the ranks idle (None: not usable, e.g. heads do not divide).
_FULL_SP_GROUP: dist.ProcessGroup | None = None

# Number of real (unpadded) tokens of the sequence currently sharded across SP ranks.
_SP_VALID_LEN: int | None = None


def _initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def init_sequence_parallel(group: dist.ProcessGroup | None = None) -> None:
    """Use ``group`` (default: the whole world) as the sequence-parallel group.

    ``torch.distributed`` must already be initialised.
    """
    global _SP_GROUP, _SP_WORLD_SIZE, _SP_RANK
    if not _initialized():
        raise RuntimeError("init_sequence_parallel needs torch.distributed.init_process_group() first")
    group = group if group is not None else dist.group.WORLD
    _SP_GROUP = group
    _SP_WORLD_SIZE = dist.get_world_size(group)
    _SP_RANK = dist.get_rank(group)


def destroy_sequence_parallel() -> None:
    """Forget the SP group (back to world size 1); does not destroy the process group."""
    global _SP_GROUP, _SP_WORLD_SIZE, _SP_RANK
    _SP_GROUP, _SP_WORLD_SIZE, _SP_RANK = None, 1, 0


def init_parallel_groups(sp_size: int, cfg_degree: int, full_sp_for_no_cfg: bool = True) -> None:
    """Create the SP and CFG groups for ``world = cfg_degree * sp_size`` (see module docstring).

    Every rank must call this with the same arguments (``new_group`` is collective).
    ``full_sp_for_no_cfg``: also create a world-wide SP group that requests without
    guidance use under CFG parallelism (pass False when the heads do not divide the world).
    """
    global _CFG_GROUP, _CFG_WORLD_SIZE, _CFG_RANK, _FULL_SP_GROUP
    if not _initialized():
        raise RuntimeError("init_parallel_groups needs torch.distributed.init_process_group() first")
    world, rank = dist.get_world_size(), dist.get_rank()
    if cfg_degree not in (1, 2):
        raise ValueError(f"CFG parallel degree must be 1 or 2, got {cfg_degree}")
    if sp_size < 1 or sp_size * cfg_degree != world:
        raise ValueError(f"{cfg_degree} CFG x {sp_size} SP ranks != world size {world}")
    sp_groups = [dist.new_group(list(range(c * sp_size, (c + 1) * sp_size))) for c in range(cfg_degree)]
    cfg_groups = [dist.new_group(list(range(s, world, sp_size))) for s in range(sp_size)]
    init_sequence_parallel(sp_groups[rank // sp_size])
    _CFG_GROUP = cfg_groups[rank % sp_size]
    _CFG_WORLD_SIZE = cfg_degree
    _CFG_RANK = rank // sp_size
    _FULL_SP_GROUP = dist.group.WORLD if (cfg_degree > 1 and full_sp_for_no_cfg) else None


def destroy_parallel_groups() -> None:
    global _CFG_GROUP, _CFG_WORLD_SIZE, _CFG_RANK, _FULL_SP_GROUP
    destroy_sequence_parallel()
    _CFG_GROUP, _CFG_WORLD_SIZE, _CFG_RANK, _FULL_SP_GROUP = None, 1, 0, None


def get_sp_group() -> dist.ProcessGroup | None:
    return _SP_GROUP


def get_sp_world_size() -> int:
    """Number of ranks the token sequence is split across (1 without torch.distributed)."""
    if _SP_GROUP is None or not _initialized():
        return 1
    return _SP_WORLD_SIZE


def get_sp_rank() -> int:
    if get_sp_world_size() == 1:
        return 0
    return _SP_RANK


def get_cfg_group() -> dist.ProcessGroup | None:
    return _CFG_GROUP


def get_cfg_world_size() -> int:
    """2 when the conditional and unconditional branches run on different ranks, else 1."""
    if _CFG_GROUP is None or not _initialized():
        return 1
    return _CFG_WORLD_SIZE


def get_cfg_rank() -> int:
    """0: this rank computes the conditional branch; 1: the unconditional one."""
    if get_cfg_world_size() == 1:
        return 0
    return _CFG_RANK


def get_full_sp_group() -> dist.ProcessGroup | None:
    return _FULL_SP_GROUP if _initialized() else None


@contextlib.contextmanager
def use_sp_group(group: dist.ProcessGroup | None) -> Iterator[None]:
    """Temporarily use ``group`` as the SP group (e.g. the whole world for a request without CFG)."""
    global _SP_GROUP, _SP_WORLD_SIZE, _SP_RANK
    saved = (_SP_GROUP, _SP_WORLD_SIZE, _SP_RANK)
    try:
        if group is None:
            _SP_GROUP, _SP_WORLD_SIZE, _SP_RANK = None, 1, 0
        else:
            _SP_GROUP, _SP_WORLD_SIZE, _SP_RANK = group, dist.get_world_size(group), dist.get_rank(group)
        yield
    finally:
        _SP_GROUP, _SP_WORLD_SIZE, _SP_RANK = saved


def get_sp_valid_len() -> int | None:
    """Real token count of the sequence being sharded (None: no padding in effect)."""
    return _SP_VALID_LEN


@contextlib.contextmanager
def sp_valid_len(n: int | None) -> Iterator[None]:
    """While active, SP self-attention ignores tokens at positions >= ``n`` of the full (padded) sequence."""
    global _SP_VALID_LEN
    saved = _SP_VALID_LEN
    _SP_VALID_LEN = n
    try:
        yield
    finally:
        _SP_VALID_LEN = saved
