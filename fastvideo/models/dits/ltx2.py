"""LTX-2 joint audio-video diffusion transformer.

Notation: ``d`` / ``d_a`` = video / audio hidden size, ``S`` / ``S_a`` = video / audio tokens
(patch size 1: one token per latent voxel / per latent audio frame), ``L`` = text tokens.

Forward pass (LTX-2.0)::

    x, a     = Linear(video tokens), Linear(audio tokens)
    temb     = adaLN-single(t)  -> 6 (or 9) d-vectors (per token when t is per token: I2V)
    ca_*     = adaLN-single(t)  -> 4 scale/shift + 1 gate for the audio<->video attention
    ctx      = MLP(text)  (one context per stream)
    for each block (video and audio side by side):
        x += gate * SelfAttn(RMS(x) * (1 + scale) + shift)                 (RoPE on t, h, w)
        x += CrossAttn(RMS(x), ctx)
        x += g_a2v * Attn(q = mod(RMS(x)), kv = mod(RMS(a)))               (temporal RoPE on both)
        a += g_v2a * Attn(q = mod(RMS(a)), kv = mod(RMS(x)))
        x += gate * FFN(RMS(x) * (1 + scale) + shift)
    out      = Linear(LN(x) * (1 + scale) + shift)                          (and the audio head)

RoPE: positions are the patch *centres* in pixel space (time in seconds, first frame causal),
as fractions of ``pos_embed_max_pos`` / ``base_height`` / ``base_width``; frequencies
``theta ** linspace(0, 1)`` * pi / 2 over ``(2 * pos - 1)``, interleaved channel pairs rotated
across the full hidden width (all heads at once).  Angles in float64 where the reference does.
Built from :mod:`fastvideo.layers` (``RMSNorm``, ``TimestepEmbedding``, ``MLP``) and the engine's
attention layers; the math follows Diffusers' ``LTX2VideoTransformer3DModel`` (0.42.1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fastvideo.attention import DistributedAttention, LocalAttention
from fastvideo.configs.models.dits.ltx2 import LTX2VideoConfig
from fastvideo.layers import MLP, RMSNorm, TimestepEmbedding, timestep_sinusoid

SINUSOID_DIM = 256  # PixArt's timestep embedder frequency size


# ----------------------------------------------------------------------------- positions and RoPE


def video_coords(batch: int, frames: int, height: int, width: int, scale_factors: tuple[int, int, int],
                 causal_offset: int, fps: float, device) -> torch.Tensor:
    """Patch bounds in pixel space ``[B, 3, S, 2]`` (time in seconds), tokens in (f, h, w) order."""
    grid = torch.meshgrid(
        torch.arange(frames, dtype=torch.float32, device=device),
        torch.arange(height, dtype=torch.float32, device=device),
        torch.arange(width, dtype=torch.float32, device=device),
        indexing="ij",
    )
    grid = torch.stack(grid, dim=0)  # [3, F, H, W]
    bounds = torch.stack([grid, grid + 1], dim=-1).flatten(1, 3)  # [3, S, 2]
    pixel = bounds * torch.tensor(scale_factors, device=device).view(3, 1, 1)
    # The VAE's first frame stands alone (temporal stride 1): shift back and clamp so times stay causal.
    pixel[0] = (pixel[0] + causal_offset - scale_factors[0]).clamp(min=0) / fps
    return pixel.unsqueeze(0).repeat(batch, 1, 1, 1)


def audio_coords(batch: int, frames: int, scale_factor: int, causal_offset: int, hop_length: int,
                 sampling_rate: int, device, shift: int = 0) -> torch.Tensor:
    """Start/end times in seconds of each latent audio frame ``[B, 1, S_a, 2]``."""
    f = torch.arange(shift, frames + shift, dtype=torch.float32, device=device)

    def seconds(mel: torch.Tensor) -> torch.Tensor:
        return (mel + causal_offset - scale_factor).clip(min=0) * hop_length / sampling_rate

    bounds = torch.stack([seconds(f * scale_factor), seconds((f + 1) * scale_factor)], dim=-1)
    return bounds[None, None].expand(batch, 1, -1, -1)


def rope_table(coords: torch.Tensor, dim: int, max_positions: tuple[float, ...], theta: float,
               double_precision: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin ``[B, S, dim]`` for interleaved pairs, from patch bounds ``[B, n_axes, S, 2]``.

    Each axis gets ``dim // (2 * n_axes)`` frequencies; the remainder of ``dim`` is padded at the
    front with the identity rotation (cos 1, sin 0).
    """
    centres = coords.mean(dim=-1)  # [B, n, S]
    n = centres.shape[1]
    grid = torch.stack([centres[:, i] / max_positions[i] for i in range(n)], dim=-1)  # [B, S, n]
    fdtype = torch.float64 if double_precision else torch.float32
    steps = dim // (2 * n)
    freqs = (theta ** torch.linspace(0.0, 1.0, steps, dtype=fdtype, device=coords.device) * torch.pi / 2.0).float()
    angles = ((grid.unsqueeze(-1) * 2 - 1) * freqs).transpose(-1, -2).flatten(2)  # [B, S, n * steps]
    cos = angles.cos().repeat_interleave(2, dim=-1)
    sin = angles.sin().repeat_interleave(2, dim=-1)
    pad = dim % (2 * n)
    if pad:
        cos = torch.cat([torch.ones_like(cos[..., :pad]), cos], dim=-1)
        sin = torch.cat([torch.zeros_like(sin[..., :pad]), sin], dim=-1)
    return cos, sin


