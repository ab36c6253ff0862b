"""Sharded DiT weights across ranks with PyTorch FSDP2 (``use_fsdp_inference=True``).

:func:`shard_dit` applies ``torch.distributed.fsdp.fully_shard`` to every transformer block and then to
the DiT itself, over a 1-D device mesh of the *whole* world (every rank, whatever its SP / CFG role):

* each rank keeps ``1 / world`` of every parameter (dim-0 shards, the last rank's possibly smaller);
* a block's pre-forward hook all-gathers its full weights just before the block runs and its
  post-forward hook frees them again (``reshard_after_forward=True``), so at most about one block's
  full weights (plus the prefetched next one) sit on a rank at a time; the embeddings and the output
  head (the root module's own parameters) are gathered around the whole forward;
* the math is unchanged: the gathered tensors hold exactly the loaded values, so outputs equal the
  unsharded run bit for bit.

It composes with sequence and CFG parallelism because every rank runs the same DiT forwards in the
same order each step (SP ranks on their sequence shard, CFG ranks on their branch): the gathers are
collectives over the world, the SP all-to-alls over the SP group.

The DiT is loaded on the CPU (``load_modules``) and ``fully_shard`` moves each block's shard to the
rank's device as it is sharded, so the device never holds the whole DiT.
"""

from __future__ import annotations

import logging

import torch
import torch.distributed as dist

logger = logging.getLogger("fastvideo")


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def param_bytes(module: torch.nn.Module) -> int:
    """Bytes of ``module``'s parameters held by this rank (a sharded parameter's local shard only)."""
    total = 0
    for p in module.parameters():
        local = p.to_local() if hasattr(p, "to_local") else p
        total += local.numel() * local.element_size()
    return total


def shard_dit(transformer: torch.nn.Module, device: torch.device) -> dict:
    """Shard ``transformer`` (its ``blocks`` one unit each, the rest as the root unit) over every rank.

    Returns ``{"world": N, "param_bytes": bytes on this rank, "param_bytes_per_rank": [one per rank],
    "full_param_bytes": unsharded size}``.  With one rank (or no process group) the DiT is moved to
    ``device`` unsharded.  Every rank must call this (it runs collectives).
    """
    full = param_bytes(transformer)
    world = world_size()
    if world == 1:
        transformer.to(device)
        return {"world": 1, "param_bytes": full, "param_bytes_per_rank": [full], "full_param_bytes": full}
    blocks = getattr(transformer, "blocks", None)
    if not isinstance(blocks, torch.nn.ModuleList) or len(blocks) == 0:
        raise ValueError(f"use_fsdp_inference: {type(transformer).__name__} has no 'blocks' ModuleList to shard "
                         "block by block")
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    for p in transformer.parameters():
        p.requires_grad_(False)
    mesh = init_device_mesh(device.type, (world,))
    for block in blocks:
        fully_shard(block, mesh=mesh, reshard_after_forward=True)
    fully_shard(transformer, mesh=mesh, reshard_after_forward=True)  # also moves buffers to the mesh's device
    mine = param_bytes(transformer)
    counts = torch.tensor([mine], dtype=torch.int64, device=device if device.type == "cuda" else "cpu")
    gathered = [torch.zeros_like(counts) for _ in range(world)]
    dist.all_gather(gathered, counts)
    per_rank = [int(t.item()) for t in gathered]
    return {"world": world, "param_bytes": mine, "param_bytes_per_rank": per_rank, "full_param_bytes": full}


def combine_reports(reports: dict[str, dict]) -> dict:
    """One report for several sharded DiTs (Wan2.2's two experts): bytes summed per rank, ``components`` named."""
    items = list(reports.values())
    if not items:
        raise ValueError("combine_reports: no sharded DiT")
    return {"world": items[0]["world"], "components": list(reports),
            "param_bytes": sum(r["param_bytes"] for r in items),
            "param_bytes_per_rank": [sum(col) for col in zip(*(r["param_bytes_per_rank"] for r in items))],
            "full_param_bytes": sum(r["full_param_bytes"] for r in items)}


def describe(report: dict) -> str:
    """One log line for :func:`shard_dit`'s (or :func:`combine_reports`') report."""
    mib = [f"{b / 2**20:.1f}" for b in report["param_bytes_per_rank"]]
    names = " + ".join(report.get("components") or ["DiT"])
    return (f"FSDP: {names} parameters sharded over {report['world']} rank(s): {', '.join(mib)} MiB per rank "
            f"(unsharded {report['full_param_bytes'] / 2**20:.1f} MiB)")
