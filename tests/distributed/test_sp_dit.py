"""Sequence / CFG parallelism inside the DiT and the CFG predictor, on 2 gloo CPU ranks.

One spawn of two ranks checks, in fp32, against the single-process model:
SP=2 outputs for token counts that divide and that do not (27 and 1 tokens, so a
rank may hold nothing but padding), the I2V variant (image cross-attention),
the CFG-parallel predictor (2 CFG x 1 SP) and its no-guidance fallback (SP over
both ranks), and the clear error for heads that do not divide the SP size.
"""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from fastvideo.configs.models.dits.wan import WanVideoConfig
from fastvideo.distributed import parallel_state as ps
from fastvideo.models.dits.wan import WanTransformer3DModel
from fastvideo.pipelines.stages.denoising import CFGPredictor
from fastvideo.testing.tiny import TINY_DIT

SHAPES = {"divisible_24": (1, 16, 2, 4, 6), "odd_27": (1, 16, 3, 6, 6), "one_token": (1, 16, 1, 2, 2)}


def _model(**over) -> WanTransformer3DModel:
    torch.manual_seed(0)
    model = WanTransformer3DModel(WanVideoConfig.from_dict(dict(TINY_DIT, **over))).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


def _inputs(shape, text_dim=32, image_dim=None, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g)
    cond = torch.randn(1, 7, text_dim, generator=g)
    uncond = torch.randn(1, 7, text_dim, generator=g)
    img = torch.randn(1, 5, image_dim, generator=g) if image_dim else None
    return x, torch.tensor([700.0]), cond, uncond, img


def _cases():
    """(name, model kwargs, input shape, image dim) -- built identically in every process."""
    cases = [(name, {}, shape, None) for name, shape in SHAPES.items()]
    cases.append(("i2v_odd", dict(image_dim=24, added_kv_proj_dim=32, in_channels=16), SHAPES["odd_27"], 24))
    return cases


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    res: dict = {}
    try:
        with torch.inference_mode():
            # SP = 2 over the DiT.
            ps.init_parallel_groups(sp_size=2, cfg_degree=1)
            for name, over, shape, image_dim in _cases():
                x, t, cond, _, img = _inputs(shape, image_dim=image_dim)
                res[f"sp:{name}"] = _model(**over)(x, t, cond, img)
            # Heads that do not divide the SP size: a clear error, raised before any collective.
            try:
                x, t, cond, _, _ = _inputs(SHAPES["odd_27"])
                _model(num_attention_heads=3)(x, t, cond)
                res["heads_error"] = None
            except ValueError as exc:
                res["heads_error"] = str(exc)
            ps.destroy_parallel_groups()
            # CFG parallel: 2 CFG x 1 SP; and a request without guidance (SP over both ranks).
            ps.init_parallel_groups(sp_size=1, cfg_degree=2)
            model = _model()
            predictor = CFGPredictor(model, torch.float32, batch_cfg=True)
            x, t, cond, uncond, _ = _inputs(SHAPES["odd_27"])
            # CFGPredictor takes the step's timestep as a scalar (it batches it itself)
            res["cfg:guided"] = predictor(x, t[0], cond, uncond, None, 5.0)
            res["cfg:no_guidance"] = predictor(x, t[0], cond, None, None, 1.0)
            ps.destroy_parallel_groups()
        torch.save(res, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        ps.destroy_parallel_groups()
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_rank_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("sp_dit")
    mp.start_processes(_worker, args=(2, _free_port(), str(out)), nprocs=2, start_method="spawn")
    return [torch.load(out / f"rank{r}.pt") for r in range(2)]


def _reference():
    ref = {}
    with torch.inference_mode():
        for name, over, shape, image_dim in _cases():
            x, t, cond, _, img = _inputs(shape, image_dim=image_dim)
            ref[f"sp:{name}"] = _model(**over)(x, t, cond, img)
        model = _model()
        x, t, cond, uncond, _ = _inputs(SHAPES["odd_27"])
        ref["cfg:guided"] = CFGPredictor(model, torch.float32, batch_cfg=True)(x, t[0], cond, uncond, None, 5.0)
        ref["cfg:no_guidance"] = CFGPredictor(model, torch.float32)(x, t[0], cond, None, None, 1.0)
    return ref


@pytest.mark.parametrize("key", [f"sp:{c[0]}" for c in _cases()] + ["cfg:guided", "cfg:no_guidance"])
def test_parallel_dit_matches_single_process_fp32(two_rank_results, key):
    expected = _reference()[key]
    for rank, res in enumerate(two_rank_results):
        got = res[key]
        assert got.shape == expected.shape, (rank, key)
        diff = (got.float() - expected.float()).abs().max().item()
        assert diff < 1e-5, f"rank {rank} {key}: max abs diff {diff:.3g}"


def test_heads_not_divisible_by_sp_is_a_clear_error(two_rank_results):
    for res in two_rank_results:
        msg = res["heads_error"]
        assert msg is not None and "heads (3)" in msg and "2 ranks" in msg

