"""What an official (not yet converted) checkpoint folder is, without model code: JSON and safetensors headers
only, so the studio (which never imports model code) and the converters share one answer."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

# A key only the LTX-2 single file has (Diffusers' single-file detection uses the same one).
LTX2_MARKER_KEY = "model.diffusion_model.av_ca_a2v_gate_adaln_single.emb.timestep_embedder.linear_1.weight"
#: the Diffusers components fastvideo.conversion.ltx2 writes from the single file (its COMPONENTS' keys)
LTX2_COMPONENTS = ("transformer", "connectors", "vae", "audio_vae", "vocoder")


def ltx2_single_file(folder: Path) -> Path | None:
    """The folder's LTX-2 single file (the ``.safetensors`` whose header has the DiT's audio-video keys)."""
    from fastvideo.mapping.safetensors_header import read_safetensors_header

    for path in sorted(p for p in Path(folder).glob("*.safetensors") if p.is_file()):
        try:
            entries, _ = read_safetensors_header(path)
        except (OSError, ValueError):
            continue
        if LTX2_MARKER_KEY in entries:
            return path
    return None


def describe_official(path: str | os.PathLike) -> dict[str, Any] | None:
    """What an official (not yet converted) checkpoint folder is, torch-free (JSON and safetensors headers):
    ``{"family", "task", "components"}`` -- ``components`` the Diffusers components ``fastvideo convert`` writes
    from it (what the inspector previews) -- or None when the folder is not an official checkpoint.

    Wan: ``config.json`` of a WanModel at the top or in Wan2.2 A14B's ``high_noise_model/``; LTX-2: one
    ``.safetensors`` with the DiT's audio-video keys.  A folder with ``model_index.json`` is never official."""
    folder = Path(path)
    if (folder / "model_index.json").exists() or not folder.is_dir():
        return None
    config_path = next((p for p in (folder / "config.json", folder / "high_noise_model" / "config.json")
                        if p.is_file()), None)
    if config_path is None:
        if ltx2_single_file(folder) is not None:
            return {"family": "ltx2", "task": "t2v/i2v", "components": list(LTX2_COMPONENTS)}
        return None
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError):
        return None
    if not (isinstance(config, dict) and config.get("_class_name", "WanModel") == "WanModel" and "dim" in config):
        return None
    experts = (folder / "high_noise_model").is_dir()  # Wan2.2 A14B: one folder per expert
    model_type = config.get("model_type") or ("i2v" if int(config.get("in_dim", 16) or 16) == 36 else "t2v")
    wan22 = experts or model_type == "ti2v" or (folder / "Wan2.2_VAE.pth").is_file()
    return {"family": "wan2.2" if wan22 else "wan",
            "task": f"{model_type} (two experts)" if experts else str(model_type),
            "components": ["transformer", "transformer_2", "vae", "text_encoder"] if experts
            else ["transformer", "vae", "text_encoder"]}
