"""The feed-forward / embedding MLP: ``fc_in -> activation -> fc_out``, with its fused inference paths."""

from __future__ import annotations

import torch
from torch import nn

from fastvideo.kernels import fused_allowed, fused_linear


def is_tanh_gelu(act: nn.Module) -> bool:
    return isinstance(act, nn.GELU) and act.approximate == "tanh"


class MLP(nn.Module):
    """fc_in -> activation -> fc_out.

    Plain forward: ``fc_out(act(fc_in(x)))``.  For CUDA inference with a tanh-GELU (the FFN, the text
    embedder) :meth:`hidden` puts bias + GELU in the GEMM's epilogue: quack's (``fused_linear.linear_gelu``)
    where the kernel policy allows, else cuBLASLt's; the same math, no extra pass over the hidden tensor.
    As a residual branch (:class:`fastvideo.layers.residual.ResidualStream`) its input projection is ``fc_in``
    (with the activation) and its output projection ``fc_out``.
    """

    def __init__(self, dim_in: int, dim_hidden: int, dim_out: int, activation: nn.Module):
        super().__init__()
        self.fc_in = nn.Linear(dim_in, dim_hidden)
        self.act = activation
        self.fc_out = nn.Linear(dim_hidden, dim_out)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """activation(fc_in(x))."""
        # Inference only: aten::_addmm_activation has no backward (training takes the plain path).
        fused = x.is_cuda and not torch.is_grad_enabled() and is_tanh_gelu(self.act) and fused_allowed()
        if fused and x.dtype == self.fc_in.weight.dtype:
            if fused_linear.gelu_available(x):
                return fused_linear.linear_gelu(x, self.fc_in)
            # cuBLASLt applies GELU(tanh) in the matmul's epilogue: no extra pass over the hidden tensor.
            flat = x.reshape(-1, x.shape[-1])
            hidden = torch._addmm_activation(self.fc_in.bias, flat, self.fc_in.weight.t(), use_gelu=True)
            return hidden.view(*x.shape[:-1], -1)
        return self.act(self.fc_in(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_out(self.hidden(x))

    # -- as a residual branch (fastvideo.layers.residual) --

    @property
    def proj_in(self) -> nn.Linear:
        return self.fc_in

    @property
    def proj_out(self) -> nn.Linear:
        return self.fc_out

    @property
    def in_activation(self) -> nn.Module:
        return self.act

    def project_in(self, x: torch.Tensor) -> torch.Tensor:
        return self.hidden(x)

    def between(self, h: torch.Tensor) -> torch.Tensor:
        """Nothing between the projections (the activation belongs to the input projection)."""
        return h
