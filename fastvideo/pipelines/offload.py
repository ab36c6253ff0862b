"""CPU offload: keep a component in CPU memory and move it to the device only while used.

With ``pin_memory=True`` on CUDA (``PipelineConfig.pin_cpu_memory``, FastVideo's ``pin_cpu_memory``)
each offloaded tensor keeps one pinned host copy: moves to the GPU read it asynchronously, and moves
back copy the (possibly changed, e.g. LoRA-merged) values into it instead of allocating pageable
memory again.  Without CUDA pinning is a no-op.
"""

from __future__ import annotations

import contextlib

import torch


class Offloader:
    def __init__(self, device: torch.device | str, pin_memory: bool = False):
        self.device = torch.device(device)
        self.pin_memory = bool(pin_memory) and self.device.type == "cuda" and torch.cuda.is_available()
        self.moves = 0  # number of device round trips (for tests and logs)
        self._hosts: dict[int, torch.Tensor] = {}  # id(tensor) -> its pinned host copy

    @contextlib.contextmanager
    def use(self, module: torch.nn.Module):
        if self.pin_memory:
            tensors = self._to_device_pinned(module)
        else:
            module.to(self.device)
        try:
            yield module
        finally:
            if self.pin_memory:
                self._back_to_pinned(tensors)
            else:
                module.to("cpu")
            self.moves += 1
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    @staticmethod
    def _tensors(module: torch.nn.Module) -> list[torch.Tensor]:
        return [*module.parameters(), *(b for b in module.buffers() if b is not None)]

    def pinned_host(self, tensor: torch.Tensor) -> torch.Tensor | None:
        """The pinned host copy kept for ``tensor`` (None if none)."""
        return self._hosts.get(id(tensor))

    def _to_device_pinned(self, module: torch.nn.Module) -> list[torch.Tensor]:
        tensors = self._tensors(module)
        for t in tensors:
            host = self._hosts.get(id(t))
            if t.device.type == "cpu" and (host is None or host.data_ptr() != t.data.data_ptr()):
                host = t.data if t.data.is_pinned() else t.data.pin_memory()  # first use, or replaced since
                self._hosts[id(t)] = host
            if host is not None and t.device.type == "cpu":
                t.data = host.to(self.device, non_blocking=True)
            elif t.device != self.device:
                t.data = t.data.to(self.device)
        return tensors

    def _back_to_pinned(self, tensors: list[torch.Tensor]) -> None:
        for t in tensors:
            host = self._hosts.get(id(t))
            if host is None or t.device.type == "cpu":
                t.data = t.data.to("cpu")
                continue
            if host.shape != t.shape or host.dtype != t.dtype:  # changed on the device: a new pinned copy
                host = t.data.to("cpu").pin_memory()
                self._hosts[id(t)] = host
            else:
                host.copy_(t.data)  # blocking: the host copy is complete when use() returns
            t.data = host
