"""Fused GPU kernels (Triton) for hot spots that torch.compile leaves slow; each has a pure-torch twin."""
