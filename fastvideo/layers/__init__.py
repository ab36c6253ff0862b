"""Building blocks shared by the models (the Wan DiT today; a second DiT builds from the same pieces).

* :mod:`~fastvideo.layers.norms`: :class:`FP32LayerNorm`, :class:`RMSNorm` (last dim: q/k),
  :class:`ChannelRMSNorm` (channel-first: the video VAE), :func:`modulate` (adaLN);
* :mod:`~fastvideo.layers.modulation`: :func:`modulation` (a ``[1, n, d]`` table + the timestep projection);
* :mod:`~fastvideo.layers.embeddings`: :func:`timestep_sinusoid`, :class:`TimestepEmbedding`;
* :mod:`~fastvideo.layers.mlp`: :class:`MLP` (``fc_in``/``fc_out``; fused GELU epilogues);
* :mod:`~fastvideo.layers.rope`: 3D RoPE (:func:`rope_cos_sin`, :func:`apply_rope`) and :func:`qk_norm_rope`
  (q/k RMSNorm + RoPE, one Triton kernel on CUDA);
* :mod:`~fastvideo.layers.residual`: :class:`ResidualStream`, which runs a block's residual branches with the
  fused paths inside (residual updates in the GEMM epilogue, LayerNorms folded into the next GEMM, the row
  statistics carried between them) and the plain math elsewhere;
* :mod:`~fastvideo.layers.quant`: :class:`FP8Linear` and :class:`GGUFLinear` (compact weight storage,
  dequantised per call; ``weight_storage``), :mod:`~fastvideo.layers.chunking` (token-chunked FFN / head).

Parameter names are the modules' attribute names, as before the move: checkpoints load unchanged.  Which
fused kernels run is ``fastvideo.kernels.policy``.
"""

from fastvideo.layers.embeddings import TimestepEmbedding, timestep_sinusoid
from fastvideo.layers.mlp import MLP, is_tanh_gelu
from fastvideo.layers.modulation import modulation
from fastvideo.layers.norms import ChannelRMSNorm, FP32LayerNorm, RMSNorm, modulate
from fastvideo.layers.residual import (
                                       Carry,
                                       Pending,
                                       ResidualBranch,
                                       ResidualStream,
                                       add_gated,
                                       finish,
                                       norm_linear,
                                       residual_linear,
)
from fastvideo.layers.rope import ROPE_THETA, apply_rope, qk_norm_rope, rope_cos_sin, rope_dims

__all__ = [
    "MLP", "ROPE_THETA", "Carry", "ChannelRMSNorm", "FP32LayerNorm", "Pending", "RMSNorm", "ResidualBranch",
    "ResidualStream", "TimestepEmbedding", "add_gated", "apply_rope", "finish", "is_tanh_gelu", "modulate",
    "modulation", "norm_linear", "qk_norm_rope", "residual_linear", "rope_cos_sin", "rope_dims",
    "timestep_sinusoid",
]
