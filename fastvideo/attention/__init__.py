"""Attention layers and backends."""

from fastvideo.attention.backends import available_backends, get_attn_backend
from fastvideo.attention.layer import DistributedAttention, LocalAttention

__all__ = ["DistributedAttention", "LocalAttention", "available_backends", "get_attn_backend"]
