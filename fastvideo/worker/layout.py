"""How ranks split a job: the (sequence-parallel, CFG-parallel) layout for a number of GPUs.

Shared by the executor (the parent process) and the SPMD worker entry point, which must not import
each other.
"""

from __future__ import annotations

import json


def resolve_layout(num_gpus: int, sp_size: int = 1, cfg_parallel: bool | None = None,
                   num_heads: int | None = None) -> tuple[int, int]:
    """(sp_size, cfg_degree) for ``num_gpus`` ranks, from the config's ``sp_size`` / ``cfg_parallel``.

    ``sp_size=1`` with ``cfg_parallel=None`` means "choose": 2 x N/2 for an even
    count, SP over all ranks for an odd one.  Raises ``ValueError`` for
    combinations that do not fill exactly ``num_gpus`` ranks or heads that the SP
    size does not divide.
    """
    if not isinstance(num_gpus, int) or num_gpus < 1:
        raise ValueError(f"num_gpus must be a whole number >= 1, got {num_gpus!r}")
    if not isinstance(sp_size, int) or sp_size < 1:
        raise ValueError(f"sp_size must be a whole number >= 1, got {sp_size!r}")
    if cfg_parallel is None:
        if sp_size > 1:
            if sp_size == num_gpus:
                cfg_parallel = False
            elif 2 * sp_size == num_gpus:
                cfg_parallel = True
            else:
                raise ValueError(f"sp_size={sp_size} does not fit num_gpus={num_gpus}: it must be num_gpus "
                                 f"(SP only) or num_gpus/2 (with CFG parallel)")
        else:
            cfg_parallel = num_gpus % 2 == 0
    cfg_degree = 2 if cfg_parallel else 1
    if cfg_parallel and num_gpus % 2:
        raise ValueError(f"cfg_parallel=True needs an even number of GPUs (one half per CFG branch), "
                         f"got num_gpus={num_gpus}")
    if sp_size == 1 or sp_size * cfg_degree != num_gpus:
        if sp_size > 1:
            raise ValueError(f"sp_size={sp_size} with cfg_parallel={cfg_parallel} uses {sp_size * cfg_degree} "
                             f"GPUs, but num_gpus={num_gpus}")
        sp_size = num_gpus // cfg_degree
    if num_heads is not None and num_heads % sp_size:
        raise ValueError(f"the DiT has {num_heads} attention heads, which sequence parallelism cannot split "
                         f"over sp_size={sp_size} ranks; choose num_gpus / sp_size so that sp_size divides "
                         f"{num_heads}")
    return sp_size, cfg_degree


def dit_num_heads(info) -> int | None:
    """num_attention_heads from the model folder's transformer config (None if unknown)."""
    path = info.path / "transformer" / "config.json"
    try:
        return int(json.loads(path.read_text())["num_attention_heads"])
    except (OSError, KeyError, ValueError, TypeError):
        return None


def check_fsdp_config(config) -> None:
    """ValueError for options that cannot go with ``use_fsdp_inference=True`` (before anything loads)."""
    if not config.use_fsdp_inference:
        return
    clashes = [name for name, on in (("dit_cpu_offload", config.dit_cpu_offload),
                                     ("enable_torch_compile / compile_dit", config.compile_dit),
                                     (f"memory_mode={getattr(config, 'memory_mode', 'auto')!r}",
                                      getattr(config, "memory_mode", "auto") not in ("auto", "resident")),
                                     (f"weight_storage={getattr(config, 'weight_storage', 'bf16')!r}",
                                      getattr(config, "weight_storage", "bf16") != "bf16"))
               if on]
    if clashes:
        raise ValueError(f"use_fsdp_inference=True cannot be combined with {', '.join(clashes)}: the DiT's weights "
                         "are already split over the ranks; drop one of the two")
