"""Wan2.1 / Wan2.2 video diffusion transformer (DiT).

Notation: ``d`` = hidden size (heads x head_dim), ``S`` = number of video tokens
(frames x rows x columns after patchify), ``L`` = text tokens.

Forward pass (Wan2.1, T2V and I2V)::

    x      = Conv3d patchify(latents)                       [B, S, d]
    temb   = MLP(sinusoid(t))                               [B, d]
    mod    = Linear(SiLU(temb)) -> 6 vectors per block      [B, 6, d]
    ctx    = MLP(text)  (+ image tokens via their own K/V)  [B, L, d]
    for each block:
        x += gate   * SelfAttn(LN(x) * (1 + scale)   + shift)      (3D RoPE on q, k)
        x +=          CrossAttn(LN_affine(x), ctx)
        x += c_gate * FFN(LN(x) * (1 + c_scale) + c_shift)
    out    = unpatchify(Linear(LN(x) * (1 + scale) + shift))   (head uses temb)

Wan2.2 uses the same DiT (TI2V-5B: dim 3072, 30 layers, 48 latent channels; A14B: two Wan2.1-14B-shaped
experts).  TI2V adds per-token timesteps (Diffusers' ``expand_timesteps``): ``timestep`` ``[B, S]``, one per
video token, gives every token its own ``temb`` and modulation (``[B, S, 6, d]``); tokens of a given image
frame get timestep 0.  A ``[B, S]`` timestep that is the same for every token is embedded once, as ``[B]``.

Precision follows the reference: LayerNorms and the modulation arithmetic run
in fp32, RoPE angles in float64, every matmul in the parameter dtype.

The forward is split into small steps (:meth:`patchify`, :meth:`rope`,
:meth:`run_blocks`, :meth:`final_layer`, :meth:`unpatchify`) so sequence
parallelism can later shard the token sequence (and the RoPE table) right after
patchify and gather it before the head.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from fastvideo.attention import DistributedAttention, LocalAttention
from fastvideo.configs.models.dits.wan import WanVideoConfig
from fastvideo.distributed import parallel_state as ps
from fastvideo.distributed.communication import all_gather_cat, pad_to_multiple
from fastvideo.layers import (
    MLP,
    ROPE_THETA,
    Carry,
    FP32LayerNorm,
    Pending,
    ResidualStream,
    RMSNorm,
    TimestepEmbedding,
    add_gated,
    apply_rope,
    finish,
    modulate,
    modulation,
    qk_norm_rope,
    rope_cos_sin,
    rope_dims,
    timestep_sinusoid,
)

__all__ = [  # (the shared layers re-exported: importers of this module keep working)
    "MLP", "ROPE_THETA", "Carry", "CrossAttention", "ConditionEmbedder", "FP32LayerNorm", "ImageEmbedder",
    "OutputHead", "Pending", "RMSNorm", "SelfAttention", "WanTransformer3DModel", "WanTransformerBlock", "add_gated",
    "apply_rope", "modulate", "rope_cos_sin", "rope_dims", "timestep_sinusoid",
]

IMAGE_EMBED_LN_EPS = 1e-5  # the image embedder's LayerNorms use torch's default eps


# ----------------------------------------------------------------------------- embeddings


class ImageEmbedder(nn.Module):
    """CLIP image tokens -> context: LN -> Linear -> GELU -> Linear -> LN (I2V only).

    With ``pos_embed_seq_len`` (first-last-frame models) the two images' tokens
    are joined into one sequence and a learned position embedding is added.
    """

    def __init__(self, image_dim: int, dim: int, pos_embed_seq_len: int | None):
        super().__init__()
        self.norm_in = FP32LayerNorm(image_dim, eps=IMAGE_EMBED_LN_EPS)
        self.fc_in = nn.Linear(image_dim, image_dim)
        self.act = nn.GELU()
        self.fc_out = nn.Linear(image_dim, dim)
        self.norm_out = FP32LayerNorm(dim, eps=IMAGE_EMBED_LN_EPS)
        self.pos_embed = (
            nn.Parameter(torch.zeros(1, pos_embed_seq_len, image_dim)) if pos_embed_seq_len is not None else None
        )

    def forward(self, image_tokens: torch.Tensor) -> torch.Tensor:
        if self.pos_embed is not None:
            _, n, c = image_tokens.shape
            image_tokens = image_tokens.reshape(-1, 2 * n, c) + self.pos_embed
        x = self.norm_in(image_tokens)
        x = self.fc_out(self.act(self.fc_in(x)))
        return self.norm_out(x)


class ConditionEmbedder(nn.Module):
    """Timestep, text and (I2V) image conditioning."""

    def __init__(self, cfg: WanVideoConfig):
        super().__init__()
        d = cfg.hidden_size
        self.freq_dim = cfg.freq_dim
        self.time_embedder = TimestepEmbedding(cfg.freq_dim, d, nn.SiLU())
        self.time_modulation = nn.Linear(d, 6 * d)
        self.text_embedder = MLP(cfg.text_dim, d, d, nn.GELU(approximate="tanh"))
        self.image_embedder = (
            ImageEmbedder(cfg.image_dim, d, cfg.pos_embed_seq_len) if cfg.image_dim is not None else None
        )

    def embed_time(self, timestep: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """timestep [B] -> (temb [B, d], per-block modulation [B, 6, d]); per token, [B, S] -> ([B, S, d],
        [B, S, 6, d]).

        The time MLP runs in its own parameter dtype (kept fp32); temb is then
        cast to the model dtype as in the reference.
        """
        if timestep.ndim == 2:
            temb, proj = self.embed_time(timestep.flatten(), dtype)
            return temb.unflatten(0, timestep.shape), proj.unflatten(0, timestep.shape)
        temb = self.time_embedder.embed(timestep).to(dtype)
        timestep_proj = self.time_modulation(F.silu(temb))
        return temb, timestep_proj.unflatten(1, (6, -1))

    def embed_context(
        self, text: torch.Tensor, image: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        context = self.text_embedder(text)
        context_image = self.image_embedder(image) if image is not None else None
        return context, context_image


# ----------------------------------------------------------------------------- attention


class SelfAttention(nn.Module):
    """Self-attention over video tokens with fused q/k/v, q/k RMSNorm across heads, 3D RoPE."""

    def __init__(self, dim: int, num_heads: int, eps: float):
        super().__init__()
        self.num_heads = num_heads
        self.to_qkv = nn.Linear(dim, 3 * dim)
        self.norm_q = RMSNorm(dim, eps)
        self.norm_k = RMSNorm(dim, eps)
        self.to_out = nn.Linear(dim, dim)
        self.attn = DistributedAttention(num_heads, dim // num_heads)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return self.to_out(self.attend(x, rope))

    def attend(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """The attention output before the output projection ``to_out``."""
        return self.attend_qkv(self.to_qkv(x), rope)

    def attend_qkv(self, qkv: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """``attend`` from the q/k/v projection's output."""
        q, k, v = qk_norm_rope(qkv, self.norm_q, self.norm_k, rope, self.num_heads)
        return self.attn(q, k, v).flatten(2).type_as(q)

    # -- as a residual branch (fastvideo.layers.residual): to_qkv -> attend_qkv -> to_out --
    in_activation = None

    @property
    def proj_in(self) -> nn.Linear:
        return self.to_qkv

    @property
    def proj_out(self) -> nn.Linear:
        return self.to_out

    def project_in(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_qkv(x)

    def between(self, qkv: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return self.attend_qkv(qkv, rope)


class CrossAttention(nn.Module):
    """Video tokens attend to text; I2V models also attend to image tokens (own K/V), summed."""

    def __init__(self, dim: int, num_heads: int, eps: float, image_kv_dim: int | None = None):
        super().__init__()
        self.num_heads = num_heads
        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(dim, dim)
        self.to_v = nn.Linear(dim, dim)
        self.norm_q = RMSNorm(dim, eps)
        self.norm_k = RMSNorm(dim, eps)
        self.to_out = nn.Linear(dim, dim)
        self.has_image_kv = image_kv_dim is not None
        if self.has_image_kv:
            self.to_k_img = nn.Linear(image_kv_dim, dim)
            self.to_v_img = nn.Linear(image_kv_dim, dim)
            self.norm_k_img = RMSNorm(dim, eps)
        self.attn = LocalAttention(num_heads, dim // num_heads)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        return t.unflatten(2, (self.num_heads, -1))

    def forward(
        self, x: torch.Tensor, context: torch.Tensor, context_image: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.to_out(self.attend(x, context, context_image))

    def attend(
        self, x: torch.Tensor, context: torch.Tensor, context_image: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The attention output (text, plus image for I2V) before the output projection ``to_out``."""
        return self.attend_q(self.to_q(x), context, context_image)

    def attend_q(
        self, q_lin: torch.Tensor, context: torch.Tensor, context_image: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``attend`` from the q projection's output."""
        q = self._heads(self.norm_q(q_lin))
        k = self._heads(self.norm_k(self.to_k(context)))
        v = self._heads(self.to_v(context))
        out = self.attn(q, k, v).flatten(2).type_as(q)
        if context_image is not None:
            if not self.has_image_kv:
                raise ValueError("image context given to a cross-attention without image projections")
            k_img = self._heads(self.norm_k_img(self.to_k_img(context_image)))
            v_img = self._heads(self.to_v_img(context_image))
            out = out + self.attn(q, k_img, v_img).flatten(2).type_as(q)
        return out

    # -- as a residual branch (fastvideo.layers.residual): to_q -> attend_q -> to_out --
    in_activation = None

    @property
    def proj_in(self) -> nn.Linear:
        return self.to_q

    @property
    def proj_out(self) -> nn.Linear:
        return self.to_out

    def project_in(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_q(x)

    def between(self, q_lin: torch.Tensor, context: torch.Tensor,
                context_image: torch.Tensor | None = None) -> torch.Tensor:
        return self.attend_q(q_lin, context, context_image)


# ----------------------------------------------------------------------------- block and model


class WanTransformerBlock(nn.Module):
    """One Wan block: three residual branches (self-attention, cross-attention, FFN) on the stream.

    :class:`~fastvideo.layers.residual.ResidualStream` picks the kernels: plain math (the FFN's update handed
    to the next block as ``Pending``), or on CUDA inference with quack each update in its output projection's
    GEMM epilogue and, with one modulation for the batch, each LayerNorm folded into the GEMM after it (the
    block then hands the next one ``fused_linear.RowStats``)."""

    def __init__(self, cfg: WanVideoConfig):
        super().__init__()
        d, eps = cfg.hidden_size, cfg.eps
        self.modulation = nn.Parameter(torch.randn(1, 6, d) / d**0.5)
        self.self_attn_norm = FP32LayerNorm(d, eps, elementwise_affine=False)
        self.self_attn = SelfAttention(d, cfg.num_attention_heads, eps)
        self.cross_attn_norm = FP32LayerNorm(d, eps, elementwise_affine=True) if cfg.cross_attn_norm else nn.Identity()
        self.cross_attn = CrossAttention(d, cfg.num_attention_heads, eps, cfg.added_kv_proj_dim)
        self.ffn_norm = FP32LayerNorm(d, eps, elementwise_affine=False)
        self.ffn = MLP(d, cfg.ffn_dim, d, nn.GELU(approximate="tanh"))

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor,
        context_image: torch.Tensor | None,
        timestep_proj: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        carry: Carry = None,
    ) -> tuple[torch.Tensor, Carry]:
        """-> (x, carry): the previous block's carry in (a ``Pending`` update, applied first, or ``x``'s
        ``RowStats``), this block's out."""
        shift, scale, gate, c_shift, c_scale, c_gate = modulation(self.modulation, timestep_proj)
        per_token = timestep_proj.ndim == 4  # [B, S, 6, d]: a modulation per token
        stream = ResidualStream.start(x, carry, shared_modulation=shift.shape[0] == 1 and not per_token,
                                      per_token_modulation=per_token)
        stream = stream.add(self.self_attn, rope, norm=self.self_attn_norm, shift=shift, scale=scale, gate=gate)
        stream = stream.add(self.cross_attn, context, context_image, norm=self.cross_attn_norm)
        stream = stream.add(self.ffn, norm=self.ffn_norm, shift=c_shift, scale=c_scale, gate=c_gate, defer=True)
        return stream.end()


class OutputHead(nn.Module):
    """adaLN (shift, scale from temb) then a Linear to patch pixels."""

    def __init__(self, dim: int, out_features: int, eps: float):
        super().__init__()
        self.modulation = nn.Parameter(torch.randn(1, 2, dim) / dim**0.5)
        self.norm = FP32LayerNorm(dim, eps, elementwise_affine=False)
        self.proj = nn.Linear(dim, out_features)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        """``temb`` [B, d], or [B, S, d] per token."""
        shift, scale = modulation(self.modulation, temb[:, None, :] if temb.ndim == 2 else temb[:, :, None, :],
                                  fp32=False)
        return self.proj(modulate(self.norm, x, shift, scale))


class WanTransformer3DModel(nn.Module):
    """The Wan DiT (2.1 and 2.2); see the module docstring for the math."""

    _ROPE_CACHE_SIZE = 8

    def __init__(self, config: WanVideoConfig):
        super().__init__()
        if config.qk_norm != "rms_norm_across_heads":
            raise ValueError(f"qk_norm {config.qk_norm!r} is not supported (only 'rms_norm_across_heads')")
        self.config = config
        d = config.hidden_size
        self.patch_size = tuple(config.patch_size)
        self.patch_embedding = nn.Conv3d(config.in_channels, d, kernel_size=self.patch_size, stride=self.patch_size)
        self.condition_embedder = ConditionEmbedder(config)
        self.blocks = nn.ModuleList(WanTransformerBlock(config) for _ in range(config.num_layers))
        self.head = OutputHead(d, config.out_channels * math.prod(self.patch_size), config.eps)
        self._rope_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def dtype(self) -> torch.dtype:
        """Compute dtype: that of the bulk of the weights (the patch embedding)."""
        return self.patch_embedding.weight.dtype

    # -- steps of the forward pass -------------------------------------------------------

    def patchify(self, latents: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """[B, C, F, H, W] -> tokens [B, S, d] (frame-major, then row, column) and the token grid."""
        x = self.patch_embedding(latents)
        grid = tuple(x.shape[2:])
        return x.flatten(2).transpose(1, 2).contiguous(), grid  # type: ignore[return-value]

    def rope(self, grid: tuple[int, int, int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """RoPE cos/sin table [S, head_dim/2] for a token grid (cached per grid and device)."""
        key = (grid, str(device))
        if key not in self._rope_cache:
            if len(self._rope_cache) >= self._ROPE_CACHE_SIZE:
                self._rope_cache.pop(next(iter(self._rope_cache)))
            self._rope_cache[key] = rope_cos_sin(grid, self.config.attention_head_dim, device)
        return self._rope_cache[key]

    def run_blocks(
        self,
        x: torch.Tensor,
        context: torch.Tensor,
        context_image: torch.Tensor | None,
        timestep_proj: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
    ) -> torch.Tensor:
        """All transformer blocks.  Token-wise except self-attention, so ``x`` and ``rope``
        may be matching sequence shards under sequence parallelism."""
        carry = None
        for block in self.blocks:
            x, carry = block(x, context, context_image, timestep_proj, rope, carry)
        return finish(x, carry)

    def final_layer(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        return self.head(x, temb)

    def unpatchify(self, x: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        """[B, S, pt*ph*pw*C] -> [B, C, F, H, W]."""
        (f, h, w), (pt, ph, pw) = grid, self.patch_size
        x = x.reshape(x.shape[0], f, h, w, pt, ph, pw, -1)
        x = x.permute(0, 7, 1, 4, 2, 5, 3, 6)  # B, C, f, pt, h, ph, w, pw
        return x.reshape(x.shape[0], x.shape[1], f * pt, h * ph, w * pw)

    def check_inputs(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_hidden_states_image: torch.Tensor | None,
    ) -> torch.Tensor:
        """Validate shapes (clear errors instead of a failing reshape); returns timestep as [B] or, per token,
        [B, S] (S = the number of video tokens)."""
        cfg = self.config
        if hidden_states.ndim != 5:
            raise ValueError(f"hidden_states must be [B, C, F, H, W], got shape {list(hidden_states.shape)}")
        b, c, f, h, w = hidden_states.shape
        if c != cfg.in_channels:
            raise ValueError(f"hidden_states has {c} channels, the model expects in_channels={cfg.in_channels}")
        for axis, size, p in zip(("frames", "height", "width"), (f, h, w), self.patch_size):
            if size % p:
                raise ValueError(
                    f"latent {axis} {size} is not divisible by the patch size {p} (patch_size {self.patch_size})"
                )
        timestep = torch.as_tensor(timestep, device=hidden_states.device)
        if timestep.ndim == 0:
            timestep = timestep.expand(b)
        tokens = (f // self.patch_size[0]) * (h // self.patch_size[1]) * (w // self.patch_size[2])
        if timestep.shape not in ((b,), (b, tokens)):
            raise ValueError(f"timestep must be a scalar, shape [{b}] or, one per video token, [{b}, {tokens}]; "
                             f"got {list(timestep.shape)}")
        text = encoder_hidden_states
        if text.ndim != 3 or text.shape[0] != b or text.shape[2] != cfg.text_dim:
            raise ValueError(
                f"encoder_hidden_states must be [{b}, L, {cfg.text_dim}], got {list(encoder_hidden_states.shape)}"
            )
        if cfg.image_dim is None and encoder_hidden_states_image is not None:
            raise ValueError(
                "encoder_hidden_states_image given, but this model has no image conditioning (image_dim is None)"
            )
        image = encoder_hidden_states_image
        if cfg.image_dim is not None:
            if image is None:
                raise ValueError("this image-to-video model needs encoder_hidden_states_image [B, 257, image_dim]")
            # (Batch not checked: first-last-frame models pass 2 images per sample.)
            if image.ndim != 3 or image.shape[-1] != cfg.image_dim:
                raise ValueError(
                    f"encoder_hidden_states_image must be [B, N, {cfg.image_dim}], got {list(image.shape)}"
                )
        return timestep

    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_hidden_states_image: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict the flow (noise - x0) for latents ``hidden_states`` [B, C, F, H, W].

        ``timestep`` [B] (or a scalar: one for the batch) is sigma * 1000 (float); [B, S] gives each video
        token its own (Wan2.2 TI2V: 0 for the tokens of a given image);
        ``encoder_hidden_states`` [B, L, text_dim]; ``encoder_hidden_states_image`` [B, 257, image_dim] for
        I2V models.
        Returns [B, out_channels, F, H, W] in the model dtype.
        """
        timestep = self.check_inputs(hidden_states, timestep, encoder_hidden_states, encoder_hidden_states_image)
        dtype = self.dtype
        x, grid = self.patchify(hidden_states.to(dtype))
        rope = self.rope(grid, x.device)
        if timestep.ndim == 2 and bool((timestep == timestep[:, :1]).all()):
            timestep = timestep[:, 0]  # one timestep for every token: embedded once per sample
        # One timestep for the whole batch (a scalar, or expanded as the denoising loop passes it: stride 0)
        # is embedded once, and the blocks see one modulation shared by every sample.
        shared = timestep.shape[0] > 1 and timestep.stride(0) == 0
        temb, timestep_proj = self.condition_embedder.embed_time(timestep[:1] if shared else timestep, dtype)
        image = encoder_hidden_states_image.to(dtype) if encoder_hidden_states_image is not None else None
        context, context_image = self.condition_embedder.embed_context(encoder_hidden_states.to(dtype), image)
        sp_size = ps.get_sp_world_size()
        if sp_size == 1:
            x = self.run_blocks(x, context, context_image, timestep_proj, rope)
            x = self.final_layer(x, temb)
            return self.unpatchify(x, grid)
        # Sequence parallel: this rank keeps one contiguous shard of the (padded) token
        # sequence and the matching RoPE rows; every layer but self-attention is token-wise.
        num_tokens = x.shape[1]
        if timestep_proj.ndim == 4:  # per-token modulation: the same shard as the tokens
            timestep_proj, temb = (self.shard_tokens(v, sp_size, ps.get_sp_rank()) for v in (timestep_proj, temb))
        x, rope = self.shard_sequence(x, rope, sp_size, ps.get_sp_rank())
        with ps.sp_valid_len(num_tokens):
            x = self.run_blocks(x, context, context_image, timestep_proj, rope)
        # The head is token-wise too: gather its (narrower) output instead of the hidden states.
        x = self.final_layer(x, temb)
        x = all_gather_cat(x, ps.get_sp_group(), dim=1)[:, :num_tokens]
        return self.unpatchify(x, grid)

    @staticmethod
    def shard_tokens(v: torch.Tensor, sp_size: int, sp_rank: int) -> torch.Tensor:
        """Shard ``sp_rank`` of a per-token tensor [B, S, ...] padded (zeros) to a multiple of ``sp_size``."""
        v = pad_to_multiple(v, sp_size, dim=1)
        shard = v.shape[1] // sp_size
        return v[:, sp_rank * shard:(sp_rank + 1) * shard].contiguous()

    def shard_sequence(
        self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], sp_size: int, sp_rank: int
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Pad tokens [B, S, d] and RoPE [S, D/2] to a multiple of ``sp_size``; keep shard ``sp_rank``.

        Pad tokens (zeros, identity rotation) sit at the end of the full sequence; the
        attention layer leaves them out of every softmax (``sp_valid_len``) and they are
        dropped after the gather, so they never change the result.
        """
        heads = self.config.num_attention_heads
        if heads % sp_size:
            raise ValueError(
                f"sequence parallelism over {sp_size} ranks needs the attention heads ({heads}) to divide by "
                f"{sp_size}; use an SP size that divides {heads}"
            )
        x = pad_to_multiple(x, sp_size, dim=1)
        cos = pad_to_multiple(rope[0], sp_size, dim=0, value=1.0)
        sin = pad_to_multiple(rope[1], sp_size, dim=0, value=0.0)
        shard = x.shape[1] // sp_size
        part = slice(sp_rank * shard, (sp_rank + 1) * shard)
        return x[:, part].contiguous(), (cos[part], sin[part])
