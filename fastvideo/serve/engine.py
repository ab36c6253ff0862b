"""What the inference process knows about its engine and machine: the VideoGenerator API it drives
(:class:`Engine`), the devices it sees, the parity references installed, and how errors and results become
protocol fields (:func:`error_fields`, :func:`jsonable`)."""

from __future__ import annotations

import importlib
import os
from typing import Any


class Engine:
    """The VideoGenerator API the host drives (``fastvideo`` or a test double)."""

    def __init__(self, module_name: str = "fastvideo"):
        self.module_name = module_name
        self._mod = None

    @property
    def mod(self):
        if self._mod is None:
            self._mod = importlib.import_module(self.module_name)
        return self._mod

    def attr(self, name: str):
        return getattr(self.mod, name)

    def gpu_count(self) -> int | None:
        """CUDA devices visible to this process (None: unknown)."""
        fn = getattr(self.mod, "gpu_count", None)
        if fn is not None:
            return fn()
        try:
            import torch

            return int(torch.cuda.device_count())
        except Exception:
            return None

    def devices(self) -> list[dict[str, Any]] | None:
        """Each visible CUDA device: ``{"index", "name", "memory"}`` (bytes); [] without one, None: unknown."""
        fn = getattr(self.mod, "devices", None)
        if fn is not None:
            return list(fn())
        try:
            import torch

            if not torch.cuda.is_available():
                return []
            out = []
            for i in range(torch.cuda.device_count()):
                props = torch.cuda.get_device_properties(i)
                out.append({"index": i, "name": str(props.name), "memory": int(props.total_memory)})
            return out
        except Exception:
            return None

    def _model(self, model_path: str, name: str, from_info, default):
        """The test double's ``name(model_path)`` if it has one, else ``from_info`` of the registry's ModelInfo;
        ``default`` when the folder cannot be read."""
        fn = getattr(self.mod, name, None)
        if fn is not None:
            return fn(model_path)
        try:
            from fastvideo.configs.registry import resolve_model

            return from_info(resolve_model(model_path))
        except Exception:
            return default

    def model_geometry(self, model_path: str) -> dict[str, Any] | None:
        """The model's LatentGeometry as a dict (frame step, size multiples, ...); None if it cannot be read."""
        return self._model(model_path, "model_geometry", lambda info: info.geometry().to_dict(), None)

    def model_experts(self, model_path: str) -> list[str]:
        """The model's denoisers, high noise first (``["transformer", "transformer_2"]`` for Wan2.2 A14B)."""
        return list(self._model(model_path, "model_experts", lambda info: info.experts, []))

    def model_tasks(self, model_path: str) -> list[str]:
        return list(self._model(model_path, "model_tasks", lambda info: info.tasks, []))


def error_fields(exc: BaseException) -> dict[str, Any]:
    fields: dict[str, Any] = {"error_type": type(exc).__name__, "message": str(exc) or type(exc).__name__}
    field = getattr(exc, "field", None)
    if field:
        fields["field"] = field
    return fields


REFERENCE_PACKAGES = {"diffusers": "diffusers"}


def reference_versions() -> dict[str, str | None]:
    """Each parity reference's installed package version (None: not installed here); cheap: nothing is imported."""
    import importlib.metadata
    import importlib.util

    out: dict[str, str | None] = {}
    for name, package in REFERENCE_PACKAGES.items():
        try:
            out[name] = importlib.metadata.version(package) if importlib.util.find_spec(package) else None
        except (importlib.metadata.PackageNotFoundError, ValueError):
            out[name] = None
    return out


def cpu_info() -> dict[str, Any]:
    """The machine's CPU side: logical cores and memory (bytes; None where the platform does not say)."""
    import platform

    memory = None
    try:
        memory = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        pass
    return {"cores": os.cpu_count(), "memory": memory, "name": platform.processor() or platform.machine()}


def jsonable(value: Any) -> Any:
    """Settings and results as JSON-safe values (numpy scalars, paths, tuples)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if hasattr(value, "__fspath__"):
        return os.fspath(value)
    if hasattr(value, "tolist") and getattr(value, "size", 1000) <= 64:
        return value.tolist()
    return repr(value)


def fastvideo_version() -> str:
    try:
        import fastvideo

        return getattr(fastvideo, "__version__", "unknown")
    except Exception:
        return "unknown"
