"""CPU offload: keep a component in CPU memory and move it to the device only while used."""

from __future__ import annotations

import contextlib

import torch


class Offloader:
    def __init__(self, device: torch.device | str):
        self.device = torch.device(device)
        self.moves = 0  # number of device round trips (for tests and logs)

    @contextlib.contextmanager
    def use(self, module: torch.nn.Module):
        module.to(self.device)
        try:
            yield module
        finally:
            module.to("cpu")
            self.moves += 1
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
