"""The built-in default model: what runs when no model is chosen.

If the project ships a trained small model (``resources/models/<name>/``, see the
docs), that is the default.  Otherwise a tiny random-weight Wan model is made once
in the models folder (``<models>/builtin/tiny-wan-t2v``): it exercises every code
path but its videos are noise.
"""

from __future__ import annotations

from pathlib import Path

BUILTIN_NAME = "builtin"
SHIPPED = Path(__file__).resolve().parent.parent / "resources" / "models" / "fastvideo-shapes-t2v"


def shipped_model() -> Path | None:
    """The trained model shipped with the project; ``FASTVIDEO_BUILTIN_MODEL`` points elsewhere
    (the packaged studio sets it to the copy inside its bundle)."""
    import os

    override = os.environ.get("FASTVIDEO_BUILTIN_MODEL")
    for path in ([Path(override)] if override else []) + [SHIPPED]:
        if (path / "model_index.json").is_file():
            return path
    return None


def default_model_path(create: bool = True) -> Path:
    """The default model folder (made on first use when nothing is shipped)."""
    shipped = shipped_model()
    if shipped is not None:
        return shipped
    from fastvideo.configs.registry import models_dir

    path = models_dir() / "builtin" / "tiny-wan-t2v"
    if not (path / "model_index.json").is_file() and create:
        from fastvideo.testing.tiny import make_tiny_model

        make_tiny_model(path, task="t2v", seed=0, overwrite=True)
    return path


def resolve_model_arg(model: str | None) -> str:
    """``None`` or ``"builtin"`` -> the default model's folder; anything else unchanged."""
    if model in (None, "", BUILTIN_NAME):
        return str(default_model_path())
    return model


if __name__ == "__main__":  # ``python -m fastvideo.builtin``: make sure it exists, print its folder
    print(default_model_path())