def rotate_interleaved(x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Rotate pairs (x[2j], x[2j+1]) of ``x`` [B, S, D] by the angles of ``rope`` ([B, S, D] each), in fp32."""
    cos, sin = rope
    even, odd = x.unflatten(-1, (-1, 2)).unbind(-1)
    rotated = torch.stack([-odd, even], dim=-1).flatten(-2)
    return (x.float() * cos + rotated.float() * sin).to(x.dtype)


# ----------------------------------------------------------------------------- embedders


class AdaLNSingle(nn.Module):
    """PixArt's adaLN-single: ``emb = MLP(sinusoid(t))``, modulation ``Linear(SiLU(emb))`` -> ``n * d``."""

    def __init__(self, dim: int, num_params: int):
        super().__init__()
        self.num_params = num_params
        self.emb = TimestepEmbedding(SINUSOID_DIM, dim)
        self.linear = nn.Linear(dim, num_params * dim)

    def forward(self, timestep: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.emb(timestep_sinusoid(timestep.flatten(), SINUSOID_DIM).to(dtype))
        return self.linear(F.silu(emb)), emb


def gelu_mlp(dim_in: int, dim_hidden: int, dim_out: int, bias: bool = True) -> MLP:
    mlp = MLP(dim_in, dim_hidden, dim_out, nn.GELU(approximate="tanh"))
    if not bias:
        mlp.fc_in = nn.Linear(dim_in, dim_hidden, bias=False)
        mlp.fc_out = nn.Linear(dim_hidden, dim_out, bias=False)
    return mlp


# ----------------------------------------------------------------------------- attention


class LTX2Attention(nn.Module):
    """q/k/v projections, RMSNorm of q and k across all heads, interleaved RoPE (separate for q and k in
    the audio<->video attention), optional per-head sigmoid gates, output projection."""

    def __init__(self, query_dim: int, heads: int, head_dim: int, kv_dim: int | None = None, *, bias: bool = True,
                 out_bias: bool = True, eps: float = 1e-6, gated: bool = False, distributed: bool = False):
        super().__init__()
        inner = heads * head_dim
        kv_dim = query_dim if kv_dim is None else kv_dim
        self.heads = heads
        self.to_q = nn.Linear(query_dim, inner, bias=bias)
        self.to_k = nn.Linear(kv_dim, inner, bias=bias)
        self.to_v = nn.Linear(kv_dim, inner, bias=bias)
        self.norm_q = RMSNorm(inner, eps)
        self.norm_k = RMSNorm(inner, eps)
        self.to_out = nn.Linear(inner, query_dim, bias=out_bias)
        self.to_gate_logits = nn.Linear(query_dim, heads) if gated else None
        self.attn = (DistributedAttention if distributed else LocalAttention)(heads, head_dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, *,
                rope_q: tuple[torch.Tensor, torch.Tensor] | None = None,
                rope_k: tuple[torch.Tensor, torch.Tensor] | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        context = x if context is None else context
        q = self.norm_q(self.to_q(x))
        k = self.norm_k(self.to_k(context))
        v = self.to_v(context)
        if rope_q is not None:
            q = rotate_interleaved(q, rope_q)
            k = rotate_interleaved(k, rope_k if rope_k is not None else rope_q)
        q, k, v = (t.unflatten(2, (self.heads, -1)) for t in (q, k, v))
        if mask is None:
            out = self.attn(q, k, v)
        else:  # additive bias [B, 1, L] (padded text without learned registers): SDPA takes it
            bias = mask.to(q.dtype)[:, None]  # [B, 1, 1, L]
            out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                 attn_mask=bias).transpose(1, 2)
        if self.to_gate_logits is not None:
            out = out * (2.0 * torch.sigmoid(self.to_gate_logits(x))).unsqueeze(-1)
        return self.to_out(out.flatten(2).to(q.dtype))


def _params(table: torch.Tensor, emb: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``table[n, d] + emb[B, T, n*d]`` split in ``n`` tensors ``[B, T, d]``."""
    b, t = emb.shape[:2]
    return (table[None, None].to(emb.device) + emb.reshape(b, t, table.shape[0], -1)).unbind(dim=2)


def _rms(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Parameter-free RMSNorm, computed in fp32 (Diffusers' RMSNorm without weight)."""
    return (x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


# ----------------------------------------------------------------------------- block


class LTX2TransformerBlock(nn.Module):
    def __init__(self, cfg: LTX2VideoConfig):
        super().__init__()
        d, da = cfg.hidden_size, cfg.audio_hidden_size
        h, hd, ha, hda = cfg.num_attention_heads, cfg.attention_head_dim, cfg.audio_num_attention_heads, \
            cfg.audio_attention_head_dim
        kw = dict(bias=cfg.attention_bias, out_bias=cfg.attention_out_bias)
        self.eps = cfg.norm_eps
        self.attn1 = LTX2Attention(d, h, hd, gated=cfg.gated_attn, distributed=True, **kw)
        self.audio_attn1 = LTX2Attention(da, ha, hda, gated=cfg.audio_gated_attn, **kw)
        self.attn2 = LTX2Attention(d, h, hd, cfg.cross_attention_dim, gated=cfg.gated_attn, **kw)
        self.audio_attn2 = LTX2Attention(da, ha, hda, cfg.audio_cross_attention_dim, gated=cfg.audio_gated_attn, **kw)
        # Audio-to-video (q: video, kv: audio) and video-to-audio (q: audio, kv: video), both at the audio width.
        self.audio_to_video_attn = LTX2Attention(d, ha, hda, da, gated=cfg.gated_attn, **kw)
        self.video_to_audio_attn = LTX2Attention(da, ha, hda, d, gated=cfg.audio_gated_attn, **kw)
        self.ff = gelu_mlp(d, 4 * d, d, cfg.ff_bias)
        self.audio_ff = gelu_mlp(da, 4 * da, da, cfg.audio_ff_bias)
        self.video_cross_attn_adaln = cfg.cross_attn_mod
        self.audio_cross_attn_adaln = cfg.audio_cross_attn_mod
        self.scale_shift_table = nn.Parameter(torch.empty(9 if cfg.cross_attn_mod else 6, d))
        self.audio_scale_shift_table = nn.Parameter(torch.empty(9 if cfg.audio_cross_attn_mod else 6, da))
        self.cross_attn_adaln = cfg.cross_attn_mod or cfg.audio_cross_attn_mod
        if self.cross_attn_adaln:
            self.prompt_scale_shift_table = nn.Parameter(torch.empty(2, d))
            self.audio_prompt_scale_shift_table = nn.Parameter(torch.empty(2, da))
        self.video_a2v_cross_attn_scale_shift_table = nn.Parameter(torch.empty(5, d))
        self.audio_a2v_cross_attn_scale_shift_table = nn.Parameter(torch.empty(5, da))

    def _text(self, x, ctx, attn, mod_q, kv_table, temb_prompt, mask):
        """Cross-attention to the text; LTX-2.3's adaLN of the query (``mod_q``) and of the context."""
        n = _rms(x, self.eps)
        if mod_q is not None:
            n = n * (1 + mod_q[1]) + mod_q[0]
        if kv_table is not None:
            if temb_prompt is not None:
                shift_kv, scale_kv = _params(kv_table, temb_prompt)
            else:
                shift_kv, scale_kv = kv_table[None, None].to(device=x.device, dtype=x.dtype).unbind(dim=2)
            ctx = ctx * (1 + scale_kv) + shift_kv
        out = attn(n, ctx, mask=mask)
        return out * mod_q[2] if mod_q is not None else out

    def forward(self, x, a, ctx, actx, temb, temb_a, ca_ss, ca_ss_a, ca_gate, ca_gate_a, rope, rope_a,
                ca_rope, ca_rope_a, mask=None, mask_a=None, temb_prompt=None, temb_prompt_a=None,
                cross_modal: bool = True):
        eps = self.eps
        vp = _params(self.scale_shift_table, temb)
        ap = _params(self.audio_scale_shift_table, temb_a)
        shift, scale, gate, shift_ff, scale_ff, gate_ff = vp[:6]
        a_shift, a_scale, a_gate, a_shift_ff, a_scale_ff, a_gate_ff = ap[:6]

        # 1. self-attention
        x = x + self.attn1(_rms(x, eps) * (1 + scale) + shift, rope_q=rope) * gate
        a = a + self.audio_attn1(_rms(a, eps) * (1 + a_scale) + a_shift, rope_q=rope_a) * a_gate

        # 2. text cross-attention
        kv_v = self.prompt_scale_shift_table if self.cross_attn_adaln else None
        kv_a = self.audio_prompt_scale_shift_table if self.cross_attn_adaln else None
        x = x + self._text(x, ctx, self.attn2, vp[6:9] if self.video_cross_attn_adaln else None, kv_v,
                           temb_prompt, mask)
        a = a + self._text(a, actx, self.audio_attn2, ap[6:9] if self.audio_cross_attn_adaln else None, kv_a,
                           temb_prompt_a, mask_a)

        # 3. audio <-> video attention (both read the streams as they are after step 2)
        if cross_modal:
            nx, na = _rms(x, eps), _rms(a, eps)
            v_tab, a_tab = self.video_a2v_cross_attn_scale_shift_table, self.audio_a2v_cross_attn_scale_shift_table
            v_a2v_scale, v_a2v_shift, v_v2a_scale, v_v2a_shift = _params(v_tab[:4], ca_ss)
            a_a2v_scale, a_a2v_shift, a_v2a_scale, a_v2a_shift = _params(a_tab[:4], ca_ss_a)
            a2v_gate = _params(v_tab[4:], ca_gate)[0]
            v2a_gate = _params(a_tab[4:], ca_gate_a)[0]
            a2v = self.audio_to_video_attn(nx * (1 + v_a2v_scale) + v_a2v_shift, na * (1 + a_a2v_scale) + a_a2v_shift,
                                           rope_q=ca_rope, rope_k=ca_rope_a)
            v2a = self.video_to_audio_attn(na * (1 + a_v2a_scale) + a_v2a_shift, nx * (1 + v_v2a_scale) + v_v2a_shift,
                                           rope_q=ca_rope_a, rope_k=ca_rope)
            x = x + a2v_gate * a2v
            a = a + v2a_gate * v2a

        # 4. feed-forward
        x = x + self.ff(_rms(x, eps) * (1 + scale_ff) + shift_ff) * gate_ff
        a = a + self.audio_ff(_rms(a, eps) * (1 + a_scale_ff) + a_shift_ff) * a_gate_ff
        return x, a


# ----------------------------------------------------------------------------- model


class LTX2VideoTransformer3DModel(nn.Module):
    """The LTX-2 audio-video DiT (our implementation of Diffusers' class of the same name)."""

    def __init__(self, config: LTX2VideoConfig):
        super().__init__()
        if config.perturbed_attn or config.use_keyframes_abs_pos_embedding:
            raise ValueError("LTX2VideoTransformer3DModel: perturbed attention (STG) and keyframe embeddings "
                             "(LTX-2.5) are not ported; use an LTX-2.0 checkpoint")
        self.config = config
        d, da = config.hidden_size, config.audio_hidden_size
        self.proj_in = nn.Linear(config.in_channels, d)
        self.audio_proj_in = nn.Linear(config.audio_in_channels, da)
        if config.use_prompt_embeddings:
            self.caption_projection = gelu_mlp(config.caption_channels, d, d)
            self.audio_caption_projection = gelu_mlp(config.caption_channels, da, da)
        self.time_embed = AdaLNSingle(d, 9 if config.cross_attn_mod else 6)
        self.audio_time_embed = AdaLNSingle(da, 9 if config.audio_cross_attn_mod else 6)
        self.av_cross_attn_video_scale_shift = AdaLNSingle(d, 4)
        self.av_cross_attn_audio_scale_shift = AdaLNSingle(da, 4)
        self.av_cross_attn_video_a2v_gate = AdaLNSingle(d, 1)
        self.av_cross_attn_audio_v2a_gate = AdaLNSingle(da, 1)
        self.prompt_modulation = (config.cross_attn_mod or config.audio_cross_attn_mod) and \
            config.use_prompt_adaln_single
        if self.prompt_modulation:
            self.prompt_adaln = AdaLNSingle(d, 2)
            self.audio_prompt_adaln = AdaLNSingle(da, 2)
        self.scale_shift_table = nn.Parameter(torch.empty(2, d))
        self.audio_scale_shift_table = nn.Parameter(torch.empty(2, da))
        self.transformer_blocks = nn.ModuleList(LTX2TransformerBlock(config) for _ in range(config.num_layers))
        self.proj_out = nn.Linear(d, config.out_channels)
        self.audio_proj_out = nn.Linear(da, config.audio_out_channels)

    @classmethod
    def from_arch_config(cls, config: LTX2VideoConfig) -> LTX2VideoTransformer3DModel:
        return cls(config)

    @property
    def dtype(self) -> torch.dtype:
        return self.proj_in.weight.dtype

    # -- positions --

    def coords(self, batch: int, frames: int, height: int, width: int, audio_frames: int, fps: float,
               device) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        v = video_coords(batch, frames, height, width, c.vae_scale_factors, c.causal_offset, fps, device)
        a = audio_coords(batch, audio_frames, c.audio_scale_factor, c.causal_offset, c.audio_hop_length,
                         c.audio_sampling_rate, device)
        return v, a

    def ropes(self, vcoords: torch.Tensor, acoords: torch.Tensor):
        c = self.config
        theta, dp = c.rope_theta, c.rope_double_precision
        vmax = (c.pos_embed_max_pos, c.base_height, c.base_width)
        ca_max = max(c.pos_embed_max_pos, c.audio_pos_embed_max_pos)
        rope = rope_table(vcoords, c.hidden_size, vmax, theta, dp)
        rope_a = rope_table(acoords, c.audio_hidden_size, (c.audio_pos_embed_max_pos,), theta, dp)
        ca_rope = rope_table(vcoords[:, 0:1], c.audio_cross_attention_dim, (ca_max,), theta, dp)
        ca_rope_a = rope_table(acoords[:, 0:1], c.audio_cross_attention_dim, (ca_max,), theta, dp)
        return rope, rope_a, ca_rope, ca_rope_a

    # -- forward --

    def forward(self, hidden_states: torch.Tensor, audio_hidden_states: torch.Tensor,
                encoder_hidden_states: torch.Tensor, audio_encoder_hidden_states: torch.Tensor,
                timestep: torch.Tensor, audio_timestep: torch.Tensor | None = None, *,
                sigma: torch.Tensor | None = None, audio_sigma: torch.Tensor | None = None,
                encoder_attention_mask: torch.Tensor | None = None,
                audio_encoder_attention_mask: torch.Tensor | None = None,
                num_frames: int | None = None, height: int | None = None, width: int | None = None,
                fps: float = 24.0, audio_num_frames: int | None = None,
                video_coords: torch.Tensor | None = None, audio_coords: torch.Tensor | None = None,
                isolate_modalities: bool = False, use_cross_timestep: bool = False,
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Video tokens ``[B, S, C]`` and audio tokens ``[B, S_a, C_a]`` -> velocity of each.

        ``timestep`` ``[B]`` or per token ``[B, S]`` (already times ``timestep_scale_multiplier``);
        ``audio_timestep`` defaults to ``timestep``.  Masks: multiplicative ``[B, L]`` (1 = keep).
        """
        c = self.config
        x, a = hidden_states, audio_hidden_states
        b = x.shape[0]
        audio_timestep = timestep if audio_timestep is None else audio_timestep
        audio_sigma = sigma if audio_sigma is None else audio_sigma
        mask = _text_bias(encoder_attention_mask, x.dtype)
        mask_a = _text_bias(audio_encoder_attention_mask, a.dtype)

        if video_coords is None or audio_coords is None:
            vc, ac = self.coords(b, num_frames, height, width, audio_num_frames, fps, x.device)
            video_coords = vc if video_coords is None else video_coords
            audio_coords = ac if audio_coords is None else audio_coords
        rope, rope_a, ca_rope, ca_rope_a = self.ropes(video_coords, audio_coords)

        x = self.proj_in(x)
        a = self.audio_proj_in(a)

        def per_batch(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, -1, t.shape[-1])

        temb, emb = (per_batch(t) for t in self.time_embed(timestep, x.dtype))
        temb_a, emb_a = (per_batch(t) for t in self.audio_time_embed(audio_timestep, a.dtype))
        temb_prompt = temb_prompt_a = None
        if self.prompt_modulation:
            temb_prompt = per_batch(self.prompt_adaln(sigma, x.dtype)[0])
            temb_prompt_a = per_batch(self.audio_prompt_adaln(audio_sigma, a.dtype)[0])
        gate_factor = c.cross_attn_timestep_scale_multiplier / c.timestep_scale_multiplier
        v_ca_t = audio_sigma.flatten() if use_cross_timestep else timestep.flatten()
        a_ca_t = sigma.flatten() if use_cross_timestep else audio_timestep.flatten()
        ca_ss = per_batch(self.av_cross_attn_video_scale_shift(v_ca_t, x.dtype)[0])
        ca_gate = per_batch(self.av_cross_attn_video_a2v_gate(v_ca_t * gate_factor, x.dtype)[0])
        ca_ss_a = per_batch(self.av_cross_attn_audio_scale_shift(a_ca_t, a.dtype)[0])
        ca_gate_a = per_batch(self.av_cross_attn_audio_v2a_gate(a_ca_t * gate_factor, a.dtype)[0])

        ctx, actx = encoder_hidden_states, audio_encoder_hidden_states
        if c.use_prompt_embeddings:
            ctx = self.caption_projection(ctx).view(b, -1, x.shape[-1])
            actx = self.audio_caption_projection(actx).view(b, -1, a.shape[-1])

        for block in self.transformer_blocks:
            x, a = block(x, a, ctx, actx, temb, temb_a, ca_ss, ca_ss_a, ca_gate, ca_gate_a, rope, rope_a,
                         ca_rope, ca_rope_a, mask, mask_a, temb_prompt, temb_prompt_a,
                         cross_modal=not isolate_modalities)

        return self._head(x, emb, self.scale_shift_table, self.proj_out), \
            self._head(a, emb_a, self.audio_scale_shift_table, self.audio_proj_out)

    @staticmethod
    def _head(x: torch.Tensor, emb: torch.Tensor, table: torch.Tensor, proj: nn.Linear) -> torch.Tensor:
        values = table[None, None] + emb[:, :, None]
        shift, scale = values[:, :, 0], values[:, :, 1]
        x = F.layer_norm(x, (x.shape[-1],), eps=1e-6)
        return proj(x * (1 + scale) + shift)


def _text_bias(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """Multiplicative ``[B, L]`` text mask -> additive bias ``[B, 1, L]`` (-10000 where masked), as the
    reference; ``None`` when nothing is masked (attention then runs on the engine's backend)."""
    if mask is None:
        return None
    if mask.ndim != 2:
        return mask
    if bool((mask != 0).all()):
        return None
    return ((1 - mask.to(dtype)) * -10000.0).unsqueeze(1)
