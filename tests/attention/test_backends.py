"""Attention backends: selection rules, numerics, and the sequence-parallel hook."""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from fastvideo.attention import DistributedAttention, LocalAttention, available_backends, get_attn_backend
from fastvideo.attention.backends import BACKENDS, ENV_VAR, FlashAttn4Backend, FlashAttnBackend, TorchSDPABackend
from fastvideo.distributed import parallel_state


def _naive_attention(q, k, v):
    """softmax(q k^T / sqrt(d)) v in [B, S, H, D] layout."""
    scores = torch.einsum("bshd,bthd->bhst", q, k) / q.shape[-1] ** 0.5
    return torch.einsum("bhst,bthd->bshd", scores.softmax(-1), v)


def test_default_is_auto_and_picks_per_role(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    if not FlashAttn4Backend.is_available():  # here (a CPU): TORCH_SDPA for every role
        assert isinstance(get_attn_backend(), TorchSDPABackend)
        assert isinstance(get_attn_backend(role="cross"), TorchSDPABackend)
    assert "TORCH_SDPA" in available_backends()
    # Where FlashAttention-4 runs, AUTO gives it the long self-attention and keeps cuDNN SDPA for cross-attention.
    monkeypatch.setattr(FlashAttn4Backend, "unavailable_reason", classmethod(lambda cls: ""))
    assert get_attn_backend(role="self").name == "FLASH_ATTN_4"
    assert get_attn_backend("auto", role="cross").name == "TORCH_SDPA"
    assert DistributedAttention(2, 8).backend.name == "FLASH_ATTN_4"
    assert LocalAttention(2, 8).backend.name == "TORCH_SDPA"
    assert LocalAttention(2, 8, backend="FLASH_ATTN_4").backend.name == "FLASH_ATTN_4"  # a name applies to all
    with pytest.raises(ValueError, match="unknown attention role 'text'"):
        get_attn_backend(role="text")
    # AUTO's FlashAttention-4 hands inputs the kernel cannot take to SDPA; a named FLASH_ATTN_4 refuses them.
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 6, 2, 12, generator=g) for _ in range(3))  # fp32, head size 12
    torch.testing.assert_close(get_attn_backend(role="self")(q, k, v), _naive_attention(q, k, v), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="FLASH_ATTN_4 needs float16/bfloat16 inputs, got torch.float32"):
        get_attn_backend("FLASH_ATTN_4")(q, k, v)
    with pytest.raises(ValueError, match="multiple of 8 up to 256, got 12"):
        get_attn_backend("FLASH_ATTN_4")(q.bfloat16(), k.bfloat16(), v.bfloat16())


def test_selection_by_env_var_and_argument(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "torch_sdpa")
    assert get_attn_backend().name == "TORCH_SDPA"
    monkeypatch.setenv(ENV_VAR, "BOGUS")
    with pytest.raises(ValueError, match=r"unknown attention backend 'BOGUS' \(from \$FASTVIDEO_ATTENTION_BACKEND\)"):
        get_attn_backend()
    assert get_attn_backend("TORCH_SDPA").name == "TORCH_SDPA"  # the argument wins over the env var


def test_unknown_backend_names_the_available_ones():
    with pytest.raises(ValueError, match=r"unknown attention backend 'SAGE'.*available here: \[.*TORCH_SDPA"):
        get_attn_backend("SAGE")


def test_flash_attn_unavailable_is_an_error_not_a_fallback(monkeypatch):
    if importlib.util.find_spec("flash_attn") is not None:
        monkeypatch.setattr(FlashAttnBackend, "is_available", classmethod(lambda cls: False))
    with pytest.raises(ValueError, match=r"FLASH_ATTN .* unavailable: the flash_attn package.*TORCH_SDPA"):
        get_attn_backend("FLASH_ATTN")
    with pytest.raises(ValueError, match="FLASH_ATTN"):
        LocalAttention(2, 8, backend="FLASH_ATTN")
    assert set(BACKENDS) == {"TORCH_SDPA", "FLASH_ATTN", "FLASH_ATTN_4"}


