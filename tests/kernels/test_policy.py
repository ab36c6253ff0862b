"""fastvideo.kernels.policy: one KernelPolicy holds every kernel switch (issue 21)."""

import dataclasses
import re
from pathlib import Path

import pytest
import torch

from fastvideo import kernels
from fastvideo.kernels import fused_linear, policy, qk_norm_rope

ROOT = Path(__file__).resolve().parents[2]


def test_use_changes_fields_for_the_block_and_restores_them():
    before = policy.current()
    assert before == policy.KernelPolicy() and not before.plain
    with policy.use(norm_fold=False, qk_block=2) as inner:
        assert policy.current() is inner and not inner.norm_fold and inner.qk_block == 2
        with kernels.plain_math():  # nests: plain on top of the outer changes
            assert policy.current().plain and not policy.current().norm_fold
            assert not kernels.fused_allowed()
        assert policy.current() is inner
    assert policy.current() is before
    with pytest.raises(RuntimeError), policy.kernel_policy(gemm_epilogues=False):
        raise RuntimeError
    assert policy.current() is before  # restored after an exception too


def test_unknown_switches_and_wrong_types_are_refused():
    with pytest.raises(TypeError):
        with policy.use(NORM_FOLD=False):
            pass
    with pytest.raises(TypeError):
        policy.set_policy({"plain": True})
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.current().plain = True


def test_policy_fields_switch_the_kernels(monkeypatch):
    """Each availability check reads the policy (on a tensor that looks like CUDA, quack 'installed')."""
    monkeypatch.setattr(fused_linear, "HAS_QUACK", True)
    monkeypatch.setattr(fused_linear, "_epilogues", lambda: object())
    monkeypatch.setattr(qk_norm_rope, "HAS_TRITON", True)
    monkeypatch.setattr(torch.Tensor, "is_cuda", property(lambda self: True))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    x = torch.empty(0, device="meta", dtype=torch.bfloat16)
    with torch.inference_mode():
        assert fused_linear.available(x) and fused_linear.gelu_available(x) and qk_norm_rope.available(x)
        with policy.use(gelu_epilogue=False):
            assert fused_linear.available(x) and not fused_linear.gelu_available(x)
        with policy.use(gemm_epilogues=False):
            assert not fused_linear.available(x) and qk_norm_rope.available(x)
        with policy.use(qk_norm_rope=False):
            assert fused_linear.available(x) and not qk_norm_rope.available(x)
        with kernels.plain_math():
            assert not fused_linear.available(x) and not qk_norm_rope.available(x)


def test_fold_switch_picks_the_torch_fold():
    linear = torch.nn.Linear(8, 4)
    gain, shift = torch.randn(8), torch.randn(8)
    with policy.use(fold_kernel=False):  # (CPU: the torch fold either way; the switch must not break it)
        folded, wg, wb = fused_linear.fold_norm(linear, gain, shift)
    assert folded.shape == (4, 8) and wg.shape == wb.shape == (1, 4)


OLD_SWITCHES = re.compile(r"\b(ENABLED|NORM_FOLD|FOLD_KERNEL|GELU_EPILOGUE|LAUNCH|CHUNKED|_PLAIN)\b")


def test_no_module_global_kernel_switches_are_left():
    """The old module globals are gone, and nothing in the engine, benchmarks or tests sets them (an
    assignment to one would now silently do nothing)."""
    for module in (kernels, fused_linear, qk_norm_rope):
        assert not [n for n in vars(module) if OLD_SWITCHES.fullmatch(n)], module.__name__
    offenders = []
    for folder in ("fastvideo/kernels", "fastvideo/layers", "fastvideo/models", "fastvideo/perf", "benchmarks",
                   "tests/kernels", "tests/models"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name == "test_policy.py":
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if re.search(r"(fused_linear|qk_norm_rope|kernels)\w*\.(ENABLED|NORM_FOLD|FOLD_KERNEL|GELU_EPILOGUE|"
                             r"LAUNCH|CHUNKED)\b", line) or re.search(r"setattr\([^)]*\"(ENABLED|NORM_FOLD|"
                                                                      r"GELU_EPILOGUE)\"", line):
                    offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == []
