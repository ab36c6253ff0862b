"""Errors the public API raises (torch-free, so callers can catch them cheaply)."""

from __future__ import annotations


class FastVideoError(Exception):
    """Base of fastvideo's own errors."""


class InvalidRequest(FastVideoError, ValueError):
    """A generation request that cannot run; raised before any model work starts.

    ``field`` names the offending SamplingParam field (when there is one) so a
    GUI can show the message next to it.
    """

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class GenerationCancelled(FastVideoError):
    """The request was cancelled; the generator stays usable."""


class ModelNotFoundError(FastVideoError, ValueError):
    """A model path or id that cannot be resolved; the message says what is known."""


class WorkerError(FastVideoError, RuntimeError):
    """A worker process died or raised; the message carries its reason."""
