"""Token chunking of the DiT's FFN and head (fastvideo.layers.chunking): the same output as unchunked."""

from __future__ import annotations

import copy

import torch

from fastvideo.configs.models.dits import WanVideoConfig
from fastvideo.layers.chunking import chunk_dit, chunk_tokens, token_chunk
from fastvideo.layers.mlp import MLP
from fastvideo.models.dits import WanTransformer3DModel

TINY = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=4,
            text_dim=32, freq_dim=32, ffn_dim=48, num_layers=3)


def test_chunked_mlp_equals_unchunked():
    torch.manual_seed(0)
    mlp = MLP(32, 96, 32, torch.nn.GELU(approximate="tanh")).eval()
    x = torch.randn(2, 103, 32)
    ref = mlp(x)
    chunk_tokens(mlp, 16)
    assert token_chunk(mlp) == 16
    calls = []
    mlp.fc_in.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[1]))
    out = mlp(x)
    assert calls == [16] * 6 + [7]  # really chunked
    assert torch.equal(out, ref)
    chunk_tokens(mlp, None)
    assert token_chunk(mlp) is None and "forward" not in mlp.__dict__


def test_chunked_dit_equals_unchunked():
    torch.manual_seed(0)
    model = WanTransformer3DModel(WanVideoConfig(**TINY)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    chunked = copy.deepcopy(model)
    assert chunk_dit(chunked, 5) == 4  # three FFNs and the head
    g = torch.Generator().manual_seed(1)
    x, text = torch.randn(2, 4, 3, 6, 6, generator=g), torch.randn(2, 7, 32, generator=g)  # 27 tokens
    t = torch.tensor([300.0, 300.0])
    with torch.no_grad():
        ref, out = model(x, t, text), chunked(x, t, text)
    # Each token row is computed by the same math; only the GEMM blocking over rows differs with the chunk size,
    # which a multi-threaded CPU BLAS may round differently in the last bit (seen at 2 threads: 6e-7).
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=2e-6)
    assert list(chunked.state_dict()) == list(model.state_dict())
