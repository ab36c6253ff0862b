"""The residual stream of a pre-norm transformer block, with its fused paths inside.

A block is a sequence of residual branches ``x = x + gate * branch(modulate(norm, x, shift, scale))``.
:class:`ResidualStream` runs them; a branch is any module with the small :class:`ResidualBranch` interface
(its input projection, what runs between the projections, its output projection), so the block's forward
reads the same whichever kernels run::

    stream = ResidualStream.start(x, carry, shared_modulation=shift.shape[0] == 1)
    stream = stream.add(self.self_attn, rope, norm=self.self_attn_norm, shift=shift, scale=scale, gate=gate)
    ...
    return stream.end()

What it does underneath (the kernel policy, ``fastvideo.kernels.policy``, and the device decide):

* plain math (CPU, training, ``plain_math()``): each branch is called as a module (its hooks fire), the
  update added in fp32.  ``defer=True`` (the block's last branch) hands the update on as :class:`Pending`,
  applied at the start of the next block: under ``torch.compile`` (one region per block) that add fuses with
  the next block's first norm, one pass over the hidden states instead of two.
* quack's GEMM epilogues (``fused_linear.available``: CUDA inference): the residual update (bias, gate, add)
  runs in the epilogue of the branch's output projection (:func:`residual_linear`), nothing is deferred.
* and, with one modulation for the whole batch (one timestep: always so in sampling) and ``norm_fold``, each
  LayerNorm is folded into the branch's input projection (:func:`norm_linear`): its row statistics come from
  the GEMM that wrote the stream, so the stream carries ``fastvideo.kernels.fused_linear.RowStats`` from
  branch to branch and from block to block (the block's carry).

The carry a block returns and the next accepts is therefore ``Pending`` (plain), ``RowStats`` (folded) or
``None``; :func:`finish` applies a last ``Pending`` after the final block.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, Protocol

import torch
from torch import nn

from fastvideo.kernels import fused_linear, policy
from fastvideo.kernels.fused_linear import RowStats
from fastvideo.layers.mlp import is_tanh_gelu
from fastvideo.layers.norms import modulate


def add_gated(x: torch.Tensor, update: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """The gated residual update ``x + update * gate`` in fp32, cast back to x's dtype."""
    return (x.float() + update.float() * gate).type_as(x)


class Pending(NamedTuple):
    """A gated residual update not applied yet: the stream is ``add_gated(x, update, gate)``."""

    update: torch.Tensor
    gate: torch.Tensor


#: What one block hands the next besides ``x``.
Carry = Pending | RowStats | None


def finish(x: torch.Tensor, carry: Carry) -> torch.Tensor:
    """The stream after the last block: a :class:`Pending` update applied (other carries dropped)."""
    return add_gated(x, *carry) if isinstance(carry, Pending) else x


class ResidualBranch(Protocol):
    """What :class:`ResidualStream` needs of a branch module (attention, FFN).  Its ``forward(h, *args)`` must
    equal ``proj_out(between(project_in(h), *args))``."""

    proj_in: nn.Linear  #: the input projection (the one a LayerNorm folds into)
    proj_out: nn.Linear  #: the output projection (the one whose epilogue adds the residual)
    in_activation: nn.Module | None  #: applied after ``proj_in`` by ``project_in`` (the FFN's GELU), if any

    def __call__(self, h: torch.Tensor, *args) -> torch.Tensor: ...

    def project_in(self, h: torch.Tensor) -> torch.Tensor: ...

    def between(self, h: torch.Tensor, *args) -> torch.Tensor: ...


def _norm_gain_shift(norm: nn.LayerNorm, shift: torch.Tensor | None, scale: torch.Tensor | None):
    """``LN(x) * gain + beta`` as ``modulate(norm, x, shift, scale)`` computes it, for one modulation (fp32 [K]);
    ``norm`` has an affine weight or ``scale`` is given."""
    weight, bias = norm.weight, norm.bias
    if scale is None:  # the norm's own affine (the cross-attention norm)
        return weight.float(), bias.float() if bias is not None else None
    if weight is None and bias is None:  # adaLN: LN(x) * (1 + scale) + shift
        return 1 + scale.flatten(), shift.flatten()
    w = weight.float() if weight is not None else 1.0  # both: (LN(x) * w + b) * (1 + scale) + shift
    b = bias.float() if bias is not None else 0.0
    return w * (1 + scale.flatten()), b * (1 + scale.flatten()) + shift.flatten()