def test_sdpa_matches_naive_attention_in_bshd_layout():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 5, 3, 8, generator=g)
    k, v = torch.randn(2, 7, 3, 8, generator=g), torch.randn(2, 7, 3, 8, generator=g)
    out = get_attn_backend("TORCH_SDPA")(q, k, v)
    assert out.shape == (2, 5, 3, 8)
    torch.testing.assert_close(out, _naive_attention(q, k, v), atol=1e-5, rtol=1e-5)


def test_distributed_attention_runs_no_collective_at_sp_1(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("no collective may run when the SP world size is 1")

    monkeypatch.setattr(dist, "all_to_all_single", boom)
    assert parallel_state.get_sp_world_size() == 1
    q = torch.randn(1, 6, 2, 8)
    torch.testing.assert_close(DistributedAttention(2, 8)(q, q, q), _naive_attention(q, q, q), atol=1e-5, rtol=1e-5)


def _sp_worker(rank: int, world: int, port: int, q, k, v, expected, results):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        parallel_state.init_sequence_parallel()
        shard = q.shape[1] // world
        local = slice(rank * shard, (rank + 1) * shard)
        out = DistributedAttention(q.shape[2], q.shape[3])(q[:, local], k[:, local], v[:, local])
        results[rank] = (out - expected[:, local]).abs().max().item()
    finally:
        parallel_state.destroy_sequence_parallel()
        dist.destroy_process_group()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ulysses_all_to_all_matches_full_attention():
    """Two gloo ranks, each holding half the sequence, reproduce full-sequence attention."""
    world = 2
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(1, 8, 4, 8, generator=g) for _ in range(3))
    expected = _naive_attention(q, k, v)
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        results = manager.dict()
        mp.start_processes(_sp_worker, args=(world, _free_port(), q, k, v, expected, results), nprocs=world,
                           start_method="spawn")
        errors = dict(results)
    assert sorted(errors) == [0, 1]
    assert max(errors.values()) < 1e-5


def test_flash_attn_4_unavailable_says_why(monkeypatch):
    """Without a Hopper/Blackwell GPU (or without the package) FLASH_ATTN_4 is an error naming the cause."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"FLASH_ATTN_4 .* unavailable: it needs an NVIDIA GPU of compute capability 9"):
        get_attn_backend("FLASH_ATTN_4")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (8, 0))
    assert "this GPU is 8.0" in FlashAttn4Backend.unavailable_reason()
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (9, 0))
    monkeypatch.setattr("fastvideo.attention.backends.flash4._installed", lambda: False)
    assert "pip install \"fastvideo-studio[fa4]\"" in FlashAttn4Backend.unavailable_reason()
    assert "FLASH_ATTN_4" not in available_backends()


@pytest.mark.gpu
@pytest.mark.skipif(not FlashAttn4Backend.is_available(), reason="FLASH_ATTN_4 needs flash-attn-4 and an SM90/SM100 GPU")
@pytest.mark.parametrize("kv_len", [333, 77])  # self-attention (odd length) and a short text context
def test_flash_attn_4_matches_sdpa_on_cuda(kv_len):
    g = torch.Generator(device="cuda").manual_seed(0)
    q = torch.randn(2, 333, 4, 128, device="cuda", dtype=torch.bfloat16, generator=g)
    k, v = (torch.randn(2, kv_len, 4, 128, device="cuda", dtype=torch.bfloat16, generator=g) for _ in range(2))
    ref = _naive_attention(q.float(), k.float(), v.float())
    out = get_attn_backend("FLASH_ATTN_4")(q, k, v)
    sdpa = get_attn_backend("TORCH_SDPA")(q, k, v)
    assert out.shape == q.shape and out.dtype == torch.bfloat16
    assert (out.float() - ref).norm() / ref.norm() < 5e-3
    assert (out.float() - ref).norm() <= 1.5 * (sdpa.float() - ref).norm()
    fa4 = get_attn_backend("FLASH_ATTN_4")
    compiled = torch.compile(lambda a, b, c: fa4(a * 1.0, b, c), fullgraph=True)
    torch.testing.assert_close(compiled(q, k, v), out)  # one graph through the custom op
