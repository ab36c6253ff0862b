"""Studio settings: a JSON file written atomically (temp file, then rename)."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODELS_DIR_ENV = "FASTVIDEO_MODELS_DIR"  # read by fastvideo.configs.registry.models_dir()
GPU_IDS_ENV = "CUDA_VISIBLE_DEVICES"


def parse_gpu_ids(text: str) -> str:
    """``" 0, 2"`` -> ``"0,2"``; ``""`` -> ``""`` (every GPU); ValueError saying what is wrong otherwise."""
    parts = [p.strip() for p in text.replace(" ", ",").split(",") if p.strip()]
    if not parts:
        return ""
    bad = [p for p in parts if not p.isdigit()]
    if bad:
        raise ValueError(f"GPU numbers are whole numbers separated by commas (e.g. 0,2); not {', '.join(bad)}")
    ids = [int(p) for p in parts]
    if len(set(ids)) != len(ids):
        raise ValueError("each GPU may be listed once")
    return ",".join(str(i) for i in ids)
# the backends fastvideo ships (attention/backends)
ATTENTION_BACKENDS = ("auto", "TORCH_SDPA", "FLASH_ATTN", "FLASH_ATTN_4")
ENGINES = ("local", "remote")  # where the inference process runs: this computer, or a host over SSH
EXECUTOR_BACKENDS = ("mp", "ray")  # how several GPUs are driven: worker processes there, or a Ray cluster


@dataclass
class Settings:
    output_dir: str = ""
    default_model: str = ""
    recent_models: list[str] = field(default_factory=list)
    num_gpus: int = 1
    attention_backend: str = "auto"
    vae_tiling: bool = False
    text_encoder_cpu_offload: bool = False
    dit_cpu_offload: bool = False
    vae_cpu_offload: bool = False
    #: PipelineConfig.memory_mode: "auto" (the engine picks from free memory and the request), "resident",
    #: "model_offload" or "block_stream" (docs/memory.md)
    memory_mode: str = "auto"
    #: PipelineConfig.weight_storage of the DiT: "bf16", "fp8" or the path of a .gguf file of the DiT
    weight_storage: str = "bf16"
    preview: bool = True
    hang_timeout: int = 120  # seconds without a heartbeat before the worker counts as hung
    #: where downloaded and converted models live; "" = $FASTVIDEO_MODELS_DIR or the engine's default.
    #: The inference process and the converter get it as FASTVIDEO_MODELS_DIR (see :meth:`engine_env`).
    models_dir: str = ""
    #: which of this computer's GPUs the inference process may use, "0,2" ("" = every GPU it sees); given to
    #: it as CUDA_VISIBLE_DEVICES (it then numbers them 0, 1, ...)
    gpu_ids: str = ""
    #: the LoRA folder the Generate panel lists LoRAs from ("" = none; Browse… picks any file)
    lora_dir: str = ""
    #: small videos are scaled up with nearest-neighbour (crisp pixels) instead of smoothing
    crisp_small_videos: bool = True
    #: show the porter panels (Weight mapping, Parity) under "Porting" in the sidebar; off: the creator layout
    show_porting: bool = False
    #: "local": the inference process runs here; "remote": on remote_host through the user's ssh
    #: (app/services/remote.py), its videos streamed back into output_dir.
    engine: str = "local"
    remote_host: str = ""
    remote_user: str = ""
    remote_port: int = 22
    remote_python: str = "python3"
    remote_output_dir: str = "~/fastvideo-outputs"
    remote_ssh_options: str = ""
    #: several GPUs: "mp" (one process per GPU on the engine's host) or "ray" (Ray actors on a cluster)
    executor_backend: str = "mp"
    #: the Ray cluster to attach to ("" = $RAY_ADDRESS of the inference process, else a local Ray)
    ray_address: str = ""

    def remote_engine(self):
        """The :class:`~app.services.remote.RemoteEngine` these settings ask for (None: this computer)."""
        if self.engine != "remote":
            return None
        from app.services.remote import RemoteEngine

        return RemoteEngine(host=self.remote_host.strip(), user=self.remote_user.strip(), port=self.remote_port,
                            python=self.remote_python.strip(), outputs=self.remote_output_dir.strip(),
                            ssh_options=self.remote_ssh_options)

    def serve_args(self) -> list[str]:
        """Extra arguments of ``python -m fastvideo.serve`` these settings ask for."""
        return ["--ray-address", self.ray_address.strip()] if self.ray_address.strip() else []

    def pipeline_options(self) -> dict[str, Any]:
        """The PipelineConfig overrides these settings ask for (sent with each job)."""
        opts: dict[str, Any] = {
            "vae_tiling": self.vae_tiling,
            "text_encoder_cpu_offload": self.text_encoder_cpu_offload,
            "dit_cpu_offload": self.dit_cpu_offload,
            "vae_cpu_offload": self.vae_cpu_offload,
        }
        if self.attention_backend and self.attention_backend != "auto":
            opts["attention_backend"] = self.attention_backend
        if self.memory_mode and self.memory_mode != "auto":
            opts["memory_mode"] = self.memory_mode
        if self.weight_storage and self.weight_storage != "bf16":
            opts["weight_storage"] = self.weight_storage
        if self.executor_backend == "ray":
            opts["distributed_executor_backend"] = "ray"
        return opts

    def engine_env(self) -> dict[str, str]:
        """Environment for the engine's processes (inference process, converter): the models folder, if set."""
        return {MODELS_DIR_ENV: str(Path(self.models_dir).expanduser())} if self.models_dir else {}

    def gpu_env(self) -> dict[str, str]:
        """The inference process's CUDA_VISIBLE_DEVICES when GPUs are chosen (this computer's engine only)."""
        return {GPU_IDS_ENV: self.gpu_ids} if self.gpu_ids else {}

    def remember_model(self, path: str, keep: int = 12) -> None:
        if not path:
            return
        models = [m for m in self.recent_models if m != path]
        self.recent_models = [path, *models][:keep]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        """Known keys with values of the right type; anything else keeps its default."""
        out = cls()
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            default = getattr(out, f.name)
            if isinstance(default, bool):
                ok = isinstance(value, bool)
            elif isinstance(default, int):
                ok = isinstance(value, int) and not isinstance(value, bool)
            elif isinstance(default, list):
                ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
            else:
                ok = isinstance(value, str)
            if ok:
                setattr(out, f.name, value)
        if out.attention_backend not in ATTENTION_BACKENDS:
            out.attention_backend = "auto"
        if out.engine not in ENGINES:
            out.engine = "local"
        if out.executor_backend not in EXECUTOR_BACKENDS:
            out.executor_backend = "mp"
        if not 1 <= out.remote_port <= 65535:
            out.remote_port = 22
        out.num_gpus = max(1, out.num_gpus)
        out.hang_timeout = max(5, out.hang_timeout)
        return out


class SettingsStore:
    def __init__(self, path: str | Path, default_output_dir: str | Path):
        self.path = Path(path)
        self.default_output_dir = str(default_output_dir)
        self.error: str | None = None  # why the file could not be read, if it could not

    def load(self) -> Settings:
        data: dict[str, Any] = {}
        if self.path.is_file():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                if not isinstance(data, dict):
                    raise ValueError("not a JSON object")
            except (OSError, ValueError) as exc:
                self.error = f"{self.path}: could not read settings ({exc}); using defaults"
                data = {}
        settings = Settings.from_dict(data)
        if not settings.output_dir:
            settings.output_dir = self.default_output_dir
        return settings

    def save(self, settings: Settings) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(settings.to_dict(), fh, indent=2, ensure_ascii=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