def norm_linear(branch: ResidualBranch, norm: nn.Module, x: torch.Tensor, stats: RowStats | None,
                shift: torch.Tensor | None = None, scale: torch.Tensor | None = None) -> torch.Tensor:
    """The branch's input projection of the normed stream: ``branch.project_in(modulate(norm, x, shift, scale))``.

    With ``stats`` (the stream's :class:`RowStats`; one modulation for the batch) and a LayerNorm, the norm is
    folded into the GEMM (``fused_linear.norm_linear``: the gain into the weight, the statistics and the
    shift into the epilogue, with the FFN's tanh-GELU); else the norm and the projection run in turn.
    """
    foldable = isinstance(norm, nn.LayerNorm) and (scale is not None or norm.weight is not None)
    if stats is None or not foldable:
        return branch.project_in(modulate(norm, x, shift, scale))
    gain, beta = _norm_gain_shift(norm, shift, scale)
    act = branch.in_activation
    tanh_gelu = act is not None and is_tanh_gelu(act)
    h = fused_linear.norm_linear(x, stats, branch.proj_in, gain, beta, norm.eps, gelu=tanh_gelu)
    return act(h) if act is not None and not tanh_gelu else h


def residual_linear(h: torch.Tensor, linear: nn.Linear, x: torch.Tensor, gate: torch.Tensor | None,
                    stats: bool) -> tuple[torch.Tensor, RowStats | None]:
    """``x + gate * linear(h)`` (``x + linear(h)`` without a gate) in one GEMM (quack's epilogue); with
    ``stats``, also the new stream's :class:`RowStats` (for the next folded norm), else ``None``."""
    if stats:
        return fused_linear.linear_residual(h, linear, x, gate, stats=True)
    return fused_linear.linear_residual(h, linear, x, gate), None


@dataclasses.dataclass(frozen=True)
class ResidualStream:
    """The hidden states through one block's residual branches (immutable: each step returns a new one).

    A frozen dataclass rather than a NamedTuple: TorchDynamo (torch 2.11) failed on this NamedTuple with
    defaults when a compiled block resumed after a graph break (``IndexError`` in ``has_tensor``)."""

    x: torch.Tensor
    stats: RowStats | None = None  #: the stream's row statistics (folded norms only)
    pending: Pending | None = None  #: a deferred update (plain math only; the block's last branch)
    fused: bool = False  #: residual updates in the output projections' epilogues
    fold: bool = False  #: LayerNorms folded into the input projections

    def _replace(self, **changes) -> ResidualStream:
        return dataclasses.replace(self, **changes)

    @classmethod
    def start(cls, x: torch.Tensor, carry: Carry = None, shared_modulation: bool = False,
              per_token_modulation: bool = False) -> ResidualStream:
        """The stream entering a block: the previous block's :class:`Pending` update applied; ``RowStats``
        kept where the norms fold (``shared_modulation``: one modulation for the whole batch), else dropped.
        ``per_token_modulation`` (a shift/scale/gate per token): plain math (the epilogues take one gate per
        sample)."""
        if isinstance(carry, Pending):  # the previous block's last update
            x, carry = add_gated(x, *carry), None
        fused = fused_linear.available(x) and not per_token_modulation
        fold = fused and shared_modulation and policy.current().norm_fold
        if not fold:
            return cls(x, fused=fused)
        return cls(x, carry if carry is not None else fused_linear.row_stats(x), fused=True, fold=True)

    def add(self, branch: ResidualBranch, *args, norm: nn.Module, shift: torch.Tensor | None = None,
            scale: torch.Tensor | None = None, gate: torch.Tensor | None = None,
            defer: bool = False) -> ResidualStream:
        """``x + gate * branch(modulate(norm, x, shift, scale), *args)`` (no gate: ``x + branch(...)``).

        ``defer``: under plain math, leave a gated update :class:`Pending` (only for the block's last branch:
        :meth:`end` hands it to the next block)."""
        if self.pending is not None:
            raise RuntimeError("a deferred update must be the block's last branch")
        x = self.x
        if not self.fused:  # plain math: the branch module is called (its hooks fire)
            update = branch(modulate(norm, x, shift, scale), *args)
            if defer and gate is not None:
                return self._replace(pending=Pending(update, gate))
            return self._replace(x=add_gated(x, update, gate) if gate is not None else x + update)
        h = branch.between(norm_linear(branch, norm, x, self.stats, shift, scale), *args)
        x, stats = residual_linear(h, branch.proj_out, x, gate, self.fold)
        return self._replace(x=x, stats=stats)

    def end(self) -> tuple[torch.Tensor, Carry]:
        """-> (x, carry) for the next block: a :class:`Pending` update, the stream's ``RowStats`` or ``None``."""
        return self.x, self.pending if self.pending is not None else self.stats
