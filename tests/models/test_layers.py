"""fastvideo/layers/: the Wan models built from the shared layers keep their checkpoint keys, and the layers
serve a DiT that is not Wan's (issue 21)."""

from pathlib import Path

import pytest
import torch
from torch import nn

from fastvideo.configs.models.dits.wan import WanVideoConfig
from fastvideo.configs.models.vaes.wan import WanVAEConfig
from fastvideo.kernels import fused_linear, policy
from fastvideo.layers import (
    MLP,
    FP32LayerNorm,
    ResidualStream,
    RMSNorm,
    TimestepEmbedding,
    finish,
    modulation,
    qk_norm_rope,
    rope_cos_sin,
)
from fastvideo.models.dits.wan import WanTransformer3DModel
from fastvideo.models.vaes.wan import AutoencoderKLWan
from fastvideo.testing.tiny import TINY_DIT, TINY_VAE

KEYS = Path(__file__).with_name("wan_state_dict_keys.txt")  # dumped before the layers moved out of the models


def _state_dict_lines() -> list[str]:
    out = []
    for name, cfg in (("t2v", TINY_DIT),
                      ("i2v", dict(TINY_DIT, image_dim=24, added_kv_proj_dim=32, pos_embed_seq_len=514)),
                      ("nocross", dict(TINY_DIT, cross_attn_norm=False))):
        model = WanTransformer3DModel(WanVideoConfig(**cfg))
        out += [f"{name} {k} {tuple(v.shape)} {v.dtype}" for k, v in model.state_dict().items()]
    vae = AutoencoderKLWan(WanVAEConfig(**TINY_VAE))
    out += [f"vae {k} {tuple(t.shape)}" for k, t in vae.state_dict().items()]
    return out


def test_state_dict_keys_unchanged_by_the_move_to_layers():
    """Every key (in order), shape and dtype of tiny T2V / I2V / no-cross-norm DiTs and the VAE as before."""
    assert _state_dict_lines() == KEYS.read_text().splitlines()


class _ToyBlock(nn.Module):
    """A second DiT's block from the shared layers only: adaLN self-attention-free mixer + FFN (no Wan code)."""

    def __init__(self, d: int):
        super().__init__()
        self.modulation = nn.Parameter(torch.randn(1, 6, d) / d**0.5)
        self.norm1 = FP32LayerNorm(d, 1e-6, elementwise_affine=False)
        self.mixer = MLP(d, 2 * d, d, nn.GELU(approximate="tanh"))
        self.norm2 = FP32LayerNorm(d, 1e-6, elementwise_affine=True)
        self.ffn = MLP(d, 3 * d, d, nn.SiLU())

    def forward(self, x, emb, carry=None):
        shift, scale, gate, *_ = modulation(self.modulation, emb)
        stream = ResidualStream.start(x, carry, shared_modulation=shift.shape[0] == 1)
        stream = stream.add(self.mixer, norm=self.norm1, shift=shift, scale=scale, gate=gate)
        stream = stream.add(self.ffn, norm=self.norm2, gate=gate, defer=True)
        return stream.end()


def _twin_gemm(epilogue, a, w, c=None, **ops):
    from tests.kernels.test_fused_linear import twin_gemm

    return twin_gemm(epilogue, a, w, c, **ops)


def test_a_second_dit_uses_the_layers_plain_and_fused(monkeypatch):
    """The toy block's plain path (Pending carried between blocks) and its fused path (quack's GEMMs swapped
    for their torch twins: residuals in the epilogue, LayerNorms folded, RowStats carried) agree; a non-GELU
    FFN activation is applied after the folded GEMM."""
    torch.manual_seed(0)
    blocks = [_ToyBlock(16).eval() for _ in range(2)]
    x, emb = torch.randn(2, 5, 16), torch.randn(1, 6, 16)

    def run():
        h, carry = x, None
        for block in blocks:
            h, carry = block(h, emb, carry)
        return finish(h, carry), carry

    with torch.no_grad():
        plain, carry = run()
        assert type(carry).__name__ == "Pending"
        monkeypatch.setattr(fused_linear, "available", lambda x: True)
        monkeypatch.setattr(fused_linear, "_gemm", _twin_gemm)
        folded, carry = run()
        assert isinstance(carry, fused_linear.RowStats)
        with policy.use(norm_fold=False):
            unfolded, carry = run()
        assert carry is None
    rel = lambda a, b: float((a - b).norm() / b.norm())  # noqa: E731
    assert rel(folded, plain) < 1e-5 and rel(unfolded, plain) < 1e-6


def test_shared_layers_match_their_definitions():
    """Spot checks of the moved layers' math (the Wan parity tests cover the rest)."""
    g = torch.Generator().manual_seed(0)
    emb = TimestepEmbedding(8, 12)
    t = torch.tensor([3.0, 700.0])
    half = torch.exp(-torch.log(torch.tensor(10000.0)) * torch.arange(4) / 4)
    torch.testing.assert_close(emb.embed(t), emb(torch.cat([torch.cos(t[:, None] * half),
                                                            torch.sin(t[:, None] * half)], -1)))
    norm_q, norm_k = RMSNorm(24, 1e-6), RMSNorm(24, 1e-6)
    qkv = torch.randn(1, 6, 72, generator=g)
    q, k, v = qk_norm_rope(qkv, norm_q, norm_k, rope_cos_sin((1, 2, 3), 12, "cpu"), 2)
    assert q.shape == k.shape == v.shape == (1, 6, 2, 12)
    torch.testing.assert_close(v.flatten(2), qkv[..., 48:])


@pytest.mark.parametrize("timesteps", [[500.0, 20.0], [500.0]])
def test_wan_block_compiles_in_one_graph_on_cpu(timesteps):
    """The block's forward (the residual stream, the policy read) traces in one graph (Dynamo, eager backend)
    and gives the eager result; a policy change recompiles rather than reusing the graph."""
    torch.manual_seed(0)
    model = WanTransformer3DModel(WanVideoConfig(**TINY_DIT)).eval()
    x = torch.randn(len(timesteps), 16, 1, 4, 4)
    t, text = torch.tensor(timesteps), torch.randn(len(timesteps), 7, TINY_DIT["text_dim"])
    with torch.no_grad():
        tokens, grid = model.patchify(x)
        _, proj = model.condition_embedder.embed_time(t, model.dtype)
        context, _ = model.condition_embedder.embed_context(text, None)
        args = (tokens, context, None, proj, model.rope(grid, x.device))
        eager = model.blocks[0](*args)
        torch._dynamo.reset()
        graphs = []

        def backend(gm, example_inputs):
            graphs.append(gm)
            return gm.forward

        compiled = torch.compile(model.blocks[0], backend=backend, fullgraph=True)
        out = compiled(*args)
        with policy.use(plain=True):
            out_plain = compiled(*args)
        out_again = compiled(*args)
    assert len(graphs) == 2  # one graph per policy: the policy change was guarded
    for got in (out, out_plain, out_again):
        assert torch.equal(got[0], eager[0]) and torch.equal(got[1].update, eager[1].update)
